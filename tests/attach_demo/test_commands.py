"""The demo's commands through its WSGI application, on SQLite: as an API
client (a script) and as a browser sees them."""

from __future__ import annotations

import datetime
import io
import re
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy
from helpers import staged
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from webob import Request, Response

from rex.attach import get_storage
from rex.attach.local import REMOVED
from rex.attach_demo.database import get_secret
from rex.attach_demo.listing import PAGE_SIZE
from rex.core import Rex
from rex.db import get_db

MiB = 1 << 20


def post(app: Rex, **fields):
    """POSTs the upload form as a script would: no Origin, no token."""
    return Request.blank("/upload", POST=fields).get_response(app)


class Browser:
    """A browser's side of the demo over WSGI: it keeps the cookies that
    pages set, asks for pages (``Accept: text/html``), and sends its forms
    with an ``Origin`` and the token of the last page it got."""

    def __init__(self, app: Rex) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.token = ""

    def headers(self) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {"Accept": "text/html", "Origin": "http://localhost", "Cookie": cookie}

    def get(self, url: str) -> Response:
        return self.answer(Request.blank(url, headers=self.headers()))

    def post(self, url: str, fields: dict, token: bool = True) -> Response:
        if token:
            fields = {"csrf_token": self.token, **fields}  # first, as the page sends it
        return self.answer(Request.blank(url, POST=fields, headers=self.headers()))

    def answer(self, request: Request) -> Response:
        response = request.get_response(self.app)
        for header in response.headers.getall("Set-Cookie"):
            name, _, value = header.partition(";")[0].partition("=")
            self.cookies[name] = value
        found = re.search(r'name="csrf_token" value="([^"]*)"', response.text)
        if found:
            self.token = found.group(1)
        return response

    def upload(self, code: str, title: str, name: str, content: bytes) -> Response:
        if not self.token:
            self.get("/")
        return self.post("/upload", {"code": code, "title": title, "attachment": (name, content)})


def reason(page: Response, field: str) -> str | None:
    """The reason a page gives next to a field ("form": the whole form)."""
    found = re.search(rf'<p class="error" id="{field}-error"[^>]*>([^<]*)</p>', page.text)
    return found.group(1) if found else None


def value(page: Response, field: str) -> str:
    return re.search(rf'<input id="{field}"[^>]*?value="([^"]*)"', page.text, re.S).group(1)


def listed_codes(page: Response) -> list[str]:
    return re.findall(r'<td class="code"[^>]*>([^<]*)</td>', page.text)


def test_upload_list_download(demo: Rex) -> None:
    response = post(demo, code="V1", title="Visit <1>", attachment=("Les Misérables.txt", b"Fantine"))
    assert response.status_int == 303
    # Relative (the Host header is not reflected), to the list with a notice.
    assert response.location.startswith("./?notice=")
    page = Request.blank(response.location[1:]).get_response(demo)
    assert page.status_int == 200
    assert '<p id="notice" class="notice" role="status">The file V1 was uploaded.</p>' in page.text
    assert "Visit &lt;1&gt;" in page.text and "<1>" not in page.text  # escaped
    assert 'href="download?code=V1"' in page.text and 'href="delete?code=V1"' in page.text
    assert '<td class="name" data-label="File">Les Misérables.txt</td>' in page.text
    assert '<td class="size" data-label="Size" title="7 bytes">7 Bytes</td>' in page.text
    download = Request.blank("/download?code=V1").get_response(demo)
    assert download.status_int == 200 and download.body == b"Fantine"
    assert "filename*=UTF-8''Les_Mis%C3%A9rables.txt" in download.headers["Content-Disposition"]
    assert Request.blank("/download?code=V2").get_response(demo).status_int == 404


def test_bad_input_stores_nothing(demo: Rex, attach_dir: Path) -> None:
    """A script gets the validators' own messages, as text."""
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
        assert response.content_type == "text/plain"
        assert message in response.text
    assert list(get_storage()) == before
    assert staged(attach_dir) == []
    assert Request.blank("/upload").get_response(demo).status_int == 405


