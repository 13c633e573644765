"""Hostile requests to the demo with /attach open: whatever a client sends,
the answer is never a 5xx (a 5xx is a bug, or an outage), and a redirect
never reflects the Host header.

Hypothesis runs derandomized: the same examples on every run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from rex.attach import get_storage
from rex.core import Rex

FUZZ = settings(derandomize=True, max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Site:
    """The demo on a temporary directory, with a stored file, its handle and
    signed links to it."""

    def __init__(self, root: Path) -> None:
        (root / "attachments").mkdir()
        self.app = Rex("rex.attach_demo", attach_dir=str(root / "attachments"),
                       db=f"sqlite:///{root}/demo.sqlite", access={"rex.attach": "anybody"},
                       attach_max_size=1 << 16)
        with self.app:
            self.handle = get_storage().add("отчёт 1.txt", bytes(range(256)) * 4)
            self.download = get_storage().download_link(self.handle).url
            self.upload = get_storage().upload_link(get_storage().reserve("new.bin"), 16).url

    def answer(self, method: str, path: bytes, query: bytes = b"", headers: dict | None = None,
               body: bytes = b"") -> tuple[int, dict, bytes]:
        """Sends a request as a server gives it: PATH_INFO and QUERY_STRING
        are the raw bytes of the request line, as latin-1 (PEP 3333)."""
        request = Request.blank("/", method=method, headers=headers or {})
        request.environ["PATH_INFO"] = path.decode("latin-1")
        request.environ["QUERY_STRING"] = query.decode("latin-1")
        if body or method in ("POST", "PUT"):
            request.body = body
            request.environ.setdefault("CONTENT_TYPE", "")
        response = request.get_response(self.app)  # reads the whole body, as a server would
        return response.status_int, dict(response.headers), response.body


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    yield Site(tmp_path_factory.mktemp("hostile"))


SEGMENTS = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"", b".", b"..", b"%2e%2e", b"%00", b"%ff", b"%c3", b"\xff", b"\xc3\xa9",
                     b"2026", b"01", b"a.txt", b".secret", b".tmp", b"attach", b"~", b"%2F"]),
    st.text(max_size=12).map(lambda text: text.encode("utf-8", "surrogatepass")),
)
PATHS = st.lists(SEGMENTS, max_size=8).map(lambda parts: b"/" + b"/".join(parts))
QUERIES = st.one_of(
    st.binary(max_size=40),
    st.lists(st.tuples(st.sampled_from([b"code", b"expires", b"signature", b"x", b"%ff", b""]),
                       st.binary(max_size=20)), max_size=4).map(
        lambda pairs: b"&".join(name + b"=" + value for name, value in pairs)),
)
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60),
    st.sampled_from(["bytes=-0", "bytes=0-1,5-6", "bytes=5-2", "bytes=1000000-", "bytes=0-",
                     "bytes=" + "9" * 5000 + "-", '"x"', "*", "W/\"a\"", "Mon, 32 Foo 99",
                     "text/html", "multipart/form-data; boundary=" + "b" * 300]),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Range", "If-None-Match", "If-Modified-Since", "If-Range", "Accept",
                     "If-Match", "Host", "Content-Type", "Authorization", "Cookie"]),
    HEADER_VALUES, max_size=4)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])


@FUZZ
@given(method=METHODS, path=PATHS, query=QUERIES, headers=HEADERS)
def test_arbitrary_requests_are_never_5xx(site: Site, method, path, query, headers) -> None:
    status, _, _ = site.answer(method, path, query, headers)
    assert status < 500


@FUZZ
@given(tail=PATHS, query=QUERIES, headers=HEADERS,
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT"]))
def test_arbitrary_attach_paths_are_never_5xx(site: Site, tail, query, headers, method) -> None:
    status, _, _ = site.answer(method, b"/attach" + tail, query, headers)
    assert status < 500


@FUZZ
@given(mutation=st.sampled_from(["handle", "expires", "signature", "both"]),
       value=st.binary(max_size=30), headers=HEADERS, body=st.binary(max_size=20),
       method=st.sampled_from(["GET", "HEAD", "PUT"]))
def test_mangled_links_are_never_5xx(site: Site, mutation, value, headers, body, method) -> None:
    link = site.upload if method == "PUT" else site.download
    path, _, query = link.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&"))
    raw = quote(value)
    if mutation == "handle":
        path = path[:-4] + value.decode("latin-1")
    if mutation in ("expires", "both"):
        params["expires"] = raw
    if mutation in ("signature", "both"):
        params["signature"] = raw
    query = "&".join(f"{name}={value}" for name, value in params.items()).encode()
    status, _, _ = site.answer(method, path.encode("utf-8"), query, headers, body)
    assert status < 500
    assert status in (200, 201, 206, 304, 400, 403, 404, 405, 409, 412, 416)


PART_HEADERS = st.lists(st.one_of(
    st.sampled_from([b'Content-Disposition: form-data; name="code"',
                     b'Content-Disposition: form-data; name="title"',
                     b'Content-Disposition: form-data; name="attachment"; filename="a.txt"',
                     b'Content-Disposition: form-data; name="file"; filename="\xff\xfe.bin"',
                     b"Content-Disposition: form-data; name*=UTF-8''%ff", b"Content-Type: text/plain",
                     b"X-Junk: " + b"j" * 5000, b"NoColon", b": empty name", b"Content-Disposition"]),
    st.binary(max_size=30),
), max_size=20)
PARTS = st.lists(st.tuples(PART_HEADERS, st.binary(max_size=200)), max_size=5)
BOUNDARIES = st.one_of(st.sampled_from([b"xyz", b"b" * 70, b"b" * 256, b"b" * 257, b'"q"', b""]),
                       st.binary(min_size=1, max_size=20))


@FUZZ
@given(parts=PARTS, boundary=BOUNDARIES, cut=st.integers(0, 50), url=st.sampled_from(["upload", "link"]),
       epilogue=st.binary(max_size=20))
def test_arbitrary_multipart_bodies_are_never_5xx(site: Site, parts, boundary, cut, url,
                                                   epilogue) -> None:
    body = b"".join(b"--" + boundary + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + content
                    + b"\r\n" for headers, content in parts) + b"--" + boundary + b"--\r\n" + epilogue
    body = body[:len(body) - cut]
    content_type = "multipart/form-data; boundary=" + boundary.decode("latin-1")
    target = site.upload if url == "link" else "/upload"
    path, _, query = target.partition("?")
    status, _, _ = site.answer("POST", path.encode(), query.encode(),
                               {"Content-Type": content_type}, body)
    assert status < 500


@FUZZ
@given(body=st.binary(max_size=300), content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "", "text/plain", "multipart/form-data",
     "application/x-www-form-urlencoded; charset=latin-1"]))
def test_arbitrary_form_bodies_are_never_5xx(site: Site, body: bytes, content_type: str) -> None:
    status, _, _ = site.answer("POST", b"/upload", b"", {"Content-Type": content_type}, body)
    assert status < 500


def test_the_upload_redirect_does_not_reflect_the_host(site: Site) -> None:
    request = Request.blank("/upload", POST={"code": "host1", "title": "t",
                                             "attachment": ("a.txt", b"a")},
                            headers={"Host": "evil.example"})
    response = request.get_response(site.app)
    assert response.status_int == 303
    assert response.headers["Location"].startswith("./?notice=")  # the demo's list
    assert b"evil.example" not in response.body
