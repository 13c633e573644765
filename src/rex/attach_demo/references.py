"""Where the demo keeps attachment handles: what `rex attach orphans` reads."""

from rex.attach import AttachmentReferences

from .database import file_table


class FileHandles(AttachmentReferences):
    """The ``handle`` column of the ``file`` table."""

    column = file_table.c.handle
