"""The measures of ``rex attach`` (verify, migrate, ls), run in the
benchmark's own process: each function is one timed run and returns
``(seconds, memory growth in bytes)`` as `library.timed` does.

The project's side is the command itself, called as ``rex attach ...``
would call it (click parses the arguments, the application is built from
its settings file, the command runs, its output goes to /dev/null); the
reference is the plainest loop that does the same work.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crc32c
import http_client
import yaml
from library import CHUNK_SIZE, Run, timed
from procs import memory_status

PACKAGE = "rex.attach_demo"


@dataclass(frozen=True)
class Sizes:
    verify_files: int
    verify_size: int  # of each file
    migrate_files: int
    migrate_size: int
    migrate_big: int  # the one large file
    jobs: int  # threads of migrate and of its reference


FULL = Sizes(verify_files=64, verify_size=16 << 20, migrate_files=10_000, migrate_size=64 << 10,
             migrate_big=1 << 30, jobs=8)
QUICK = Sizes(verify_files=64, verify_size=1 << 20, migrate_files=500, migrate_size=64 << 10,
              migrate_big=64 << 20, jobs=8)


def make_store(directory: Path, count: int, size: int) -> list[Path]:
    """Lays out `count` attachments of `size` bytes as the local backend
    does (``DIR/YYYY/MM/DD/UUID/NAME``), fast (no fsync); returns their paths."""
    day = datetime.date(2020, 1, 1).strftime("%Y/%m/%d")
    paths = []
    for i in range(count):
        folder = directory / day / str(uuid.uuid4())
        folder.mkdir(parents=True)
        paths.append(folder / f"{i}.bin")
        http_client.write_file(str(paths[-1]), size)
    return paths


def settings_file(path: Path, **settings: Any) -> str:
    """Writes the demo's settings (its database beside them) to `path`."""
    settings.setdefault("db", f"sqlite:///{path.with_suffix('.sqlite')}")
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def command(*args: str) -> None:
    """``rex ARGS...`` in this process, its standard output discarded."""
    import click

    from rex.core.cli import main

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        try:
            main.main(args=list(args), prog_name="rex", standalone_mode=False)
        except click.exceptions.Exit as exit:
            if exit.exit_code:
                raise RuntimeError(f"rex {' '.join(args)}: exit status {exit.exit_code}") from None


# -- verify ----------------------------------------------------------------------------------

def crc32c_files(paths: list[Path]) -> Run:
    """The plain loop: each file read in 1 MiB chunks into a CRC32C, with
    the library the project uses (`crc32c`)."""
    def work() -> None:
        for path in paths:
            crc = 0
            with open(path, "rb") as file:
                while chunk := file.read(CHUNK_SIZE):
                    crc = crc32c.crc32c(chunk, crc)

    return timed(work)


def verify(settings: str) -> Run:
    return timed(lambda: command("attach", "verify", PACKAGE, "--settings", settings, "-q"))


# -- migrate ---------------------------------------------------------------------------------

def boto3_pool_upload(client: Any, bucket: str, root: Path, paths: list[Path], prefix: str,
                      jobs: int) -> Run:
    """The plain loop: `put_object` of each file, `jobs` at once, keyed by
    its path under `root`, under `prefix`."""
    def put(path: Path) -> None:
        with open(path, "rb") as file:
            client.put_object(Bucket=bucket, Key=prefix + str(path.relative_to(root)), Body=file)

    def work() -> None:
        with ThreadPoolExecutor(jobs) as pool:
            for _ in pool.map(put, paths):
                pass

    return timed(work)


def boto3_upload_file(client: Any, bucket: str, key: str, path: Path, config: Any) -> Run:
    """``upload_fileobj`` of one file, with a `TransferConfig`."""
    def work() -> None:
        with open(path, "rb") as file:
            client.upload_fileobj(file, bucket, key, Config=config)

    return timed(work)


def migrate(settings: str, target: str, jobs: int) -> Run:
    return timed(lambda: command("attach", "migrate", PACKAGE, "--settings", settings,
                                 "--to", target, "--jobs", str(jobs), "-q"))


def migrate_process(settings: str, target: str, baseline: int = 0) -> Run:
    """``rex attach migrate`` as a process of its own, as an operator runs
    it: its seconds, and its peak resident memory less `baseline` (the peak
    of the same command on a store of one small file: what the command
    holds whatever it copies), which is what the size of the files costs.

    The peak is the process's ``VmHWM``, read every few milliseconds once it
    runs the command (not before its ``exec``, when it is still a copy of
    this process)."""
    rex = Path(sys.executable).parent / "rex"
    started = time.perf_counter()
    process = subprocess.Popen([str(rex), "attach", "migrate", PACKAGE, "--settings", settings,
                                "--to", target, "--jobs", "1", "-q"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        with contextlib.suppress(OSError):
            if b"attach" in Path(f"/proc/{process.pid}/cmdline").read_bytes():
                peak = max(peak, memory_status(process.pid, "VmHWM"))
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"rex attach migrate: exit status {process.returncode}")
    return seconds, peak - baseline


# -- ls --------------------------------------------------------------------------------------

def ls(settings: str) -> Run:
    return timed(lambda: command("attach", "ls", PACKAGE, "--settings", settings))
