"""The demo on a real PostgreSQL, chosen by the `db` URL alone: in-process
(where an application that goes away must close its connections), under
`rex serve` (gunicorn, 2 forked workers), with a wrong password, with a
COMMIT whose answer is lost and with a server that is gone."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy
from attach_demo.test_commands import assert_lengths_are_bounded, post
from attach_demo.test_serve import (MiB, TIMEOUT, assert_nothing_listens, rows, run_rex_serve,
                                    stored_files, upload)
from helpers import HOST, PG_PASSWORD, serve, staged, start_postgres
from sqlalchemy.engine import make_url
from webob import Request

from rex.attach import get_storage
from rex.core import Rex
from rex.db import get_db

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[sqlalchemy.Engine]:
    """A fresh PostgreSQL cluster; an engine of the test's own on it."""
    with start_postgres(tmp_path) as url:
        engine = sqlalchemy.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def db_url(engine: sqlalchemy.Engine) -> str:
    """The URL of `engine`, password included, as the `db` setting takes it."""
    return engine.url.render_as_string(hide_password=False)


def codes(engine: sqlalchemy.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(sqlalchemy.text("SELECT code FROM file ORDER BY code")))


def test_commands_on_postgres(postgres: sqlalchemy.Engine, attach_dir: Path) -> None:
    assert not sqlalchemy.inspect(postgres).has_table("file")
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=db_url(postgres))
    # Initialization created the table.
    assert sqlalchemy.inspect(postgres).has_table("file")
    with app:
        assert get_db().dialect.name == "postgresql"
    try:
        response = post(app, code="V1", title="Visit <1>", attachment=("Les Misérables.txt", b"Fantine"))
        assert response.status_int == 303 and response.location.startswith("./?notice=")
        page = Request.blank("/").get_response(app)
        assert page.status_int == 200
        assert "Visit &lt;1&gt;" in page.text and 'href="download?code=V1"' in page.text
        assert 'title="7 bytes"' in page.text and "Les Misérables.txt" in page.text
        download = Request.blank("/download?code=V1").get_response(app)
        assert download.status_int == 200 and download.body == b"Fantine"
        assert Request.blank("/download?code=V2").get_response(app).status_int == 404

        response = post(app, code="V1", title="again", attachment=("b.txt", b"b"))
        assert response.status_int == 409
        assert "A file with this code already exists:\n    V1" in response.text
        assert post(app, code="a b", title="t", attachment=("b.txt", b"b")).status_int == 400
        assert codes(postgres) == ["V1"]
        with app:
            assert len(list(get_storage())) == 1

        # A row PostgreSQL refuses: the stored file is removed again.
        with postgres.begin() as connection:
            connection.execute(sqlalchemy.text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"))
            connection.execute(sqlalchemy.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON file FOR EACH ROW EXECUTE FUNCTION refuse()"))
        response = post(app, code="V2", title="t", attachment=("c.txt", b"c"))
        assert response.status_int == 500 and "disk full" not in response.text  # a logged bug
        assert codes(postgres) == ["V1"]
        with app:
            assert len(list(get_storage())) == 1
        assert staged(attach_dir) == []

        # A second application on the same database keeps the table and its rows.
        again = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=db_url(postgres))
        try:
            assert Request.blank("/download?code=V1").get_response(again).body == b"Fantine"
        finally:
            with again:
                get_db().dispose()
    finally:
        with app:
            get_db().dispose()


def connections(engine: sqlalchemy.Engine, application_name: str) -> int:
    """How many connections of this application name the server has."""
    with engine.connect() as connection:
        return connection.scalar(sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": application_name})


# Dropping an application without closing its pool is the point here.
@pytest.mark.filterwarnings("ignore:.*deleted while still open:ResourceWarning")
def test_a_dropped_application_closes_its_connections(postgres: sqlalchemy.Engine,
                                                      attach_dir: Path) -> None:
    url = make_url(db_url(postgres)).update_query_dict({"application_name": "dropped"})
    for _ in range(3):
        app = Rex("rex.attach_demo", attach_dir=str(attach_dir),
                  db=url.render_as_string(hide_password=False))
        assert Request.blank("/").get_response(app).status_int == 200
        assert connections(postgres, "dropped") == 1
        del app
        gc.collect()
        # The backend of a closed connection exits asynchronously.
        deadline = time.monotonic() + 10
        while connections(postgres, "dropped") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connections(postgres, "dropped") == 0


def test_rex_serve_on_postgres(postgres: sqlalchemy.Engine, tmp_path: Path) -> None:
    attach_dir = tmp_path / "attachments"
    big, text = os.urandom(3 * MiB), "Fantine, Cosette.\n".encode() * 100
    with serve(tmp_path, f"db={db_url(postgres)}") as url:
        assert rows(url) == []
        assert upload(url, "big", "Noise", "noise.bin", big).status_code == 303
        assert upload(url, "novel", "Victor Hugo", "novel.txt", text).status_code == 303
        assert rows(url) == [  # newest first
            {"code": "novel", "title": "Victor Hugo", "size": f"{len(text):,} bytes",
             "href": "download?code=novel"},
            {"code": "big", "title": "Noise", "size": f"{len(big):,} bytes",
             "href": "download?code=big"},
        ]

        # Many requests at once, so that both workers query PostgreSQL at the
        # same time, each on its own connections.
        def fetch(code: str) -> bytes:
            response = requests.get(f"{url}/download?code={code}", timeout=TIMEOUT)
            assert response.status_code == 200
            return response.content

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(fetch, ["big", "novel"] * 20)) == [big, text] * 20
            assert all(len(found) == 2 for found in pool.map(lambda _: rows(url), range(40)))

        response = upload(url, "novel", "Again", "other.txt", b"other")
        assert response.status_code == 409
        assert "A file with this code already exists:\n    novel" in response.text
        assert requests.get(f"{url}/download?code=novel", timeout=TIMEOUT).content == text

    assert codes(postgres) == ["big", "novel"]
    assert len(stored_files(attach_dir)) == 2
    assert staged(attach_dir) == []


def test_wrong_password_stops_rex_serve(postgres: sqlalchemy.Engine, tmp_path: Path) -> None:
    wrong_password = "Wr0ng-passw0rd"
    url = make_url(db_url(postgres)).set(password=wrong_password)
    (tmp_path / "attachments").mkdir()
    process, port = run_rex_serve(tmp_path, f"attach_dir={tmp_path}/attachments",
                                  f"db={url.render_as_string(hide_password=False)}")
    assert process.returncode != 0
    assert process.stderr.startswith(
        f"rex: Cannot connect to database:\n    postgresql+psycopg://rex:***@127.0.0.1:{url.port}/rex\n")
    assert "password authentication failed" in process.stderr
    for password in (wrong_password, PG_PASSWORD):
        assert password not in process.stderr + process.stdout
    assert_nothing_listens(port)


def test_file_table_holds_sizes_over_2_gib(postgres: sqlalchemy.Engine, attach_dir: Path) -> None:
    """``size`` is a 64-bit integer: a 3 GiB attachment gets its row."""
    from rex.attach_demo import file_table

    Rex("rex.attach_demo", attach_dir=str(attach_dir), db=db_url(postgres))
    with postgres.begin() as connection:
        connection.execute(sqlalchemy.insert(file_table).values(
            code="BIG", title="big", handle="/2026/01/01/x/big.bin", size=3 << 30))
        assert connection.scalar(sqlalchemy.select(file_table.c.size)) == 3 << 30


def test_code_and_title_lengths_are_bounded_on_postgres(postgres: sqlalchemy.Engine,
                                                        attach_dir: Path) -> None:
    """A code longer than its column is a 400, not PostgreSQL's refusal (500)."""
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=db_url(postgres))
    try:
        assert_lengths_are_bounded(app)
        assert codes(postgres) == ["c" * 64]
    finally:
        with app:
            get_db().dispose()


