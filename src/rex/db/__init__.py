"""The application's database: an SQLAlchemy engine from the `db` setting."""

from __future__ import annotations

import functools
import os
import sqlite3
import time
import weakref
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import NoSuchModuleError

from rex.core import Error, Initialize, Setting, StrVal, UnavailableError, cached, get_settings
from rex.core.health import HealthCheck

REQUIRES = ()

SQLITE_TIMEOUT = 30  # seconds an SQLite connection waits for another's lock
POSTGRES_DRIVER = "psycopg"  # what the project's `postgres` extra installs (psycopg 3)
POSTGRES_EXTRA = "pip install 'rex.attach[postgres]'"


class DbVal(StrVal):
    """An SQLAlchemy database URL; ``{cwd}`` expands to the working directory.

    The URL must name a database SQLAlchemy knows (``postgres://``, which it
    does not, is refused with a hint) whose driver is installed."""

    def __call__(self, value: Any) -> str:
        value = super().__call__(value).replace("{cwd}", os.getcwd())
        try:
            url = engine_url(value)
        except Exception:
            raise self._fail("Expected an SQLAlchemy database URL", value) from None
        if url.get_backend_name() == "postgres":
            raise self._fail("Expected a PostgreSQL URL to start with postgresql:// "
                             "(SQLAlchemy does not know postgres://)", value)
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise self._fail("Expected a database URL of a kind SQLAlchemy knows "
                             "(sqlite:///PATH, postgresql://...)", value) from None
        except ImportError as exc:
            error = Error("The database driver is not installed:", exc.name)
            if exc.name == POSTGRES_DRIVER:
                error.wrap("Install it with:", POSTGRES_EXTRA)
            elif url.get_backend_name() == "postgresql":
                error.wrap("Install it, or write postgresql:// for psycopg 3:", POSTGRES_EXTRA)
            raise error from None
        return value


def engine_url(value: str) -> URL:
    """The URL of the `db` setting as SQLAlchemy's engine takes it: a
    ``postgresql://`` URL that names no driver gets psycopg (3), the driver
    of the ``postgres`` extra (SQLAlchemy's own default is psycopg2)."""
    url = make_url(value)
    if url.drivername == "postgresql":
        url = url.set(drivername=f"postgresql+{POSTGRES_DRIVER}")
    return url


class DbSetting(Setting):
    """The database, as an SQLAlchemy URL: ``sqlite:///PATH`` (the default,
    embedded) or ``postgresql://USER:PASSWORD@HOST/NAME`` (psycopg 3, from
    ``pip install 'rex.attach[postgres]'``, unless the URL names another
    driver, as in ``postgresql+psycopg2://``)."""

    name = "db"
    validate = DbVal()
    default = "sqlite:///{cwd}/sandbox/db.sqlite"


@cached
def get_db() -> Engine:
    """The application's engine (one connection pool per application).

    A failure to reach or use the database (a refused or dropped connection,
    a locked or unreadable SQLite file) raises `UnavailableError` (503),
    chained from the driver's error; other errors (a bad statement, a
    violated constraint) stay SQLAlchemy's.
    """
    url = engine_url(get_settings().db)
    if url.get_backend_name() == "sqlite":
        _make_sqlite_directory(url)
        engine = sqlalchemy.create_engine(url, connect_args={"timeout": SQLITE_TIMEOUT})

        @sqlalchemy.event.listens_for(engine, "connect")
        def _on_connect(connection: sqlite3.Connection, record: Any) -> None:
            _use_wal(connection)
            connection.execute("PRAGMA foreign_keys=ON")
    else:
        engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
    sqlalchemy.event.listen(engine, "handle_error", functools.partial(
        _raise_unavailable, url.render_as_string(hide_password=True)))
    # A forked server worker must open its own connections, not reuse the
    # parent's (SQLAlchemy's advice for multiprocessing).  The hook lives as
    # long as the process, so it holds the engine weakly: an application that
    # is gone must not keep its pool, and its open connections, alive.
    os.register_at_fork(after_in_child=functools.partial(_forget_pool, weakref.ref(engine)))
    return engine