@pytest.mark.parametrize("fields, status, field, message", [
    ({"code": "a b!", "title": "Spaced"}, 400, "code",
     "The code may contain only letters, digits and underscores."),
    ({"code": "c" * 65, "title": "Long"}, 400, "code", "The code may have at most 64 characters."),
    ({"code": "", "title": "No code"}, 400, "code", "Enter a code."),
    ({"code": "V2", "title": "   "}, 400, "title", "Enter a title."),
    ({"code": "V2", "title": "t" * 1001}, 400, "title",
     "The title may have at most 1,000 characters."),
    ({"code": "V1", "title": "Taken"}, 409, "code", "A file with code V1 already exists."),
    ({"code": "V2", "title": "No file", "attachment": ("", b"")}, 400, "attachment",
     "Choose a file."),
    ({"code": "V2", "title": "Big", "attachment": ("big.bin", b"x" * 1001)}, 413, "attachment",
     "The file is larger than 1000 Bytes."),
], ids=["bad-code", "long-code", "no-code", "blank-title", "long-title", "taken", "no-file",
        "too-large"])
def test_a_browser_is_shown_the_form_again_in_plain_words(
        tmp_path: Path, attach_dir: Path, fields: dict, status: int, field: str,
        message: str) -> None:
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/d.sqlite",
              attach_max_size=1000)
    browser = Browser(app)
    assert browser.upload("V1", "First", "a.txt", b"a").status_int == 303
    with app:
        before = list(get_storage())
    attachment = fields.get("attachment", ("b.txt", b"b"))
    page = browser.post("/upload", {**fields, "attachment": attachment})
    assert page.status_int == status
    assert page.content_type == "text/html"
    assert reason(page, field) == message
    # The form again, holding what was typed, its first wrong field focused,
    # with a word about the file, and the list below.
    assert value(page, "code") == fields["code"]
    assert value(page, "title") == fields["title"]
    assert re.search(rf'<input id="{field}"[^>]*aria-invalid="true"[^>]*autofocus', page.text, re.S)
    assert "Choose the file again: a refused form does not keep it." in page.text
    assert page.text.count("<p class=\"error\"") == 1
    assert listed_codes(page) == ["V1"]
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    with app:
        assert list(get_storage()) == before
    assert staged(attach_dir) == []


def test_every_wrong_field_is_told_at_once(demo: Rex) -> None:
    browser = Browser(demo)
    browser.get("/")
    page = browser.post("/upload", {"code": "a b", "title": " ", "attachment": ("", b"")})
    assert page.status_int == 400
    assert reason(page, "code") == "The code may contain only letters, digits and underscores."
    assert reason(page, "title") == "Enter a title."
    assert reason(page, "attachment") == "Choose a file."
    assert page.text.count("autofocus") == 1


