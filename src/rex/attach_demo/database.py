"""The demo's tables: the ``file`` table, one row per uploaded file, and the
key that signs the demo's form tokens and messages."""

from __future__ import annotations

import secrets

import sqlalchemy
from sqlalchemy import (BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text,
                        func, insert, select)
from sqlalchemy.schema import CreateColumn

from rex.core import Initialize, cached
from rex.db import create_tables, get_db

metadata = MetaData()

file_table = Table(
    "file", metadata,
    Column("code", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("handle", Text, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The name of the file as it was uploaded.  Added after the first
    # release: rows from before have none (the handle ends with a
    # sanitized copy of it), and `add_missing_columns()` adds it.
    Column("name", Text, nullable=True),
)

key_table = Table(
    "demo_key", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", String(64), nullable=False),
)


class CreateFileTable(Initialize):
    """Creates the demo's tables if they are missing, the columns that a
    ``file`` table of an older version lacks, and the demo's key (several
    processes may start at once on a new database)."""

    def __call__(self) -> None:
        create_tables(metadata)
        add_missing_columns(file_table)
        get_secret()


def add_missing_columns(table: Table) -> None:
    """Adds to the database's table the columns of `table` that it lacks,
    which must be nullable: no migration to run, rows already there get
    NULL.  Another process adding the same column at the same moment makes
    the ``ALTER TABLE`` fail, which is then taken back."""
    engine = get_db()
    present = _columns(table)
    for column in table.columns:
        if column.name in present:
            continue
        assert column.nullable, f"{column} cannot be added to rows already there"
        ddl = (f"ALTER TABLE {engine.dialect.identifier_preparer.format_table(table)} "
               f"ADD COLUMN {CreateColumn(column).compile(dialect=engine.dialect)}")
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(ddl))
        except sqlalchemy.exc.DBAPIError:
            if column.name not in _columns(table):
                raise


def _columns(table: Table) -> set[str]:
    return {column["name"] for column in sqlalchemy.inspect(get_db()).get_columns(table.name)}


@cached
def get_secret() -> bytes:
    """The key that signs the demo's CSRF tokens and messages: kept in the
    database, so that every server process, and the next start, has the
    same one; made once, by whichever process needs it first, and never
    replaced."""
    query = select(key_table.c.secret).where(key_table.c.id == 1)
    with get_db().connect() as connection:
        secret = connection.scalar(query)
    if secret is None:
        try:
            with get_db().begin() as connection:
                connection.execute(insert(key_table).values(id=1, secret=secrets.token_hex(32)))
        except sqlalchemy.exc.IntegrityError:
            pass  # another process made it first: use that one
        with get_db().connect() as connection:
            secret = connection.scalar(query)
    return secret.encode()
