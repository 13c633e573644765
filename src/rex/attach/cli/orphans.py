"""``rex attach orphans``: attachments that no record references, and
records whose attachment is missing."""

from __future__ import annotations

import click

from rex.core import Rex

from ..references import MISSING, UNREFERENCED, orphans as find_orphans
from ..settings import get_storage
from .command import Found, store_command


@store_command("orphans")
def orphans(app: Rex) -> None:
    """Lists the attachments that no record of PACKAGE references
    ("unreferenced", such as those of uploads cut short by a crash), and the
    handles that records reference but the store does not hold ("missing"),
    then a summary.  The application declares where it keeps handles
    (rex.attach.AttachmentReferences).  Exit status 1 if any is found."""
    found = {UNREFERENCED: 0, MISSING: 0}
    for kind, handle in find_orphans(get_storage()):
        found[kind] += 1
        click.echo(f"{kind:<12} {handle}")
    click.echo(f"{found[UNREFERENCED]} unreferenced, {found[MISSING]} missing")
    if any(found.values()):
        raise Found()
