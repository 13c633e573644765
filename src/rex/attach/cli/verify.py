"""``rex attach verify``: read every attachment in full and compare it with
the checksum its store recorded."""

from __future__ import annotations

from dataclasses import dataclass

import click

from rex.core import Error, NotFoundError, Rex

from ..settings import get_storage
from ..storage import Storage
from .checksum import read_crc32c
from .command import Found, one_line, store_command
from .jobs import parallel
from .listing import count, under
from .progress import Progress, quiet_option

# What `verify` found of an attachment, and how it reports it.
OK, DAMAGED, UNCHECKED, RECORDED, GONE, FAILED = (
    "ok", "damaged", "no checksum", "recorded", "gone", "failed")


@dataclass
class Verdict:
    handle: str
    state: str
    size: int = 0
    detail: str = ""


def verify_one(storage: Storage, handle: str, record: bool) -> Verdict:
    """Reads the attachment in full; `record` stores the checksum of one
    that has none."""
    try:
        stat = storage.stat(handle)
        crc32c, size = read_crc32c(storage, handle)
    except NotFoundError:
        return Verdict(handle, GONE)  # removed since it was listed
    except (Error, OSError) as error:  # an outage, a disk that fails to read
        return Verdict(handle, FAILED, 0, one_line(error))
    expected = stat.crc32c
    if expected is None and record:
        try:
            storage.record_crc32c(handle)
        except (Error, OSError) as error:
            return Verdict(handle, FAILED, size, one_line(error))
        return Verdict(handle, RECORDED, size, f"CRC32C {crc32c}")
    if expected is None:
        return Verdict(handle, UNCHECKED, size)
    if expected != crc32c or size != stat.st_size:
        detail = f"recorded CRC32C {expected}, read {crc32c}"
        if size != stat.st_size:
            detail += f"; {stat.st_size} bytes recorded, {size} read"
        return Verdict(handle, DAMAGED, size, detail)
    return Verdict(handle, OK, size)


@store_command("verify", "[PREFIX]", arity=(0, 1))
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Attachments read at once.")
@click.option("--record", is_flag=True,
              help="Record the checksum of attachments that have none (stored before "
                   "checksums were).")
@quiet_option
def verify(app: Rex, operands: list[str], jobs: int, record: bool, quiet: bool) -> None:
    """Reads every attachment (those starting with PREFIX, if given) in full
    and compares it with its recorded CRC32C.  Prints those that are
    damaged, with both checksums, those with no checksum, then a summary.
    Exit status 1 if any is damaged or cannot be read."""
    storage = get_storage()
    prefix = operands[0] if operands else ""
    tally = {state: 0 for state in (OK, DAMAGED, UNCHECKED, RECORDED, GONE, FAILED)}
    total = None if quiet else count(storage, prefix)
    with Progress("verify", total, quiet) as progress:
        for verdict in parallel(lambda handle: verify_one(storage, handle, record),
                                under(storage, prefix), jobs):
            tally[verdict.state] += 1
            progress.advance(1, verdict.size)
            if verdict.state not in (OK, GONE):
                line = f"{verdict.state:<12} {verdict.handle}"
                click.echo(f"{line}  {verdict.detail}" if verdict.detail else line)
    checked = sum(tally.values()) - tally[GONE]
    summary = (f"verified {checked} attachment{'s' if checked != 1 else ''}: {tally[OK]} ok, "
               f"{tally[DAMAGED]} damaged, {tally[UNCHECKED]} without a checksum")
    if record:
        summary += f", {tally[RECORDED]} recorded"
    click.echo(f"{summary}, {tally[FAILED]} failed")
    if tally[DAMAGED] or tally[FAILED]:
        raise Found()
