"""Routing, methods, access and parameters over WSGI."""

from __future__ import annotations

import io
import logging
import os
import sys

import pytest
from webob import Request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pkgs"))

from rex.core import Error, Rex  # noqa: E402


def app(**access: str) -> Rex:
    return Rex("rexwebtest", access={"rexwebtest": "anybody", **access})


def get(app: Rex, url: str, **kwargs):
    return Request.blank(url, **kwargs).get_response(app)


def test_command_renders_a_template_with_validated_parameters() -> None:
    response = get(app(), "/hello?name=Bob&times=2")
    assert response.status_int == 200
    assert response.text == "<p>Hello, Bob!</p><p>Hello, Bob!</p>"


def test_bad_parameters_are_400_with_the_validator_message() -> None:
    response = get(app(), "/hello?name=a+b")
    assert response.status_int == 400
    assert response.text == ("Expected a string matching:\n    /\\w+/\nGot:\n    'a b'\n"
                             "While parsing parameter:\n    name\n")
    assert "Missing mandatory parameter:\n    name" in get(app(), "/hello").text
    assert "Received unexpected parameter:\n    x" in get(app(), "/hello?name=a&x=1").text
    assert "more than one value" in get(app(), "/hello?name=a&name=b").text
    assert get(app(), "/hello?name=a&times=4").status_int == 400


def test_unknown_paths_are_404_and_other_methods_405() -> None:
    assert get(app(), "/nowhere").status_int == 404
    response = get(app(), "/hello?name=a", method="DELETE")
    assert response.status_int == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert get(app(), "/echo").status_int == 405


def test_locations_get_the_rest_of_the_path() -> None:
    assert get(app(), "/tree/a/b").text == "tree:/a/b"
    assert get(app(), "/tree").text == "tree:"
    assert get(app(), "/treetop").status_int == 404


def test_access_needs_the_permission_of_the_package() -> None:
    closed = Rex("rexwebtest")  # not listed: authenticated
    assert get(closed, "/hello?name=a").status_int == 401
    assert get(closed, "/hello?name=a", environ={"REMOTE_USER": "ann"}).status_int == 200
    nobody = app(rexwebtest="nobody")
    assert get(nobody, "/hello?name=a").status_int == 401  # signing in might help
    signed_in = get(nobody, "/hello?name=a", environ={"REMOTE_USER": "ann"})
    assert signed_in.status_int == 403  # it did not
    assert "WWW-Authenticate" not in signed_in.headers
    assert get(nobody, "/open").text == "open"  # the command's own access


def test_access_is_checked_before_the_body_is_read() -> None:
    request = Request.blank("/echo", POST={"note": "n", "file": ("a.txt", b"x")})
    request.environ["wsgi.input"] = _Unreadable()
    request.environ["webob.is_body_seekable"] = False
    assert request.get_response(Rex("rexwebtest")).status_int == 401


class _Unreadable:
    def read(self, *args):
        raise AssertionError("the body was read")


def test_unknown_permission_is_an_initialization_error() -> None:
    with pytest.raises(Error, match="Got unknown permission:\n    everybody"):
        Rex("rexwebtest", access={"rexwebtest": "everybody"})


def test_multipart_files_stream_into_uploads_and_are_cleaned_up(tmp_path) -> None:
    payload = os.urandom(3 << 20)
    request = Request.blank("/echo", POST={"note": "n", "file": ("é x.bin", payload)})
    response = request.get_response(app())
    assert response.status_int == 200
    assert response.body == f"n:é x.bin:{len(payload)}:".encode() + payload


@pytest.mark.parametrize("body", [
    b"--xyz\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello",  # truncated
    b"garbage without boundary",
])
def test_malformed_multipart_is_400(body: bytes) -> None:
    request = Request.blank("/echo", method="POST", body=body,
                            content_type="multipart/form-data; boundary=xyz")
    response = request.get_response(app())
    assert response.status_int == 400
    assert "multipart/form-data" in response.text


class ServerInput:
    """A server's ``wsgi.input``: readable once, not seekable, and holding
    more than the request's body (the next request on the connection)."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)


@pytest.mark.parametrize("cut", [0, 100])
def test_multipart_body_is_read_to_its_content_length_only(cut: int) -> None:
    payload = os.urandom(3 << 20)
    blank = Request.blank("/echo", POST={"note": "n", "file": ("a.bin", payload)})
    body = blank.body[:len(blank.body) - cut]
    server_input = ServerInput(body + b"GET /next HTTP/1.1\r\n")
    request = Request.blank("/echo", method="POST", content_type=blank.environ["CONTENT_TYPE"])
    request.environ.update({"wsgi.input": server_input, "CONTENT_LENGTH": str(len(body))})
    request.environ.pop("webob.is_body_seekable", None)
    response = request.get_response(app())
    if cut:
        assert response.status_int == 400 and "truncated" in response.text
    else:
        assert response.status_int == 200
        assert response.body == b"n:a.bin:%d:" % len(payload) + payload
    assert server_input.read() == b"GET /next HTTP/1.1\r\n"


class CountingInput(ServerInput):
    """A server's ``wsgi.input`` that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self.count += len(chunk)
        return chunk


