"""The list of stored files, newest first, a page at a time."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Row

from rex.attach.handle import handle_name
from rex.db import get_db

from .database import file_table

PAGE_SIZE = 50  # rows


@dataclass(frozen=True)
class File:
    """A row of the list."""

    code: str
    title: str
    name: str  # as uploaded; for a row from before names were kept, the handle's
    size: int
    created: datetime.datetime  # in UTC

    @classmethod
    def of(cls, row: Row) -> File:
        created = row.created
        if created.tzinfo is None:  # SQLite keeps no time zone: the demo writes UTC
            created = created.replace(tzinfo=datetime.timezone.utc)
        return cls(row.code, row.title, row.name or handle_name(row.handle), row.size,
                   created.astimezone(datetime.timezone.utc))


@dataclass(frozen=True)
class Listing:
    """One page of the list: its files, its number and how many there are."""

    files: list[File]
    page: int
    pages: int

    def numbers(self) -> list[int | None]:
        """The pages to link to: the first, the last and those near this
        one; None where some are left out."""
        shown = sorted({1, self.pages, *range(max(1, self.page - 2),
                                               min(self.pages, self.page + 2) + 1)})
        numbers: list[int | None] = []
        for number in shown:
            if numbers and number - numbers[-1] > 1:  # type: ignore[operator]
                numbers.append(None)
            numbers.append(number)
        return numbers


def list_files(page: int) -> Listing:
    """Page `page` of the list (the last one if there are fewer)."""
    with get_db().connect() as connection:
        count = connection.scalar(select(func.count()).select_from(file_table)) or 0
        pages = max(1, -(-count // PAGE_SIZE))
        page = min(page, pages)
        rows = connection.execute(
            select(file_table)
            .order_by(file_table.c.created.desc(), file_table.c.code)
            .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return Listing([File.of(row) for row in rows], page, pages)


def find_file(code: str) -> File | None:
    """The file of a code, or None."""
    with get_db().connect() as connection:
        row = connection.execute(select(file_table).where(file_table.c.code == code)).first()
    return None if row is None else File.of(row)
