"""The `db` setting: hints for the URL mistakes people make, psycopg (3)
for a PostgreSQL URL that names no driver, and the database health check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import start_postgres

from rex.core import Error, Rex
from rex.core.health import Health


def build(tmp_path: Path, db: str) -> Rex:
    (tmp_path / "attachments").mkdir(exist_ok=True)
    return Rex("rex.attach_demo", attach_dir=str(tmp_path / "attachments"), db=db)


def test_postgres_urls_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(Error) as info:
        build(tmp_path, "postgres://rex:hunter2@127.0.0.1/rex")
    assert str(info.value).startswith(
        "Expected a PostgreSQL URL to start with postgresql:// (SQLAlchemy does not know "
        "postgres://)\nGot:\n    'postgres://rex:***@127.0.0.1/rex'\n"
        "While validating setting:\n    db\n")
    assert "hunter2" not in str(info.value)


def test_an_unknown_kind_of_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Error, match="Expected a database URL of a kind SQLAlchemy knows"):
        build(tmp_path, "nosuchdb://127.0.0.1/rex")


@pytest.mark.parametrize("db, hint", [
    ("postgresql://rex:pw@127.0.0.1/rex",
     "The database driver is not installed:\n    psycopg\n"
     "Install it with:\n    pip install 'rex.attach[postgres]'\n"),
    ("postgresql+psycopg2://rex:pw@127.0.0.1/rex",
     "The database driver is not installed:\n    psycopg2\n"
     "Install it, or write postgresql:// for psycopg 3:\n    pip install 'rex.attach[postgres]'\n"),
])
def test_a_missing_driver_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                db: str, hint: str) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(Error) as info:
        build(tmp_path, db)
    assert str(info.value).startswith(hint)


@pytest.mark.postgres
def test_postgresql_urls_use_psycopg_and_an_outage_fails_the_health_check(tmp_path: Path) -> None:
    with start_postgres(tmp_path) as url:
        app = build(tmp_path, url.replace("postgresql+psycopg://", "postgresql://"))
        with app:
            from rex.db import get_db

            assert get_db().dialect.driver == "psycopg"
        assert Health(app, ttl=0).status() == {"database": "ok", "storage": "ok"}
    assert Health(app, ttl=0).status() == {"database": "failing", "storage": "ok"}
