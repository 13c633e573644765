"""``rex attach gc``: remove what crashed writers left behind and, if asked,
attachments that no record references, older than a grace period.

The grace period keeps uploads in flight safe: an upload stores its
attachment, then its record, within moments; so an attachment stored
before the grace period began, whose record is not there by the time the
records are read, never will be.  The period is counted back from when
``gc`` starts reading the records, however long it then runs.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from rex.core import Error, NotFoundError, Rex

from ..local import LocalStorage
from ..references import UNREFERENCED, orphans
from ..s3 import S3Storage
from ..settings import get_storage
from ..storage import Storage
from . import probe
from .command import Found, one_line, store_command
from .listing import timestamp
from .progress import Progress, quiet_option

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"(?:(\d+)([smhdw]))+|0")


class Duration(click.ParamType):
    """A duration such as ``24h``, ``90m``, ``1h30m``, ``7d`` or ``0``, in seconds."""

    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        if not DURATION.fullmatch(text):
            self.fail(f"expected a duration such as 24h, 90m, 1h30m or 7d, got {value!r}",
                      param, ctx)
        return float(sum(int(number) * UNITS[unit]
                         for number, unit in re.findall(r"(\d+)([smhdw])", text)))


@dataclass
class Leftover:
    """Something a crashed writer left, and how to remove it."""

    what: str
    remove: Callable[[], None]


def leftovers(storage: Storage, age: float) -> Iterator[Leftover]:
    """What crashed writers left in the store, untouched for `age` seconds:
    the probe of a ``rex attach check`` killed before its end, a local
    backend's staging entries (those of dead processes, whatever their
    age), an S3 bucket's multipart uploads never completed.  GCS keeps
    nothing of an interrupted upload but a session that expires."""
    for handle in probe.leftovers(storage, time.time() - age):
        yield Leftover(f"probe {handle} of rex attach check",
                       functools.partial(probe.discard, storage, handle))
    if isinstance(storage, LocalStorage):
        for entry in storage.leftovers(age):
            remove = shutil.rmtree if entry.is_dir(follow_symlinks=False) else os.unlink
            yield Leftover(f"staging entry {entry.path}", functools.partial(remove, entry.path))
    elif isinstance(storage, S3Storage):
        cutoff = time.time() - age
        with storage._outage():
            pages = storage.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=storage.bucket)
            for page in pages:
                for upload in page.get("Uploads", ()):
                    started = upload["Initiated"].timestamp()
                    if started < cutoff:
                        yield Leftover(
                            f"multipart upload of {upload['Key']} started {timestamp(started)}",
                            lambda upload=upload: _abort(storage, upload))


def _abort(storage: S3Storage, upload: dict[str, Any]) -> None:
    with storage._outage():
        storage.client.abort_multipart_upload(Bucket=storage.bucket, Key=upload["Key"],
                                              UploadId=upload["UploadId"])


@store_command("gc")
@click.option("--older-than", "age", type=Duration(), default="24h", show_default=True,
              help="The grace period: only what is older is removed.")
@click.option("--orphans", "with_orphans", is_flag=True,
              help="Also remove attachments that no record references.")
@click.option("--dry-run", "-n", is_flag=True, help="List what would be removed; remove nothing.")
@quiet_option
def gc(app: Rex, age: float, with_orphans: bool, dry_run: bool, quiet: bool) -> None:
    """Removes what crashed writers left in PACKAGE's store (local staging
    entries, S3 multipart uploads never completed, the probe of a check
    killed before its end) and, with --orphans,
    attachments that no record references; only what is older than the
    grace period, so that uploads in flight are never touched.  Prints a
    line for each, then a summary."""
    storage = get_storage()
    verb = "would remove" if dry_run else "removed"
    removed = failed = 0

    def collect(what: str, remove: Callable[[], None]) -> None:
        nonlocal removed, failed
        try:
            if not dry_run:
                remove()
        except (Error, OSError) as error:
            failed += 1
            click.echo(f"failed       {what}: {one_line(error)}")
        else:
            removed += 1
            click.echo(f"{verb} {what}")

    for leftover in leftovers(storage, age):
        collect(leftover.what, leftover.remove)
    if with_orphans:
        cutoff = time.time() - age  # before the records are read
        with Progress("gc", None, quiet) as progress:
            for kind, handle in orphans(storage):
                progress.advance()
                if kind != UNREFERENCED:
                    continue
                try:
                    stat = storage.stat(handle)
                except NotFoundError:
                    continue  # removed meanwhile
                if stat.st_mtime < cutoff:
                    collect(f"unreferenced {handle} of {timestamp(stat.st_mtime)}",
                            functools.partial(storage.remove, handle))
    click.echo(f"{verb} {removed}, {failed} failed")
    if failed:
        raise Found()
