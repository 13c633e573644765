"""``rex attach COMMAND PACKAGE [NAME=VALUE ...] [--settings FILE]``: operate
the attachment store of an application: list, read, add and remove
attachments, check the store, verify their checksums, find and collect what
is left over, and migrate them to another store.  See docs/operations.rst."""

from __future__ import annotations

import click

from .check import check
from .content import add, cat, rm
from .gc import gc
from .listing import ls, stat
from .migrate import migrate
from .orphans import orphans
from .verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def attach() -> None:
    """Operate the attachment store of an application: PACKAGE, with its
    settings as for `rex serve`.  Exit status: 0 fine, 1 problems found,
    2 a mistake in the command or the settings."""


for command in (ls, stat, cat, add, rm, check, verify, orphans, gc, migrate):
    attach.add_command(command)