class CommitCutter:
    """A TCP proxy in front of PostgreSQL that, once `arm()`ed, cuts the next
    connection that sends ``COMMIT``, as a network failure would:

    - ``lost_answer=True``: the COMMIT reaches the server, the proxy waits for
      the server's answer (so the row is committed) and drops it, closing the
      client's connection instead;
    - ``lost_answer=False``: the COMMIT itself is dropped, both connections
      closed (so the server rolls back).

    Either way the client sees its connection die during COMMIT and cannot
    tell which happened.  The client sends COMMIT alone, after the answer to
    its previous statement, so one read holds the whole message.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener = socket.create_server((HOST, 0))
        self.address = self.listener.getsockname()
        self.lost_answer = True
        self._armed = threading.Event()
        self.cut = threading.Event()  # set once a connection was cut
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, *, lost_answer: bool) -> None:
        self.lost_answer = lost_answer
        self._armed.set()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection((HOST, self.port))
                self._sockets += [client, server]
                cutting = threading.Event()  # this connection's COMMIT was let through
                threading.Thread(target=self._to_server, args=(client, server, cutting),
                                 daemon=True).start()
                threading.Thread(target=self._to_client, args=(server, client, cutting),
                                 daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket,
                   cutting: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self._armed.is_set() and b"COMMIT\0" in data:
                    self._armed.clear()
                    if not self.lost_answer:
                        self._close(client, server)
                        return
                    cutting.set()  # before the COMMIT leaves: its answer must not pass
                server.sendall(data)

    def _to_client(self, server: socket.socket, client: socket.socket,
                   cutting: threading.Event) -> None:
        answer = b""
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if not cutting.is_set():
                    client.sendall(data)
                    continue
                answer += data
                # CommandComplete "COMMIT", then ReadyForQuery: committed.
                if b"COMMIT\0" in answer and b"Z\0\0\0\x05" in answer:
                    self._close(client, server)
                    return

    def _close(self, *sockets: socket.socket) -> None:
        self.cut.set()  # before the client can see its connection closed
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            sock.close()


@pytest.mark.parametrize("lost_answer", [True, False], ids=["committed", "rolled-back"])
def test_an_upload_whose_commit_fails_keeps_its_file(postgres: sqlalchemy.Engine,
                                                     attach_dir: Path, lost_answer: bool) -> None:
    """The connection dies during COMMIT: the application cannot know whether
    the row was committed, so it must not remove the file the row may point
    at.  When PostgreSQL did commit, the row and its file are both there and
    the download works; when it did not, the file is an orphan (the safe
    failure, for a later sweep).  The client hears 503."""
    cutter = CommitCutter(postgres.url.port)
    url = postgres.url.set(host=cutter.address[0], port=cutter.address[1])
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir),
              db=url.render_as_string(hide_password=False))
    try:
        cutter.arm(lost_answer=lost_answer)
        response = post(app, code="V1", title="Visit 1", attachment=("a.txt", b"kept"))
        assert cutter.cut.is_set()
        assert response.status_int == 503
        assert "The database is unavailable:" in response.text
        assert PG_PASSWORD not in response.text
        with app:
            (handle,) = list(get_storage())
            assert get_storage().open(handle).read() == b"kept"
        if lost_answer:
            assert codes(postgres) == ["V1"]
            download = Request.blank("/download?code=V1").get_response(app)
            assert download.status_int == 200 and download.body == b"kept"
        else:
            assert codes(postgres) == []
    finally:
        with app:
            get_db().dispose()
        cutter.close()


def test_a_stopped_database_is_503_without_its_password(tmp_path: Path, attach_dir: Path) -> None:
    """PostgreSQL goes away after the application was built: every page that
    needs it answers 503 (an outage, not a fault of the request or a missing
    thing), naming the database without its password; nothing is stored."""
    with start_postgres(tmp_path) as url:
        app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=url)
        assert Request.blank("/").get_response(app).status_int == 200
        # A connection the server drops is replaced unnoticed (pre-ping).
        admin = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
        with admin.connect() as connection:
            killed = connection.scalars(sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND backend_type = 'client backend'")).all()
        assert killed == [True]
        assert Request.blank("/").get_response(app).status_int == 200
    try:
        shown = make_url(url).render_as_string(hide_password=True)
        for request in [Request.blank("/", headers={"Accept": "text/html"}),
                        Request.blank("/download?code=V1"),
                        Request.blank("/upload", POST={"code": "V1", "title": "t",
                                                       "attachment": ("a.txt", b"a")})]:
            response = request.get_response(app)
            assert response.status_int == 503, request.path
            assert response.headers["Retry-After"] == "5"
            assert "The database is unavailable:" in response.text
            assert shown in response.text
            assert PG_PASSWORD not in response.text
        with app:
            assert list(get_storage()) == []
    finally:
        with app:
            get_db().dispose()


@pytest.mark.parametrize("lost_answer", [True, False], ids=["committed", "rolled-back"])
def test_a_delete_whose_commit_fails_keeps_the_file(postgres: sqlalchemy.Engine,
                                                    attach_dir: Path, lost_answer: bool) -> None:
    """The connection dies during the COMMIT of a deletion: the application
    cannot know whether the row is gone, so it must not remove the file.
    When it is gone, the file is an orphan; when not, the row still points
    at the file, which still downloads.  The client hears 503."""
    cutter = CommitCutter(postgres.url.port)
    url = postgres.url.set(host=cutter.address[0], port=cutter.address[1])
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir),
              db=url.render_as_string(hide_password=False))
    try:
        uploaded = post(app, code="V1", title="Visit 1", attachment=("a.txt", b"kept"))
        assert uploaded.status_int == 303
        cutter.arm(lost_answer=lost_answer)
        response = Request.blank("/delete", POST={"code": "V1"}).get_response(app)
        assert cutter.cut.is_set()
        assert response.status_int == 503
        with app:
            (handle,) = list(get_storage())
            assert get_storage().open(handle).read() == b"kept"
        if lost_answer:
            assert codes(postgres) == []
        else:
            assert codes(postgres) == ["V1"]
            download = Request.blank("/download?code=V1").get_response(app)
            assert download.status_int == 200 and download.body == b"kept"
    finally:
        with app:
            get_db().dispose()
        cutter.close()
