"""The demo's commands through its WSGI application, on SQLite."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import sqlalchemy
from helpers import staged
from webob import Request

from rex.attach import get_storage
from rex.core import Rex
from rex.db import get_db


def post(app: Rex, **fields):
    return Request.blank("/upload", POST=fields).get_response(app)


def test_upload_list_download(demo: Rex) -> None:
    response = post(demo, code="V1", title="Visit <1>", attachment=("Les Misérables.txt", b"Fantine"))
    assert response.status_int == 303
    assert response.location == "./"  # relative: the Host header is not reflected
    page = Request.blank("/").get_response(demo)
    assert page.status_int == 200
    assert "Visit &lt;1&gt;" in page.text and "<1>" not in page.text  # escaped
    assert 'href="download?code=V1"' in page.text and "7 bytes" in page.text
    download = Request.blank("/download?code=V1").get_response(demo)
    assert download.status_int == 200 and download.body == b"Fantine"
    assert "filename*=UTF-8''Les_Mis%C3%A9rables.txt" in download.headers["Content-Disposition"]
    assert Request.blank("/download?code=V2").get_response(demo).status_int == 404


def test_bad_input_stores_nothing(demo: Rex, attach_dir: Path) -> None:
    assert post(demo, code="V1", title="t", attachment=("a.txt", b"a")).status_int == 303
    before = list(get_storage())
    cases = [
        ({"code": "V1", "title": "again", "attachment": ("b.txt", b"b")},
         "A file with this code already exists:\n    V1"),
        ({"code": "a b", "title": "t", "attachment": ("b.txt", b"b")}, "While parsing parameter:\n    code"),
        ({"code": "V2", "title": "  ", "attachment": ("b.txt", b"b")}, "While parsing parameter:\n    title"),
        ({"code": "V2", "title": "t", "attachment": "text"}, "Expected an uploaded file"),
        ({"code": "V2", "title": "t"}, "Missing mandatory parameter:\n    attachment"),
    ]
    for fields, message in cases:
        response = post(demo, **fields)
        assert response.status_int == (409 if "already exists" in message else 400), fields
        assert message in response.text
    assert list(get_storage()) == before
    assert staged(attach_dir) == []
    assert Request.blank("/upload").get_response(demo).status_int == 405


def test_oversized_upload_is_413_and_leaves_nothing(tmp_path: Path, attach_dir: Path) -> None:
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/d.sqlite",
              attach_max_size=1000)
    assert post(app, code="ok", title="t", attachment=("a.bin", b"x" * 1000)).status_int == 303
    response = post(app, code="big", title="t", attachment=("a.bin", b"x" * 1001))
    assert response.status_int == 413
    with app:
        assert len(list(get_storage())) == 1
    assert staged(attach_dir) == []


def test_failed_row_insert_removes_the_attachment(demo: Rex, caplog) -> None:
    with get_db().begin() as connection:
        connection.execute(sqlalchemy.text(
            "CREATE TRIGGER refuse BEFORE INSERT ON file BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    response = post(demo, code="V1", title="t", attachment=("a.txt", b"a"))
    assert response.status_int == 500 and "disk full" not in response.text
    assert isinstance(caplog.records[-1].exc_info[1], sqlalchemy.exc.IntegrityError)  # logged
    assert list(get_storage()) == []


def test_page_works_without_any_file(demo: Rex) -> None:
    page = Request.blank("/").get_response(demo)
    assert 'id="empty"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert "http" not in page.text.split("<body>")[1]  # no resource from elsewhere


def test_code_and_title_lengths_are_bounded(demo: Rex) -> None:
    """A code fits its column (64 characters) and a title 1,000 characters:
    longer ones are a 400 that says so, and store nothing, on SQLite too
    (which would store any length)."""
    assert_lengths_are_bounded(demo)
    with demo:
        assert codes(get_db()) == ["c" * 64]


def assert_lengths_are_bounded(app: Rex) -> None:
    """Shared with the PostgreSQL tests."""
    assert post(app, code="c" * 64, title="t" * 1000, attachment=("a.txt", b"a")).status_int == 303
    with app:
        before = list(get_storage())
    for fields, message in [
        ({"code": "c" * 65, "title": "t"}, "Expected a string no longer than:\n    64 characters"),
        ({"code": "c" * 5000, "title": "t"}, "Expected a string no longer than:\n    64 characters"),
        ({"code": "V2", "title": "t" * 1001}, "Expected a string no longer than:\n    1000 characters"),
    ]:
        response = post(app, **fields, attachment=("b.txt", b"b"))
        assert response.status_int == 400, fields
        assert message in response.text
        assert len(response.text) < 1000  # the value is not echoed whole
    response = Request.blank("/download?code=" + "c" * 65).get_response(app)
    assert response.status_int == 400
    assert "Expected a string no longer than:\n    64 characters" in response.text
    assert Request.blank("/download?code=" + "c" * 64).get_response(app).body == b"a"
    with app:
        assert list(get_storage()) == before


def codes(engine: sqlalchemy.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(sqlalchemy.text("SELECT code FROM file ORDER BY code")))


def test_page_forbids_foreign_content_framing_and_sniffing(demo: Rex) -> None:
    page = Request.blank("/").get_response(demo)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    policy = dict(directive.strip().split(" ", 1)
                  for directive in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'none'"  # the page needs none
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert policy["base-uri"] == "'none'"
    # The page's one inline stylesheet is allowed by its hash, nothing else
    # inline is ('unsafe-inline' would allow any injected style).
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"
