"""The demo's ``file`` table: one row per uploaded file."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, Text, func

from rex.core import Initialize
from rex.db import create_tables

metadata = MetaData()

file_table = Table(
    "file", metadata,
    Column("code", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("handle", Text, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class CreateFileTable(Initialize):
    """Creates the ``file`` table if it is missing (several processes may
    start at once on a new database)."""

    def __call__(self) -> None:
        create_tables(metadata)
