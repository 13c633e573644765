"""Building the demo: from any working directory on its default database,
and in several processes at once on a new database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
import sqlalchemy
import yaml
from attach_demo.test_commands import post
from attach_demo.test_serve import TIMEOUT, rows, upload
from helpers import serve, start_postgres
from webob import Request

from rex.core import Rex
from rex.db import get_db


def test_default_database_from_an_empty_directory(tmp_path: Path, attach_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ``{cwd}/sandbox/db.sqlite`` works where ./sandbox is missing."""
    cwd = tmp_path / "empty"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir))
    assert post(app, code="V1", title="t", attachment=("a.txt", b"a")).status_int == 303
    assert Request.blank("/download?code=V1").get_response(app).body == b"a"
    assert (cwd / "sandbox" / "db.sqlite").is_file()
    assert os.stat(cwd / "sandbox").st_mode & 0o077 == 0  # the owner's only
    with app:
        get_db().dispose()


def test_rex_serve_on_the_default_database(tmp_path: Path, attach_dir: Path) -> None:
    # A settings file with no `db`, so that serve() adds none either.
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"attach_dir": str(attach_dir)}))
    assert not (tmp_path / "sandbox").exists()
    with serve(tmp_path, "--settings", str(settings)) as url:  # cwd: tmp_path
        assert upload(url, "V1", "First", "a.txt", b"first").status_code == 303
        assert [row["code"] for row in rows(url)] == ["V1"]
        assert requests.get(f"{url}/download?code=V1", timeout=TIMEOUT).content == b"first"
    assert (tmp_path / "sandbox" / "db.sqlite").is_file()


# Builds the demo once per database of its arguments, each time when the test
# says "go" to every process at once; prints one JSON line per build.
BUILDER = textwrap.dedent("""
    import json, sys
    import sqlalchemy.dialects.postgresql.psycopg, sqlalchemy.dialects.sqlite
    import rex.attach_demo
    from rex.core import Rex

    attach_dir, *databases = sys.argv[1:]
    for db in databases:
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            Rex("rex.attach_demo", attach_dir=attach_dir, db=db)
        except Exception as error:
            print(json.dumps(f"{type(error).__name__}: {error}"), flush=True)
        else:
            print(json.dumps("built"), flush=True)
""")
PROCESSES = 8


def build_at_once(attach_dir: Path, databases: list[str]) -> list[list[str]]:
    """`PROCESSES` processes build the demo on each database in turn, all
    starting each build together; what each build gave, per database."""
    processes = [subprocess.Popen([sys.executable, "-c", BUILDER, str(attach_dir), *databases],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(PROCESSES)]
    try:
        outcomes = []
        for _ in databases:
            # The barrier: every process has imported everything and waits.
            assert [process.stdout.readline() for process in processes] == ["ready\n"] * PROCESSES
            for process in processes:
                process.stdin.write("go\n")
                process.stdin.flush()
            outcomes.append([json.loads(process.stdout.readline()) for process in processes])
        for process in processes:
            process.stdin.close()
            assert process.wait(60) == 0
        return outcomes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


ROUNDS = 5


@pytest.mark.slow
def test_processes_building_at_once_on_a_new_sqlite_database(tmp_path: Path,
                                                             attach_dir: Path) -> None:
    databases = [f"sqlite:///{tmp_path}/round{number}.sqlite" for number in range(ROUNDS)]
    outcomes = build_at_once(attach_dir, databases)
    assert outcomes == [["built"] * PROCESSES] * ROUNDS
    for db in databases:
        engine = sqlalchemy.create_engine(db, poolclass=sqlalchemy.NullPool)
        assert sorted(sqlalchemy.inspect(engine).get_table_names()) == ["demo_key", "file"]


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_building_at_once_on_a_new_postgres_database(tmp_path: Path,
                                                               attach_dir: Path) -> None:
    with start_postgres(tmp_path) as url:
        databases = create_databases(url, "round")
        outcomes = build_at_once(attach_dir, databases)
        assert outcomes == [["built"] * PROCESSES] * ROUNDS
        for db in databases:
            engine = sqlalchemy.create_engine(db, poolclass=sqlalchemy.NullPool)
            assert sorted(sqlalchemy.inspect(engine).get_table_names()) == ["demo_key", "file"]


# The ``file`` table as the demo's first version made it: no ``name``.
OLDER_FILE_TABLE = ("CREATE TABLE file (code VARCHAR(64) PRIMARY KEY, title TEXT NOT NULL, "
                    "handle TEXT NOT NULL UNIQUE, size BIGINT NOT NULL, "
                    "created TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)")


@pytest.mark.slow
def test_processes_building_at_once_on_a_database_of_an_older_version(
        tmp_path: Path, attach_dir: Path) -> None:
    """Every process finds the ``name`` column missing and adds it: one
    does, the others' ALTER TABLE fails and is taken back; its old rows keep
    their values and get none."""
    assert_older_databases_upgrade(attach_dir, [f"sqlite:///{tmp_path}/older{number}.sqlite"
                                                for number in range(ROUNDS)])


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_building_at_once_on_a_postgres_database_of_an_older_version(
        tmp_path: Path, attach_dir: Path) -> None:
    with start_postgres(tmp_path) as url:
        assert_older_databases_upgrade(attach_dir, create_databases(url, "older"))


def create_databases(url: str, prefix: str) -> list[str]:
    """`ROUNDS` new databases on the PostgreSQL server of `url`; their URLs."""
    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT",
                                     poolclass=sqlalchemy.NullPool)
    with admin.connect() as connection:
        for number in range(ROUNDS):
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {prefix}{number}"))
    base = sqlalchemy.make_url(url)
    return [base.set(database=f"{prefix}{number}").render_as_string(hide_password=False)
            for number in range(ROUNDS)]


def assert_older_databases_upgrade(attach_dir: Path, databases: list[str]) -> None:
    for db in databases:
        engine = sqlalchemy.create_engine(db, poolclass=sqlalchemy.NullPool)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(OLDER_FILE_TABLE))
            connection.execute(sqlalchemy.text(
                "INSERT INTO file (code, title, handle, size) VALUES ('OLD', 'Old', "
                "'/2024/01/01/00000000-0000-4000-8000-000000000001/old.pdf', 3)"))
    outcomes = build_at_once(attach_dir, databases)
    assert outcomes == [["built"] * PROCESSES] * len(databases)
    for db in databases:
        engine = sqlalchemy.create_engine(db, poolclass=sqlalchemy.NullPool)
        columns = [column["name"] for column in sqlalchemy.inspect(engine).get_columns("file")]
        assert columns == ["code", "title", "handle", "size", "created", "name"]
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text(
                "SELECT code, title, size, name FROM file")).all() == [("OLD", "Old", 3, None)]
