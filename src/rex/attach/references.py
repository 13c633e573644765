"""Where an application keeps attachment handles: what `rex attach orphans`,
``gc --orphans`` and ``rm`` need to tell a referenced attachment from an
orphan.

An application declares each place it keeps handles as a subclass of
`AttachmentReferences`; most name a database column::

    class FileHandles(AttachmentReferences):
        column = file_table.c.handle

The handles are read as one sorted stream (a server-side cursor on
PostgreSQL), so that they can be matched against the storage's own sorted
iteration in constant memory, however many rows there are.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from rex.core import Error, Extension

BATCH = 1000  # rows fetched at once
# Collations that order text by code point, as storages order handles.
CODE_POINT_ORDER = {"postgresql": "C", "sqlite": "BINARY", "mysql": "utf8mb4_bin"}


class AttachmentReferences(Extension):
    """A place where the application keeps attachment handles.

    Set `column` (an SQLAlchemy column of the application's database, see
    `rex.db`), or override `__iter__` for anything else; either way the
    handles come sorted by code point (the order of `Storage` iteration),
    duplicates allowed, ``None`` skipped.
    """

    column: ClassVar[Any] = None

    def __iter__(self) -> Iterator[str]:
        if self.column is None:
            raise NotImplementedError(f"{type(self).__name__} sets no column")
        import sqlalchemy

        from rex.db import get_db

        engine = get_db()
        column = self.column
        collation = CODE_POINT_ORDER.get(engine.dialect.name)
        query = sqlalchemy.select(column).where(column.is_not(None)).order_by(
            column.collate(collation) if collation else column)
        with engine.connect() as connection:
            rows = connection.execution_options(yield_per=BATCH).execute(query)
            for (handle,) in rows:
                yield handle

    def __str__(self) -> str:
        if self.column is not None:
            return f"{self.column.table.name}.{self.column.name}"
        return type(self).__name__


def referenced() -> Iterator[str]:
    """Every handle that the active application references, sorted, each
    once; `Error` if it declares no `AttachmentReferences` (then nothing can
    be told an orphan) or if a declaration does not come sorted."""
    sources = [source() for source in AttachmentReferences.all()]
    if not sources:
        raise Error("The application declares no AttachmentReferences: it cannot tell "
                    "which attachments its records reference")
    previous = None
    for handle in heapq.merge(*(checked_order(source, str(source)) for source in sources)):
        if handle != previous:
            yield handle
            previous = handle


def checked_order(items: Iterable[str], what: str) -> Iterator[str]:
    """The items, checked to come sorted: matching two sorted streams is
    only right if they are."""
    previous = ""
    for item in items:
        if item < previous:
            raise Error(f"Expected the handles of {what} in sorted order, got:",
                        f"{item} after {previous}")
        yield item
        previous = item


UNREFERENCED = "unreferenced"  # an attachment that no record references
MISSING = "missing"  # a record's handle that the storage does not hold


def orphans(storage: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(UNREFERENCED, handle)`` for each attachment of `storage` that no
    record references, ``(MISSING, handle)`` for each handle that records
    reference and the storage does not hold: both sorted streams matched
    in one pass, in constant memory."""
    stored = checked_order(storage, "the storage")
    references = referenced()
    attachment = next(stored, None)
    reference = next(references, None)
    while attachment is not None or reference is not None:
        if reference is None or (attachment is not None and attachment < reference):
            yield UNREFERENCED, attachment  # type: ignore[misc]
            attachment = next(stored, None)
        elif attachment is None or reference < attachment:
            yield MISSING, reference
            reference = next(references, None)
        else:
            attachment = next(stored, None)
            reference = next(references, None)