def test_forms_need_the_token_of_their_browser(demo: Rex) -> None:
    """A signed double-submit cookie: a browser's form must bring the token
    of the cookie its page set, signed by the demo; a script needs none."""
    browser = Browser(demo)
    page = browser.get("/")
    cookie = page.headers["Set-Cookie"]
    assert "; HttpOnly" in cookie and "; SameSite=strict" in cookie and "; Path=/;" in cookie
    assert browser.cookies["csrf_token"] == browser.token
    assert browser.get("/").headers.get("Set-Cookie") is None  # kept, not replaced

    other = Browser(demo)
    other.get("/")
    forged = "0" * 43  # unsigned, as a cookie planted from elsewhere would be
    attachment = ("a.txt", b"a")
    cases = [
        ({}, {}),  # no token: a form posted from another site
        ({"csrf_token": browser.token}, {"csrf_token": ""}),  # the token without its cookie
        ({"csrf_token": other.token}, {}),  # another browser's token
        ({"csrf_token": forged}, {"csrf_token": forged}),
        ({"csrf_token": browser.token + "x"}, {"csrf_token": browser.token + "x"}),
    ]
    for token, cookies in cases:
        forger = Browser(demo)
        forger.cookies = {**browser.cookies, **cookies}
        page = forger.post("/upload", {**token, "code": "V1", "title": "t",
                                       "attachment": attachment}, token=False)
        assert page.status_int == 403, token
        assert reason(page, "form").startswith("This page was open for too long")
        assert value(page, "code") == "V1"
        assert listed_codes(page) == []
        # The page again brings a good token, with which the form goes.
        assert forger.post("/upload", {"code": "V1", "title": "t", "attachment": attachment}
                           ).status_int == 303
        forger.cookies = {**browser.cookies, **cookies}
        assert forger.post("/delete", {**token, "code": "V1"}, token=False).status_int == 403
        assert browser.post("/delete", {"code": "V1"}).status_int == 303
    # Sec-Fetch-Site alone says "a browser" too; a script is not asked.
    fields = {"code": "V2", "title": "t", "attachment": attachment}
    cross_site = Request.blank("/upload", POST=fields, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.get_response(demo).status_int == 403
    assert post(demo, code="V2", title="t", attachment=attachment).status_int == 303


def post_delete(app: Rex, code: str) -> Response:
    return Request.blank("/delete", POST={"code": code}).get_response(app)


class CountingInput:
    """A server's ``wsgi.input`` that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.count += len(chunk)
        return chunk


def upload_request(fields: dict[str, str], size: int, length: int | None = None,
                   headers: dict[str, str] | None = None) -> tuple[Request, CountingInput]:
    """An upload form of `fields` then a file of `size` bytes, as a server
    hands it over: unread, readable once, counting."""
    blank = Request.blank("/upload", POST={**fields, "attachment": ("big.bin", bytes(size))})
    body = CountingInput(blank.body)
    request = Request.blank("/upload", method="POST", content_type=blank.environ["CONTENT_TYPE"],
                            headers=headers or {})
    request.environ.update({"wsgi.input": body, "CONTENT_LENGTH": str(length or len(blank.body))})
    request.environ.pop("webob.is_body_seekable", None)
    return request, body


@pytest.mark.parametrize("accept", ["text/plain", "text/html"])
def test_a_form_bound_to_be_refused_is_refused_before_its_file_is_read(
        tmp_path: Path, attach_dir: Path, accept: str) -> None:
    """A bad or taken code is refused once the fields before the file are
    in (the first 1 MiB read of the body), a form longer than the largest
    file allows before any of it is read: for a script and for a browser."""
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/d.sqlite",
              attach_max_size=8 * MiB)
    assert post(app, code="V1", title="t", attachment=("a.txt", b"a")).status_int == 303
    headers = {"Accept": accept}
    for fields, size, status in [({"code": "V1", "title": "t"}, 5 * MiB, 409),
                                 ({"code": "a b", "title": "t"}, 5 * MiB, 400),
                                 ({"code": "V2", "title": " "}, 5 * MiB, 400)]:
        request, body = upload_request(fields, size, headers=headers)
        assert request.get_response(app).status_int == status
        assert body.count == MiB, fields
    # 8 MiB of file and more than the other fields could take: 413 unread.
    request, body = upload_request({"code": "V2", "title": "t"}, MiB, length=9 * MiB,
                                   headers=headers)
    response = request.get_response(app)
    assert response.status_int == 413
    assert body.count == 0
    if accept == "text/html":
        assert reason(response, "attachment") == "The file is larger than 8 MiB."
    else:
        assert "Expected a file of at most 8388608 bytes" in response.text
    # Within the limit, the same form goes through.
    request, body = upload_request({"code": "V2", "title": "t"}, 8 * MiB)
    assert request.get_response(app).status_int == 303
    assert body.count == len(body.stream.getvalue())


def test_delete_asks_then_removes_the_row_then_the_attachment(demo: Rex, attach_dir: Path) -> None:
    browser = Browser(demo)
    assert browser.upload("V1", "Visit 1", "report.pdf", b"%PDF").status_int == 303
    assert browser.upload("V2", "Visit 2", "other.pdf", b"%PDF-2").status_int == 303
    (handle,) = [handle for handle in get_storage() if handle.endswith("/report.pdf")]

    page = browser.get("/delete?code=V1")
    assert page.status_int == 200
    assert "<h1>Delete V1?</h1>" in page.text and '<dd class="name">report.pdf</dd>' in page.text
    assert '<input type="hidden" name="code" value="V1">' in page.text
    assert listed_codes(browser.get("/")) == ["V2", "V1"]  # a GET deletes nothing

    response = browser.post("/delete", {"code": "V1"})
    assert response.status_int == 303
    page = browser.get(response.location[1:])
    assert '<p id="notice" class="notice" role="status">The file V1 was deleted.</p>' in page.text
    assert listed_codes(page) == ["V2"]
    assert handle not in get_storage()  # removed, and its tombstone left
    assert (attach_dir / handle[1:]).parent.joinpath(REMOVED).exists()
    assert Request.blank("/download?code=V1").get_response(demo).status_int == 404

    # Deleted already, or never there: 404, in plain words for a browser.
    again = browser.post("/delete", {"code": "V1"})
    assert again.status_int == 404
    assert reason(again, "form") == "There is no file with code V1."
    missing = browser.get("/delete?code=V9")
    assert missing.status_int == 404
    assert reason(missing, "form") == \
        "There is no file with code V9: it may have been deleted already."
    assert post_delete(demo, "V9").status_int == 404
    assert browser.get("/delete?code=a+b").status_int == 400


def test_a_delete_that_fails_in_the_database_keeps_the_file(demo: Rex) -> None:
    """The row goes first: when it cannot, the file stays, and the row still
    points at it."""
    assert post(demo, code="V1", title="t", attachment=("a.txt", b"kept")).status_int == 303
    with get_db().begin() as connection:
        connection.execute(sqlalchemy.text(
            "CREATE TRIGGER refuse BEFORE DELETE ON file BEGIN SELECT RAISE(ABORT, 'no'); END"))
    assert post_delete(demo, "V1").status_int == 500  # a bug: logged, told nothing
    assert Request.blank("/download?code=V1").get_response(demo).body == b"kept"


def test_deleting_a_row_whose_attachment_is_gone_deletes_it(demo: Rex) -> None:
    assert post(demo, code="V1", title="t", attachment=("a.txt", b"a")).status_int == 303
    (handle,) = list(get_storage())
    get_storage().remove(handle)
    assert post_delete(demo, "V1").status_int == 303
    assert listed_codes(Request.blank("/").get_response(demo)) == []


def insert_rows(count: int) -> None:
    """`count` rows, one a minute, code ``F000`` the oldest (no files: the
    list reads rows only)."""
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    with get_db().begin() as connection:
        for number in range(count):
            connection.execute(sqlalchemy.text(
                "INSERT INTO file (code, title, handle, size, created, name) "
                "VALUES (:code, :title, :handle, :size, :created, :name)"),
                {"code": f"F{number:03}", "title": f"File {number}", "size": number << 20,
                 "handle": f"/2024/01/01/00000000-0000-4000-8000-{number:012}/f.bin",
                 "created": start + datetime.timedelta(minutes=number), "name": "f.bin"})


def test_the_list_is_newest_first_fifty_rows_a_page(demo: Rex) -> None:
    insert_rows(2 * PAGE_SIZE + 20)
    first = Request.blank("/").get_response(demo)
    assert listed_codes(first) == [f"F{number:03}" for number in range(119, 69, -1)]
    assert "Page 1 of 3:" in first.text
    assert '<a rel="next" href="./?page=2">Older</a>' in first.text
    assert 'rel="prev"' not in first.text
    assert '<time datetime="2024-01-01T01:59:00+00:00">2024-01-01 01:59 UTC</time>' in first.text
    assert 'title="124,780,544 bytes">119.0 MiB</td>' in first.text
    last = Request.blank("/?page=3").get_response(demo)
    assert listed_codes(last) == [f"F{number:03}" for number in range(19, -1, -1)]
    assert '<a rel="prev" href="./?page=2">Newer</a>' in last.text
    assert '<a aria-current="page">3</a>' in last.text
    # A page past the end (rows deleted since) shows the last one.
    assert listed_codes(Request.blank("/?page=9").get_response(demo)) == listed_codes(last)
    assert Request.blank("/?page=0").get_response(demo).status_int == 400


def test_page_links_skip_far_pages() -> None:
    from rex.attach_demo.listing import Listing
    assert Listing([], 1, 1).numbers() == [1]
    assert Listing([], 6, 12).numbers() == [1, None, 4, 5, 6, 7, 8, None, 12]
    assert Listing([], 2, 5).numbers() == [1, 2, 3, 4, 5]


def test_a_notice_is_ours_and_fresh_or_nothing(demo: Rex) -> None:
    def notice(token: str) -> str | None:
        found = re.search(r'<p id="notice"[^>]*>([^<]*)</p>',
                          Request.blank("/?" + "notice=" + token).get_response(demo).text)
        return found.group(1) if found else None

    made = URLSafeTimedSerializer(get_secret(), salt="rex.attach_demo.notice")
    assert notice(made.dumps(["deleted", "V1"])) == "The file V1 was deleted."
    other = URLSafeTimedSerializer(b"another key", salt="rex.attach_demo.notice")
    assert notice(other.dumps(["deleted", "V1"])) is None

    class Stale(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 601

    stale = URLSafeTimedSerializer(get_secret(), salt="rex.attach_demo.notice", signer=Stale)
    assert notice(stale.dumps(["deleted", "V1"])) is None
    assert notice("garbage") is None


def test_a_database_of_an_older_version_gets_the_name_column(tmp_path: Path,
                                                             attach_dir: Path) -> None:
    """The ``file`` table of before had no ``name``: starting adds it; its
    old rows show the name their handle ends with."""
    path = tmp_path / "old.sqlite"
    handle = "/2024/01/01/00000000-0000-4000-8000-000000000001/Old_report.pdf"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE file (code VARCHAR(64) PRIMARY KEY, title TEXT NOT NULL, "
                           "handle TEXT NOT NULL UNIQUE, size BIGINT NOT NULL, "
                           "created DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL)")
        connection.execute("INSERT INTO file (code, title, handle, size, created) "
                           "VALUES ('OLD', 'Old', ?, 5, '2024-01-01 10:00:00')", (handle,))
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(file)")]
    assert columns == ["code", "title", "handle", "size", "created", "name"]
    new = post(app, code="NEW", title="New", attachment=("New report.pdf", b"%PDF"))
    assert new.status_int == 303
    page = Request.blank("/").get_response(app)
    assert listed_codes(page) == ["NEW", "OLD"]
    assert '<td class="name" data-label="File">Old_report.pdf</td>' in page.text
    assert '<td class="name" data-label="File">New report.pdf</td>' in page.text
    assert "2024-01-01 10:00 UTC" in page.text
    Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{path}")  # once is enough


def test_the_stylesheet_and_the_script_are_files_of_the_application(demo: Rex) -> None:
    for name, content_type in [("style.css", "text/css"), ("upload.js", "text/javascript")]:
        response = Request.blank("/static/" + name).get_response(demo)
        assert response.status_int == 200
        assert response.content_type == content_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-cache"
        again = Request.blank("/static/" + name, headers={
            "If-Modified-Since": response.headers["Last-Modified"]}).get_response(demo)
        assert again.status_int == 304
    for path in ["/static/", "/static/missing.css", "/static/../commands.py",
                 "/static/%2e%2e/commands.py", "/static//etc/passwd"]:
        assert Request.blank(path).get_response(demo).status_int == 404, path
    assert Request.blank("/static/style.css", method="POST").get_response(demo).status_int == 405


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
    assert page.headers["Cache-Control"] == "private, no-cache"  # it holds a browser's token
    policy = dict(directive.strip().split(" ", 1)
                  for directive in page.headers["Content-Security-Policy"].split(";"))
    assert policy == {
        "default-src": "'self'",
        "script-src": "'self'",  # static/upload.js, nothing inline
        "style-src": "'self'",  # static/style.css, nothing inline
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    assert "<style" not in page.text and " style=" not in page.text
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="static/upload.js" defer>']


def test_unexpected_query_parameters_are_refused(demo: Rex) -> None:
    assert Request.blank("/?colour=blue").get_response(demo).status_int == 400
