"""Progress of long commands on standard error: files and bytes done, rate,
time left.

On a terminal it is a tqdm bar.  tqdm is the progress bar most Python users
have already met (pip's downloads aside, it is what data tools print); it
has no dependencies of its own, redraws at most a few times a second
however often it is updated, and sizes itself to the terminal.  When
standard error is not a terminal (a log file, a cron job's mail), the same
figures come as plain lines, one every `INTERVAL` seconds and one at the
end, formatted by tqdm too, so that a log never fills with redraws.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import click
from tqdm import tqdm

INTERVAL = 10.0  # seconds between plain lines
BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} files{postfix} [{elapsed}<{remaining}]"
LINE = "{desc}: {n_fmt}/{total_fmt} files{postfix} [{elapsed} elapsed, {remaining} left]"
LINE_NO_TOTAL = "{desc}: {n_fmt} files{postfix} [{elapsed} elapsed]"


def size(count: float) -> str:
    """A number of bytes for people: ``812 B``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def quiet_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--quiet`` option of a command that shows its progress."""
    return click.option("--quiet", "-q", is_flag=True, help="No progress display.")(function)


class Progress:
    """Counts files and bytes as a command goes through them.

    `total` is the number of files if known (else no time left is shown);
    `quiet` shows nothing.  Update it from one thread.
    """

    def __init__(self, what: str, total: int | None, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.files = 0
        self.bytes = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.shown = self.started
        self.bar: tqdm | None = None
        self.quiet = quiet
        if not quiet and self.stream.isatty():
            self.bar = tqdm(total=total, desc=what, unit="file", file=self.stream,
                            bar_format=BAR, dynamic_ncols=True, leave=True)

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        self.files += files
        self.bytes += nbytes
        if self.bar is not None:
            self.bar.set_postfix_str(self._bytes(), refresh=False)
            self.bar.update(files)
        elif not self.quiet and time.monotonic() - self.shown >= INTERVAL:
            self._line()

    def _bytes(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return f"{size(self.bytes)}, {size(self.bytes / elapsed)}/s"

    def _line(self) -> None:
        self.shown = time.monotonic()
        text = tqdm.format_meter(self.files, self.total, self.shown - self.started,
                                 prefix=self.what, unit="file",
                                 bar_format=LINE if self.total is not None else LINE_NO_TOTAL,
                                 postfix=self._bytes())
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Shows the final figures."""
        if self.bar is not None:
            self.bar.set_postfix_str(self._bytes(), refresh=False)
            self.bar.close()
        elif not self.quiet:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
