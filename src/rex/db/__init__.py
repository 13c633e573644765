"""The application's database: an SQLAlchemy engine from the `db` setting."""

from __future__ import annotations

import functools
import os
import weakref
from typing import Any

import sqlalchemy
from sqlalchemy.engine import Engine, make_url

from rex.core import Error, Initialize, Setting, StrVal, cached, get_settings

REQUIRES = ()


class DbVal(StrVal):
    """An SQLAlchemy database URL; ``{cwd}`` expands to the working directory."""

    def __call__(self, value: Any) -> str:
        value = super().__call__(value).replace("{cwd}", os.getcwd())
        try:
            make_url(value)
        except Exception:
            raise self._fail("Expected an SQLAlchemy database URL", value) from None
        return value


class DbSetting(Setting):
    """The database, as an SQLAlchemy URL: ``sqlite:///PATH`` (the default,
    embedded) or ``postgresql://USER:PASSWORD@HOST/NAME``."""

    name = "db"
    validate = DbVal()
    default = "sqlite:///{cwd}/sandbox/db.sqlite"


@cached
def get_db() -> Engine:
    """The application's engine (one connection pool per application)."""
    url = make_url(get_settings().db)
    if url.get_backend_name() == "sqlite":
        engine = sqlalchemy.create_engine(url, connect_args={"timeout": 30})

        @sqlalchemy.event.listens_for(engine, "connect")
        def _on_connect(connection: Any, record: Any) -> None:
            # WAL lets the server's processes read while one of them writes.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
    else:
        engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
    # A forked server worker must open its own connections, not reuse the
    # parent's (SQLAlchemy's advice for multiprocessing).  The hook lives as
    # long as the process, so it holds the engine weakly: an application that
    # is gone must not keep its pool, and its open connections, alive.
    os.register_at_fork(after_in_child=functools.partial(_forget_pool, weakref.ref(engine)))
    return engine


def _forget_pool(engine_ref: weakref.ref[Engine]) -> None:
    """In a forked child: drops, without closing them, the parent's connections."""
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


class CheckDb(Initialize):
    """The database must be reachable."""

    def __call__(self) -> None:
        url = make_url(get_settings().db)
        try:
            with get_db().connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except Exception as exc:
            raise Error("Cannot connect to database:", url.render_as_string(hide_password=True)
                        ).wrap("Reason:", str(exc).splitlines()[0]) from None


__all__ = ["get_db", "DbSetting"]
