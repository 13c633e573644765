"""The demo end to end: a real `rex serve` (gunicorn, 2 workers) on
127.0.0.1, spoken to over HTTP with `requests` and raw sockets."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from helpers import free_port, rex_script, serve, staged

TIMEOUT = 30  # seconds, for every request
MiB = 1 << 20
NON_ASCII = "Les Misérables.epub"


class Rows(HTMLParser):
    """The rows of the page's ``#files`` table: {"code", "title", "size":
    the exact size the cell shows on hover, "href": the download link}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._cell: str | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({})
        elif tag == "td" and self.rows:
            self._cell = attrs.get("class") if attrs.get("class") in ("code", "title") else None
            if attrs.get("class") == "size":
                self.rows[-1]["size"] = attrs["title"]
        elif tag == "a" and self.rows and attrs.get("class") == "download":
            self.rows[-1]["href"] = attrs["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.rows[-1][self._cell] = self.rows[-1].get(self._cell, "") + data


def rows(url: str) -> list[dict[str, str]]:
    page = requests.get(url + "/", timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    parser = Rows()
    parser.feed(page.text)
    return parser.rows


def upload(url: str, code: str, title: str, name: str | None, content: bytes | None,
           **extra: str) -> requests.Response:
    """POSTs the upload form as multipart/form-data, as a browser does; no
    file field when `name` is None."""
    fields = {name: (None, value) for name, value in {"code": code, "title": title, **extra}.items()}
    if name is not None:
        fields["attachment"] = (name, content, "application/octet-stream")
    return requests.post(url + "/upload", files=fields, allow_redirects=False, timeout=TIMEOUT)


def stored_files(attach_dir: Path) -> list[str]:
    """Every attachment file on disk, outside the hidden staging directory."""
    found = []
    for root, dirs, files in os.walk(attach_dir):
        dirs[:] = [name for name in dirs if name != ".tmp"]
        found += [os.path.join(root, name) for name in files if name != ".secret"]
    return sorted(found)


def handle_of(tmp_path: Path, code: str) -> str:
    with sqlite3.connect(tmp_path / "demo.sqlite") as connection:
        (handle,) = connection.execute("SELECT handle FROM file WHERE code = ?", (code,)).fetchone()
    return handle


def raw_request(url: str, request: str) -> bytes:
    """Sends one HTTP/1.1 request over a socket; the whole answer, to EOF."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(request.replace("\n", "\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_bad_requests_are_refused_and_store_nothing(tmp_path: Path) -> None:
    attach_dir = tmp_path / "attachments"
    with serve(tmp_path) as url:
        assert upload(url, "V1", "First", "a.txt", b"first").status_code == 303
        before_rows, before_files = rows(url), stored_files(attach_dir)
        assert len(before_rows) == 1 and len(before_files) == 1

        def refused(response: requests.Response, message: str, status: int = 400) -> None:
            assert response.status_code == status, response.text
            assert response.headers["Content-Type"].startswith("text/plain")
            assert message in response.text

        refused(upload(url, "V1", "Again", "b.txt", b"second"),
                "A file with this code already exists:\n    V1", 409)
        refused(upload(url, "a b", "Spaced", "b.txt", b"second"),
                "While parsing parameter:\n    code")
        refused(upload(url, "V2", "   ", "b.txt", b"second"), "While parsing parameter:\n    title")
        # No file field at all, and the empty file field of a form submitted
        # without choosing a file.
        refused(upload(url, "V2", "No file", None, None), "Missing mandatory parameter:\n    attachment")
        refused(upload(url, "V2", "No file", "", b""), "Expected an uploaded file")
        refused(upload(url, "V2", "Extra", "b.txt", b"second", colour="blue"),
                "Received unexpected parameter:\n    colour")

        assert rows(url) == before_rows
        assert stored_files(attach_dir) == before_files
        assert staged(attach_dir) == []  # no spooled upload left behind
        assert requests.get(f"{url}/download?code=V1", timeout=TIMEOUT).content == b"first"

        response = requests.get(url + "/upload", timeout=TIMEOUT)
        assert response.status_code == 405 and response.headers["Allow"] == "POST"
        assert requests.get(url + "/no/such/page", timeout=TIMEOUT).status_code == 404
        assert requests.get(url + "/download?code=V2", timeout=TIMEOUT).status_code == 404
        assert requests.get(url + "/download?code=a%20b", timeout=TIMEOUT).status_code == 400
        assert requests.get(url + "/download", timeout=TIMEOUT).status_code == 400


def test_attach_location_is_closed_unless_access_opens_it(tmp_path: Path) -> None:
    content = "Cosette".encode() * 1000
    with serve(tmp_path) as url:
        assert upload(url, "V1", "Hugo", NON_ASCII, content).status_code == 303
        handle = handle_of(tmp_path, "V1")
        assert handle.endswith("/Les_Misérables.epub")
        response = requests.get(url + "/attach" + quote(handle), timeout=TIMEOUT)
        assert response.status_code == 401
        assert b"Cosette" not in response.content
        # The demo's own page still serves it.
        assert requests.get(url + "/download?code=V1", timeout=TIMEOUT).content == content

    # The same directory and database, served again with /attach opened.
    with serve(tmp_path, "access={rex.attach: anybody}") as url:
        response = requests.get(url + "/attach" + quote(handle), timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.content == content
        assert "filename*=UTF-8''Les_Mis%C3%A9rables.epub" in response.headers["Content-Disposition"]
        assert requests.get(url + "/attach" + quote(handle) + "x", timeout=TIMEOUT).status_code == 404
        assert requests.get(url + "/attach/../demo.sqlite", timeout=TIMEOUT).status_code == 404


def run_rex_serve(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    port = free_port()
    process = subprocess.run([rex_script(), "serve", "rex.attach_demo", *args,
                              "--host", "127.0.0.1", "--port", str(port)],
                             cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60)
    return process, port


def assert_nothing_listens(port: int) -> None:
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_bad_setting_stops_rex_serve_with_a_message(tmp_path: Path) -> None:
    db = f"db=sqlite:///{tmp_path}/demo.sqlite"
    process, port = run_rex_serve(tmp_path, "attach_dir=/nonexistent", db)
    assert process.returncode != 0
    assert "Attachment storage must be an existing directory:\n    /nonexistent" in process.stderr
    assert "While initializing RexDB application:" in process.stderr
    assert_nothing_listens(port)

    (tmp_path / "attachments").mkdir()
    attach_dir = f"attach_dir={tmp_path}/attachments"
    process, port = run_rex_serve(tmp_path, attach_dir, db, "attach_max_size=ten")
    assert process.returncode != 0
    assert "Expected an integer" in process.stderr
    assert "While validating setting:\n    attach_max_size" in process.stderr
    assert_nothing_listens(port)

    process, port = run_rex_serve(tmp_path, attach_dir, db, "colour=blue")
    assert process.returncode != 0 and "Got unknown setting:\n    colour" in process.stderr

    process, port = run_rex_serve(tmp_path, attach_dir, db, "access={rex.attach: everybody}")
    assert process.returncode != 0 and "Got unknown permission:\n    everybody" in process.stderr

    # An unreachable database: the message names it, without its password.
    process, port = run_rex_serve(
        tmp_path, attach_dir, f"db=postgresql+psycopg://rex:S3cret-pw@127.0.0.1:{free_port()}/rex")
    assert process.returncode != 0
    assert "Cannot connect to database:\n    postgresql+psycopg://rex:***@127.0.0.1:" in process.stderr
    assert "S3cret-pw" not in process.stderr + process.stdout