@pytest.mark.parametrize("first, message", [
    (b'name="c"\r\n\r\n1', "Received unexpected parameter:\n    c"),
    (b'name="a"\r\n\r\n\0', "Expected a string without NUL characters"),
    (b'name="c"; filename="c.bin"\r\n\r\n' + bytes(3 << 20),
     "Received unexpected parameter:\n    c"),
], ids=["unexpected", "invalid", "unexpected-file"])
def test_a_bad_field_is_refused_before_the_rest_of_the_form_is_read(first, message) -> None:
    """Each field is checked as soon as it is there (a text field once it
    ends, a file as it begins): the 3 MiB file part after a bad one, or a
    file that is not expected, is not read (the form is read in 1 MiB
    chunks)."""
    body = (b"--xyz\r\nContent-Disposition: form-data; " + first
            + b"\r\n--xyz\r\nContent-Disposition: form-data; name=\"b\"; filename=\"b\"\r\n\r\n"
            + os.urandom(3 << 20) + b"\r\n--xyz--\r\n")
    server_input = CountingInput(body)
    request = Request.blank("/notes", method="POST",
                            content_type="multipart/form-data; boundary=xyz")
    request.environ.update({"wsgi.input": server_input, "CONTENT_LENGTH": str(len(body))})
    request.environ.pop("webob.is_body_seekable", None)
    response = request.get_response(app())
    assert response.status_int == 400
    assert message in response.text
    assert server_input.count == 1 << 20  # the first chunk only


@pytest.mark.parametrize("kind, status", [
    ("notfound", 404), ("toolarge", 413), ("conflict", 409), ("unavailable", 503), ("full", 507),
])
def test_errors_answer_their_own_status(kind: str, status: int) -> None:
    response = get(app(), f"/fail?kind={kind}")
    assert response.status_int == status
    if kind == "notfound":
        assert response.text == "No such note:\n    n1\n"


def test_a_bug_is_a_bare_500_logged_with_its_traceback(caplog) -> None:
    caplog.set_level(logging.INFO, logger="rex.web")
    response = get(app(), "/fail?kind=bug", headers={"Accept": "text/html"})
    assert response.status_int == 500
    assert response.text == "Internal Server Error\n"  # nothing of the bug
    [record] = [r for r in caplog.records if r.name == "rex.web"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "GET /fail: unexpected RuntimeError"
    assert record.exc_info[1].args == ("a bug that knows the password hunter2",)


@pytest.mark.parametrize("kind, level, cause", [
    ("unavailable", logging.WARNING, "the notes server refused"),
    ("full", logging.ERROR, "No space left on device"),
])
def test_outages_and_full_stores_are_logged_with_their_cause(caplog, kind, level, cause) -> None:
    caplog.set_level(logging.INFO, logger="rex.web")
    response = get(app(), f"/fail?kind={kind}")
    assert response.status_int in (503, 507)
    assert cause not in response.text  # the cause is for the operator
    [record] = [r for r in caplog.records if r.name == "rex.web"]
    assert record.levelno == level
    assert cause in caplog.text  # the traceback of the cause
    assert record.exc_info[1].__cause__.strerror == cause


def test_client_errors_are_not_logged(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="rex.web")
    for url in ["/fail?kind=notfound", "/fail?kind=conflict", "/hello?name=a+b", "/nowhere"]:
        assert 400 <= get(app(), url).status_int < 500
    assert [r for r in caplog.records if r.name == "rex.web"] == []


@pytest.mark.parametrize("url, message", [
    ("/%ff", "Expected a URL path in UTF-8, got:\n    /%FF\n"),
    ("/hello%C3", "Expected a URL path in UTF-8, got:\n    /hello%C3\n"),
    ("/hello?name=%ff", "Expected a query string in UTF-8, got:\n    name=%ff\n"),
    ("/tree/x?%ff=1", "Expected a query string in UTF-8, got:\n    %ff=1\n"),
])
def test_invalid_utf8_in_the_path_or_query_is_400(url: str, message: str) -> None:
    response = get(app(), url)
    assert response.status_int == 400
    assert response.text == message


def test_redirects_keep_a_relative_location() -> None:
    response = get(app(), "/back", headers={"Host": "evil.example"})
    assert response.status_int == 303
    assert response.headers["Location"] == "./hello?name=again"
    assert b"evil" not in response.body
    head = get(app(), "/back", method="HEAD")
    assert head.status_int == 303 and head.body == b""


@pytest.mark.parametrize("location", ["//evil.example/", "/\\evil.example", "/a\r\nSet-Cookie: x=1"])
def test_redirects_refuse_what_could_leave_the_site(location: str) -> None:
    from rex.web import redirect

    with pytest.raises(ValueError, match="not a same-site URL reference"):
        redirect(location)