def _use_wal(connection: sqlite3.Connection) -> None:
    """Puts the SQLite database in WAL mode, which lets the server's
    processes read while one of them writes (the mode stays in the file).

    Connections that switch a new database at the same moment deadlock, and
    SQLite fails one of them at once instead of waiting (SQLITE_BUSY): that
    one tries again, within the busy timeout, until the other is done.
    """
    deadline = time.monotonic() + SQLITE_TIMEOUT
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            busy = (error.sqlite_errorname or "").startswith("SQLITE_BUSY")
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _make_sqlite_directory(url: URL) -> None:
    """Creates the missing parent directory of an SQLite database file (the
    default ``{cwd}/sandbox/db.sqlite`` in a fresh directory), readable by
    its owner only; SQLite creates the file, not the directory."""
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        directory = os.path.dirname(os.path.abspath(database))
        os.makedirs(directory, mode=0o700, exist_ok=True)


# SQLSTATE classes of PostgreSQL errors that say the server cannot serve now:
# connection exception, insufficient resources, operator intervention
# (shutdown, cancel), system error.
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


def _is_outage(context: ExceptionContext) -> bool:
    """Does this error say that the database cannot be reached or cannot work
    now, rather than that the statement is wrong?"""
    error, original = context.sqlalchemy_exception, context.original_exception
    if context.is_pre_ping or not isinstance(error, sqlalchemy.exc.DBAPIError):
        # A failed pre-ping makes the pool reconnect, which must go on;
        # KeyboardInterrupt and SQLAlchemy's own errors are no outage.
        return False
    if context.dialect.name == "sqlite":
        # Embedded: no connection to lose.  SQLITE_ERROR is a bad statement
        # ("no such table"); others (BUSY, CANTOPEN, IOERR, FULL...) are outages.
        name = getattr(original, "sqlite_errorname", None)
        return (isinstance(error, sqlalchemy.exc.OperationalError)
                and name is not None and name != "SQLITE_ERROR")
    if context.is_disconnect or isinstance(error, sqlalchemy.exc.InterfaceError):
        return True
    if isinstance(error, sqlalchemy.exc.OperationalError):
        sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
        # No SQLSTATE: the client failed to connect or lost the server.
        return sqlstate is None or sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
    return False


def _raise_unavailable(shown_url: str, context: ExceptionContext) -> None:
    """The engine's ``handle_error`` hook: an outage becomes `UnavailableError`
    (SQLAlchemy chains it from the driver's error), naming the database by
    `shown_url`, its URL without the password."""
    if _is_outage(context):
        raise UnavailableError("The database is unavailable:", shown_url)


def _forget_pool(engine_ref: weakref.ref[Engine]) -> None:
    """In a forked child: drops, without closing them, the parent's connections."""
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


def create_tables(metadata: sqlalchemy.MetaData) -> None:
    """Creates the tables of `metadata` that are missing, even while other
    processes (applications starting together on a new database) do the same.

    ``create_all`` checks, then creates: another process may create a table
    in between, and the ``CREATE TABLE`` then fails ("already exists", or on
    PostgreSQL a unique violation in its catalog).  Such an error is taken
    back once every table is found there; else the creation is tried again
    (each retry follows some other process's progress, so there are at most
    as many as tables).
    """
    engine = get_db()
    for attempt in range(len(metadata.tables) + 1):
        try:
            metadata.create_all(engine)
            return
        except sqlalchemy.exc.DBAPIError:
            inspector = sqlalchemy.inspect(engine)
            if all(inspector.has_table(table.name, schema=table.schema)
                   for table in metadata.tables.values()):
                return
            if attempt == len(metadata.tables):
                raise


class CheckDb(Initialize):
    """The database must be reachable."""

    def __call__(self) -> None:
        url = engine_url(get_settings().db)
        try:
            with get_db().connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except Exception as exc:
            raise UnavailableError("Cannot connect to database:",
                                   url.render_as_string(hide_password=True)
                                   ).wrap("Reason:", _reason(exc)) from None


class DatabaseHealth(HealthCheck):
    """The database answers ``SELECT 1`` (see `rex.core.health`)."""

    name = "database"

    def __call__(self) -> None:
        with get_db().connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))


def _reason(exc: BaseException) -> str:
    """The first line of the error at the root of `exc`'s chain: the driver's
    own words ("password authentication failed ...")."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


__all__ = ["DbSetting", "create_tables", "get_db"]
