"""Form parsing in bounded memory: every limit of rex.web.form, the body
read no further than it must, and a full disk told from a bad request."""

from __future__ import annotations

import base64
import errno
import itertools
import os
import random
import sys
import tracemalloc
from pathlib import Path

import google_crc32c
import pytest
from webob import Request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pkgs"))

import rex.web.form  # noqa: E402
from rex.core import Rex  # noqa: E402
from rex.web import Upload, parse_form  # noqa: E402
from rex.web.form import (MAX_FIELDS, MAX_FIELDS_SIZE, MAX_FILES, MAX_PART_HEADERS,  # noqa: E402
                          MAX_PART_HEADERS_SIZE, MAX_URLENCODED_SIZE)

MiB = 1 << 20
BOUNDARY = "b0undary"


def app(package: str = "rexwebtest") -> Rex:
    return Rex(package, access={"rexwebtest": "anybody"})


class Stream:
    """A server's ``wsgi.input`` producing `size` bytes from a repeated
    pattern without holding them; counts what was read."""

    def __init__(self, head: bytes, pattern: bytes, size: int, tail: bytes = b"") -> None:
        body = itertools.chain([head], itertools.repeat(pattern, size // len(pattern)), [tail])
        self.chunks = iter(body)
        self.pending = b""
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        while len(self.pending) < size or size < 0:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.pending += chunk
        data, self.pending = (self.pending, b"") if size < 0 else (self.pending[:size], self.pending[size:])
        self.read_bytes += len(data)
        return data


def post(url: str, stream: Stream, content_type: str, length: int | None, target: Rex):
    request = Request.blank(url, method="POST", content_type=content_type)
    request.environ["wsgi.input"] = stream
    request.environ.pop("webob.is_body_seekable", None)
    if length is None:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["wsgi.input_terminated"] = True  # chunked, as gunicorn says
    else:
        request.environ["CONTENT_LENGTH"] = str(length)
    return request.get_response(target)


def multipart(*parts: tuple[str, bytes]) -> bytes:
    """A multipart body of (headers, content) parts."""
    body = b"".join(b"--%s\r\n%s\r\n\r\n%s\r\n" % (BOUNDARY.encode(), head.encode(), content)
                    for head, content in parts)
    return body + b"--%s--\r\n" % BOUNDARY.encode()


def form(name: str) -> str:
    return f'Content-Disposition: form-data; name="{name}"'


def post_multipart(body: bytes, target: Rex | None = None, url: str = "/notes"):
    return Request.blank(url, method="POST", body=body,
                         content_type=f"multipart/form-data; boundary={BOUNDARY}"
                         ).get_response(target or app())


def test_urlencoded_fields_are_decoded() -> None:
    request = Request.blank("/", method="POST", body=b"a=x+y%C3%A9&b=%26%3D&c&=v&&",
                            content_type="application/x-www-form-urlencoded")
    fields, uploads = parse_form(request)
    assert list(fields.items()) == [("a", "x yé"), ("b", "&="), ("c", ""), ("", "v")]
    assert uploads == []
    no_type = Request.blank("/", method="POST", body=b"a=1")
    no_type.environ.pop("CONTENT_TYPE", None)
    assert list(parse_form(no_type)[0].items()) == [("a", "1")]
    assert list(parse_form(Request.blank("/", method="POST", body=b"a=1",
                                         content_type="application/json"))[0].items()) == []


def test_each_field_is_announced_as_soon_as_it_is_there() -> None:
    """`on_field` hears a text field once it ends, a file as it begins
    (empty), in the order of the form."""
    heard = []

    def on_field(name, value):
        heard.append((name, value if isinstance(value, str) else (value.filename, value.size)))

    body = multipart((form("a"), b"1"), (form("f") + '; filename="f.txt"', b"xyz"),
                     (form("c"), b"3"))
    request = Request.blank("/", method="POST", body=body,
                            content_type=f"multipart/form-data; boundary={BOUNDARY}")
    with app():  # the spool is the application's
        fields, uploads = parse_form(request, on_field)
    assert heard == [("a", "1"), ("f", ("f.txt", 0)), ("c", "3")]
    assert uploads[0].size == 3
    heard.clear()
    parse_form(Request.blank("/", method="POST", body=b"a=1&b=2",
                             content_type="application/x-www-form-urlencoded"), on_field)
    assert heard == [("a", "1"), ("b", "2")]


def test_urlencoded_fields_must_be_utf8() -> None:
    response = Request.blank("/notes", method="POST", body=b"a=%ff%fe",
                             content_type="application/x-www-form-urlencoded").get_response(app())
    assert response.status_int == 400
    assert response.text == "Expected a form field value in UTF-8, got:\n    %FF%FE\n"


def test_a_large_urlencoded_body_is_refused_before_it_is_read() -> None:
    stream = Stream(b"a=", b"x" * 65536, 300 * MiB)
    response = post("/notes", stream, "application/x-www-form-urlencoded", 300 * MiB, app())
    assert response.status_int == 413
    assert response.text == (f"Expected a form body of at most {MAX_URLENCODED_SIZE} bytes, "
                             f"got:\n    {300 * MiB}\n")
    assert stream.read_bytes == 0


def test_a_large_urlencoded_body_without_length_is_read_up_to_the_limit_only() -> None:
    stream = Stream(b"a=", b"x" * 65536, 300 * MiB)
    response = post("/notes", stream, "application/x-www-form-urlencoded", None, app())
    assert response.status_int == 413
    assert MAX_URLENCODED_SIZE < stream.read_bytes <= MAX_URLENCODED_SIZE + MiB


@pytest.mark.parametrize("body, message", [
    (b"a=" + b"x" * MAX_FIELDS_SIZE, f"form fields of at most {MAX_FIELDS_SIZE} bytes"),
    (b"&".join(b"a=%d" % n for n in range(MAX_FIELDS + 1)), f"at most {MAX_FIELDS} fields"),
    (b"a=" + b"x" * (600 << 10) + b"&b=" + b"y" * (600 << 10), f"at most {MAX_FIELDS_SIZE} bytes"),
])
def test_urlencoded_limits_are_413(body: bytes, message: str) -> None:
    response = Request.blank("/notes", method="POST", body=body,
                             content_type="application/x-www-form-urlencoded").get_response(app())
    assert response.status_int == 413
    assert message in response.text


def test_urlencoded_limits_count_decoded_bytes() -> None:
    body = b"a=" + b"%C3%A9" * (450 << 10)  # 2.7 MiB for 900 KiB
    response = Request.blank("/notes", method="POST", body=body,
                             content_type="application/x-www-form-urlencoded").get_response(app())
    assert response.status_int == 200
    assert response.text == f"a={'é' * (450 << 10)!r} b=''"


def test_urlencoded_parsing_holds_bounded_memory() -> None:
    """A chunked urlencoded body of 64 MiB (no Content-Length) made the
    worker grow by three times its size through WebOb's ``req.POST``."""
    stream = Stream(b"a=", b"%41" * 21845, 64 * MiB)
    tracemalloc.start()
    try:
        response = post("/notes", stream, "application/x-www-form-urlencoded", None, app())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_int == 413
    assert peak < 10 * MiB  # a few chunks of 1 MiB


def test_multipart_text_fields_share_one_memory_limit() -> None:
    """300 text fields of 1 MiB each made the worker grow by 303 MiB."""
    part = b"--%s\r\n%s\r\n\r\n%s\r\n" % (BOUNDARY.encode(), form("a").encode(), b"x" * MiB)
    stream = Stream(b"", part, 300 * len(part), b"--%s--\r\n" % BOUNDARY.encode())
    tracemalloc.start()
    try:
        response = post("/notes", stream, f"multipart/form-data; boundary={BOUNDARY}", None, app())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_int == 413
    assert response.text == (f"Expected form fields of at most {MAX_FIELDS_SIZE} bytes in all "
                             "(files excepted), got more\n")
    assert stream.read_bytes <= 3 * MiB
    assert peak < 8 * MiB


def test_multipart_fields_within_the_limits_are_read() -> None:
    body = multipart((form("a"), "é".encode() * 1000), (form("b") + "\r\nX-Other: 1", b"2"))
    response = post_multipart(body)
    assert response.status_int == 200 and response.text == f"a={'é' * 1000!r} b='2'"


def test_too_many_multipart_parts_is_413() -> None:
    body = multipart(*[(form("a"), b"")] * (MAX_FIELDS + 1))
    response = post_multipart(body)
    assert response.status_int == 413
    assert response.text == f"Expected a form of at most {MAX_FIELDS} fields, got more\n"


def test_too_many_files_is_413() -> None:
    file = 'Content-Disposition: form-data; name="file"; filename="a.txt"'
    body = multipart(*[(file, b"x")] * (MAX_FILES + 1))
    response = post_multipart(body, url="/echo")
    assert response.status_int == 413
    assert response.text == f"Expected a form of at most {MAX_FILES} files, got more\n"


@pytest.mark.parametrize("headers", [
    "\r\n".join([form("a")] + [f"X-{n}: {n}" for n in range(MAX_PART_HEADERS)]),  # one too many
    form("a") + "\r\nX-Long: " + "v" * MAX_PART_HEADERS_SIZE,  # one header too long
    "\r\n".join([form("a")] + [f"X-{n}: " + "v" * 2000 for n in range(9)]),  # too long in all
])
def test_multipart_part_headers_are_limited(headers: str) -> None:
    response = post_multipart(multipart((headers, b"1")))
    assert response.status_int == 413
    assert response.text == (f"Expected multipart part headers of at most {MAX_PART_HEADERS} "
                             f"lines and {MAX_PART_HEADERS_SIZE} bytes, got more\n")


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=" + "b" * 257,
    "multipart/form-data",
    'multipart/form-data; boundary=""',
])
def test_a_bad_multipart_boundary_is_400(content_type: str) -> None:
    request = Request.blank("/notes", method="POST", body=b"--x\r\n", content_type=content_type)
    response = request.get_response(app())
    assert response.status_int == 400
    assert "multipart" in response.text


