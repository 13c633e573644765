"""``rex attach migrate``: copy every attachment to another store, keeping
its handle, so that the application's records work unchanged there.

Each copy is streamed, its CRC32C computed as the source is read (and
checked against the source's record, so that a damaged attachment is not
copied), then compared with the checksum the target holds (as its write
answers, else as it records).  An attachment that the target holds
already with the same checksum is skipped, so an interrupted migration
resumes by running again.  The source is only read.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from rex.core import Error, ExistsError, NotFoundError, Rex
from rex.core.cli import Failure, build_app

from ..local import LocalStorage
from ..objectstore import CONNECTIONS
from ..settings import get_storage
from ..storage import Stat, Storage
from .checksum import Checksummed, read_crc32c
from .command import Found, one_line, store_command
from .jobs import parallel
from .listing import count
from .progress import Progress, quiet_option, size

COPIED, SKIPPED, FAILED, GONE = "copied", "skipped", "failed", "gone"


@dataclass
class Copy:
    handle: str
    state: str
    size: int = 0
    detail: str = ""


class Migration:
    """Copies attachments from `source` to `target`, one handle at a time
    (from any number of threads)."""

    def __init__(self, source: Storage, target: Storage) -> None:
        self.source = source
        self.target = target
        # A local write stages the whole copy before it finds the handle
        # taken: look first.  (An object store's write looks first itself.)
        self.look_first = isinstance(target, LocalStorage)

    def __call__(self, handle: str) -> Copy:
        try:
            stat = self.source.stat(handle)
        except NotFoundError:
            return Copy(handle, GONE)  # removed since it was listed
        try:
            if self.look_first and handle in self.target:
                return self.settle(handle, stat)
            return self.copy(handle, stat)
        except (Error, OSError) as error:  # an outage, a disk that fails
            return Copy(handle, FAILED, 0, one_line(error))

    def copy(self, handle: str, stat: Stat) -> Copy:
        with self.source.open(handle) as stream:
            reader = Checksummed(stream, stat.crc32c, handle, seekable=self.source.sendfile)
            try:
                held = self.target.write(handle, reader)  # type: ignore[arg-type]
            except ExistsError:
                return self.settle(handle, stat)
        if held is None:  # the write did not say: ask
            held = self.held(handle)
        if held != reader.crc32c:
            return Copy(handle, FAILED, 0, f"the copy's CRC32C is {held}, "
                                           f"the source's {reader.crc32c}")
        return Copy(handle, COPIED, stat.st_size)

    def settle(self, handle: str, stat: Stat) -> Copy:
        """The target holds the handle already: a copy of the same content
        (from an earlier run) is skipped; anything else is a failure."""
        try:
            held = self.held(handle)
        except NotFoundError:
            return Copy(handle, FAILED, 0, "the target removed this handle; it cannot be "
                                           "used again there")
        expected = stat.crc32c or read_crc32c(self.source, handle)[0]
        if held != expected:
            return Copy(handle, FAILED, 0, f"the target holds other content at this handle "
                                           f"(CRC32C {held}, the source's {expected})")
        return Copy(handle, SKIPPED, stat.st_size)

    def held(self, handle: str) -> str:
        """The CRC32C of the target's attachment: as recorded, else as read."""
        return self.target.stat(handle).crc32c or read_crc32c(self.target, handle)[0]


@store_command("migrate")
@click.option("--to", "target_file", required=True, metavar="TARGET.yaml",
              type=click.Path(dir_okay=False),
              help="The settings of the application on the target store.")
@click.option("--jobs", "-j", type=click.IntRange(1, CONNECTIONS), default=8, show_default=True,
              help="Attachments copied at once.")
@quiet_option
def migrate(app: Rex, target_file: str, jobs: int, quiet: bool) -> None:
    """Copies every attachment of PACKAGE to the store of the settings in
    TARGET.yaml (any backend to any backend), keeping its handle, and
    verifies each copy's CRC32C there.  What the target holds already, the
    same, is skipped, so an interrupted migration resumes by running it
    again; the source is never changed.  Prints each failure, then a
    summary; exit status 1 if any failed.  Then serve the application with
    TARGET.yaml: its records find every attachment there."""
    source = get_storage()
    try:
        target_app = build_app(app.requirements[0], (), target_file)
    except Failure as failure:
        raise Failure(f"The target's settings ({target_file}) are refused: "
                      f"{failure.message}") from None
    with target_app:
        target = get_storage()
    migration = Migration(source, target)
    tally = {state: [0, 0] for state in (COPIED, SKIPPED, FAILED, GONE)}
    total = None if quiet else count(source, "")
    with Progress("migrate", total, quiet) as progress:
        for result in parallel(migration, iter(source), jobs):
            tally[result.state][0] += 1
            tally[result.state][1] += result.size
            progress.advance(1, result.size)
            if result.state == FAILED:
                click.echo(f"failed  {result.handle}: {result.detail}")
    (copied, copied_bytes), (skipped, skipped_bytes) = tally[COPIED], tally[SKIPPED]
    click.echo(f"copied {copied} file{'s' if copied != 1 else ''} ({size(copied_bytes)}), "
               f"skipped {skipped} ({size(skipped_bytes)}), failed {tally[FAILED][0]}")
    if tally[FAILED][0]:
        raise Found()
