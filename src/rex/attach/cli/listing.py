"""``rex attach ls`` and ``rex attach stat``: what a store holds."""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Iterable, Iterator

import click

from rex.core import NotFoundError, Rex

from ..handle import check_handle
from ..settings import get_storage
from ..storage import Stat, Storage
from .command import Found, store_command
from .jobs import parallel
from .progress import Progress, quiet_option

JOBS = 8  # stat requests at once for --long


def under(handles: Iterable[str], prefix: str) -> Iterator[str]:
    """The handles that start with `prefix`, from a sorted iteration: it
    stops at the first handle past them."""
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    for handle in handles:
        if handle.startswith(prefix):
            yield handle
        elif handle > prefix:
            return


def count(storage: Storage, prefix: str) -> int:
    """How many handles are under `prefix` (a listing; no attachment is read)."""
    return sum(1 for _ in under(storage, prefix))


def timestamp(seconds: float) -> str:
    """A modification time as ISO 8601 in UTC, to the second."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(handle: str, stat: Stat | None, as_json: bool) -> str:
    """One line of ``ls`` or ``stat``: the handle, with its size, time and
    checksum when `stat` is given."""
    if as_json:
        item: dict[str, object] = {"handle": handle}
        if stat is not None:
            item.update(size=stat.st_size, mtime=timestamp(stat.st_mtime),
                        crc32c=stat.crc32c, etag=stat.etag)
        return json.dumps(item, ensure_ascii=False)
    if stat is None:
        return handle
    return (f"{stat.st_size:>12}  {timestamp(stat.st_mtime)}  {stat.crc32c or '-':<8}  "
            f"{handle}")


@store_command("ls", "[PREFIX]", arity=(0, 1))
@click.option("--long", "-l", "long", is_flag=True,
              help="Also the size, modification time (UTC) and CRC32C of each.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@quiet_option
def ls(app: Rex, operands: list[str], long: bool, as_json: bool, quiet: bool) -> None:
    """The handles of PACKAGE's attachments, sorted, those starting with
    PREFIX (such as /2026/11) if given.  --long looks up each attachment, and
    shows progress on standard error."""
    storage = get_storage()
    prefix = operands[0] if operands else ""
    out = sys.stdout  # buffered: click.echo() would flush every line
    if not long:
        for handle in under(storage, prefix):
            out.write(describe(handle, None, as_json) + "\n")
        return
    total = None if quiet else count(storage, prefix)

    def look(handle: str) -> tuple[str, Stat | None]:
        try:
            return handle, storage.stat(handle)
        except NotFoundError:
            return handle, None  # removed since it was listed

    with Progress("ls", total, quiet) as progress:
        for handle, stat in parallel(look, under(storage, prefix), JOBS, ordered=True):
            progress.advance(1, stat.st_size if stat else 0)
            if stat is not None:
                out.write(describe(handle, stat, as_json) + "\n")


@store_command("stat", "HANDLE...", arity=(1, None))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def stat(app: Rex, operands: list[str], as_json: bool) -> None:
    """The size, modification time (UTC) and CRC32C of each attachment, as
    ``ls --long`` shows them (--json adds its HTTP entity tag).  Exit
    status 1 if one does not exist."""
    for handle in operands:
        check_handle(handle)
    storage = get_storage()
    missing = False
    for handle in operands:
        try:
            click.echo(describe(handle, storage.stat(handle), as_json))
        except NotFoundError as error:
            click.echo(f"rex: {error}", err=True)
            missing = True
    if missing:
        raise Found()