def test_a_bad_content_length_is_400() -> None:
    request = Request.blank("/notes", method="POST", body=b"a=1",
                            content_type="application/x-www-form-urlencoded")
    request.environ["CONTENT_LENGTH"] = "-3"
    response = request.get_response(app())
    assert response.status_int == 400
    assert response.text == "Expected a Content-Length of digits, got:\n    -3\n"


def test_a_full_disk_is_507_and_the_spool_file_is_removed(tmp_path: Path, monkeypatch) -> None:
    from rexwebfull import FullDiskSpool

    monkeypatch.setattr(FullDiskSpool, "directory", str(tmp_path))
    monkeypatch.setattr(FullDiskSpool, "opened", [])
    full = Rex("rexwebfull", access={"rexwebtest": "anybody"})
    request = Request.blank("/rexwebtest/echo", POST={"note": "n", "file": ("a.bin", b"x" * 100)})
    response = request.get_response(full)
    assert response.status_int == 507
    assert response.text == "No space left to store the upload\n"
    assert len(FullDiskSpool.opened) == 1
    assert os.listdir(tmp_path) == []  # removed although closing it failed too


def test_other_os_errors_of_the_spool_are_not_the_clients_fault(tmp_path: Path,
                                                               monkeypatch) -> None:
    from rexwebfull import FullDiskSpool

    def broken(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(FullDiskSpool, "open", broken)
    full = Rex("rexwebfull", access={"rexwebtest": "anybody"})
    request = Request.blank("/rexwebtest/echo", POST={"note": "n", "file": ("a.bin", b"x")})
    response = request.get_response(full)
    assert response.status_int == 500
    assert response.text == "Internal Server Error\n"


def test_discard_removes_the_file_even_if_closing_fails(tmp_path: Path) -> None:
    from rexwebfull import FullDiskFile

    path = tmp_path / "spooled"
    upload = Upload("a.bin", "application/octet-stream", FullDiskFile(str(path)), str(path))
    with pytest.raises(OSError) as raised:
        upload.discard()
    assert raised.value.errno == errno.ENOSPC
    assert not path.exists()


@pytest.mark.parametrize("chunk_size", [7, 1 << 20])
def test_uploads_carry_the_crc32c_of_what_was_received(monkeypatch, chunk_size: int) -> None:
    """Computed as the parser writes the spool: across chunks and across the
    parser's look-behind of a boundary that turns out to be data."""
    monkeypatch.setattr(rex.web.form, "CHUNK_SIZE", chunk_size)
    near_boundary = b"\r\n--" + BOUNDARY.encode()[:-1] + b"!\r\n--" + BOUNDARY.encode()[:3]
    contents = [b"", near_boundary * 50, random.Random(8).randbytes(3 * MiB)]
    body = multipart(*[(f'{form("f")}; filename="f{i}.bin"', content)
                       for i, content in enumerate(contents)])
    request = Request.blank("/", method="POST", body=body,
                            content_type=f"multipart/form-data; boundary={BOUNDARY}")
    with app():
        _, uploads = parse_form(request)
    try:
        assert [(upload.size, upload.crc32c) for upload in uploads] == [
            (len(content), base64.b64encode(google_crc32c.Checksum(content).digest()).decode())
            for content in contents]
        assert [upload.read() for upload in uploads] == contents
    finally:
        for upload in uploads:
            upload.discard()
