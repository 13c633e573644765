"""``rex attach cat``, ``add`` and ``rm``: one attachment at a time."""

from __future__ import annotations

import os

import click

from rex.core import NotFoundError, Rex
from rex.core.cli import Failure

from ..handle import check_handle
from ..references import referenced
from ..settings import get_storage
from ..storage import CHUNK_SIZE
from .command import Found, Problem, store_command


@store_command("cat", "HANDLE", arity=(1, 1))
def cat(app: Rex, operands: list[str]) -> None:
    """Writes the content of an attachment to standard output, as it is
    read.  Exit status 1 if it does not exist or cannot be read whole."""
    out = click.get_binary_stream("stdout")
    with get_storage().open(check_handle(operands[0])) as stream:
        while chunk := stream.read(CHUNK_SIZE):
            out.write(chunk)
    out.flush()


@store_command("add", "FILE...", arity=(1, None))
@click.option("--name", metavar="NAME",
              help="The attachment's file name (one FILE only); default: the FILE's own "
                   "name, or 'stdin' for -.")
def add(app: Rex, operands: list[str], name: str | None) -> None:
    """Stores each FILE (- for standard input) as a new attachment and
    prints its handle, one line per file."""
    if name is not None and len(operands) > 1:
        raise click.UsageError("--name is for one FILE only.")
    for path in operands:
        if path != "-" and not os.path.isfile(path):
            raise Failure(f"No such file: {path}.")
    storage = get_storage()
    for path in operands:
        if path == "-":
            handle = storage.add(name or "stdin", click.get_binary_stream("stdin"))
        else:
            with open(path, "rb") as file:
                handle = storage.add(name or os.path.basename(path), file)
        click.echo(handle)


@store_command("rm", "HANDLE...", arity=(1, None))
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.option("--force", is_flag=True,
              help="Remove even attachments that the application's records reference.")
def rm(app: Rex, operands: list[str], yes: bool, force: bool) -> None:
    """Removes attachments.  Asks first, unless --yes; refuses, and removes
    none, if the application's records reference any of them, unless
    --force.  A removed handle is never used again."""
    handles = sorted({check_handle(handle) for handle in operands})
    if not force:
        wanted = set(handles)
        taken = [handle for handle in referenced() if handle in wanted]
        if taken:
            raise Problem("Refusing to remove attachments that records reference "
                          "(--force removes them anyway):\n"
                          + "\n".join(f"    {handle}" for handle in taken))
    if not yes:
        click.confirm(f"Remove {len(handles)} attachment{'s' if len(handles) > 1 else ''} "
                      f"for good?", abort=True, err=True)
    storage = get_storage()
    missing = False
    for handle in handles:
        try:
            storage.remove(handle)
        except NotFoundError as error:
            click.echo(f"rex: {error}", err=True)
            missing = True
        else:
            click.echo(f"removed {handle}")
    if missing:
        raise Found()
