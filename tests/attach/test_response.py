"""HTTP semantics of `route()`: headers, ranges, conditional requests."""

from __future__ import annotations

import base64
import io
import os
import random
from email.utils import formatdate

import google_crc32c
import pytest
import requests
from helpers import serve
from webob import Request

from rex.attach import DamagedError, LocalStorage, checksum
from rex.attach.local import CRC32C

BODY = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def storage(attach_dir) -> LocalStorage:
    return LocalStorage(str(attach_dir))


@pytest.fixture
def handle(storage: LocalStorage) -> str:
    return storage.add("data.bin", BODY)


def call(storage: LocalStorage, handle: str, **kwargs):
    return Request.blank("/", **kwargs).get_response(storage.route(handle))


def test_full_response_headers(storage: LocalStorage, handle: str) -> None:
    response = call(storage, handle)
    assert response.status_int == 200
    assert response.body == BODY
    assert [name for name, _ in response.headerlist] == [
        "Content-Type", "Last-Modified", "ETag", "Cache-Control", "X-Content-Type-Options",
        "Repr-Digest", "Content-Length", "Content-Disposition", "Accept-Ranges"]
    crc32c = base64.b64encode(google_crc32c.Checksum(BODY).digest()).decode()
    assert response.headers["Repr-Digest"] == f"crc32c=:{crc32c}:"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == "10240"
    assert response.headers["Content-Disposition"] == "attachment; filename=data.bin"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Last-Modified"] == formatdate(storage.stat(handle).st_mtime, usegmt=True)
    assert response.headers["ETag"] == storage.stat(handle).etag


def test_text_gets_a_charset_and_non_ascii_names_an_rfc5987_filename(storage) -> None:
    handle = storage.add("Les Misérables.txt", "Fantine")
    response = call(storage, handle)
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=Les_Miserables.txt; filename*=UTF-8''Les_Mis%C3%A9rables.txt")


def test_html_is_never_rendered_inline(storage) -> None:
    response = call(storage, storage.add("page.html", "<script>alert(1)</script>"))
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("header, start, stop", [
    ("bytes=0-0", 0, 1),
    ("bytes=100-199", 100, 200),
    ("bytes=10000-", 10000, 10240),
    ("bytes=-40", 10200, 10240),
    ("bytes=10000-99999", 10000, 10240),
])
def test_single_byte_ranges_are_206(storage, handle, header: str, start: int, stop: int) -> None:
    response = call(storage, handle, headers={"Range": header})
    assert response.status_int == 206
    assert response.body == BODY[start:stop]
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/10240"
    assert response.headers["Content-Length"] == str(stop - start)


def test_unsatisfiable_range_is_416(storage, handle) -> None:
    response = call(storage, handle, headers={"Range": "bytes=10240-"})
    assert response.status_int == 416
    assert response.headers["Content-Range"] == "bytes */10240"


def test_if_range_with_a_stale_etag_sends_everything(storage, handle) -> None:
    response = call(storage, handle, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert response.status_int == 200
    assert response.body == BODY


def test_conditional_requests_are_304(storage, handle) -> None:
    etag = storage.stat(handle).etag
    response = call(storage, handle, headers={"If-None-Match": etag})
    assert response.status_int == 304
    assert response.body == b""
    assert call(storage, handle, headers={"If-None-Match": '"other"'}).status_int == 200
    modified = formatdate(storage.stat(handle).st_mtime + 10, usegmt=True)
    assert call(storage, handle, headers={"If-Modified-Since": modified}).status_int == 304
    earlier = formatdate(storage.stat(handle).st_mtime - 10, usegmt=True)
    assert call(storage, handle, headers={"If-Modified-Since": earlier}).status_int == 200


def test_head_has_headers_and_no_body(storage, handle) -> None:
    response = call(storage, handle, method="HEAD")
    assert response.status_int == 200
    assert response.headers["Content-Length"] == "10240"
    assert response.body == b""


class FileWrapper:
    """What a WSGI server offers as ``wsgi.file_wrapper``."""

    used: list = []

    def __init__(self, file, block_size: int) -> None:  # noqa: D107
        self.file = file
        FileWrapper.used.append(file)

    def __iter__(self):
        return iter(lambda: self.file.read(1 << 16), b"")

    def close(self) -> None:
        self.file.close()


def unchecked(storage: LocalStorage, handle: str) -> str:
    """The attachment made one written before checksums were recorded."""
    os.removexattr(storage.path + handle, CRC32C)
    assert storage.stat(handle).crc32c is None
    return handle


def test_whole_files_are_read_through_their_checksum(storage, handle) -> None:
    """``sendfile`` would send a damaged file as if it were fine: a file
    with a checksum is never handed to the server's file wrapper."""
    FileWrapper.used = []
    response = call(storage, handle, environ={"wsgi.file_wrapper": FileWrapper})
    assert response.body == BODY
    assert FileWrapper.used == []


def test_whole_files_without_checksum_go_through_the_servers_file_wrapper(storage,
                                                                          handle) -> None:
    unchecked(storage, handle)
    FileWrapper.used = []
    response = call(storage, handle, environ={"wsgi.file_wrapper": FileWrapper})
    assert response.body == BODY
    assert "Repr-Digest" not in response.headers
    assert len(FileWrapper.used) == 1 and isinstance(FileWrapper.used[0], io.BufferedReader)
    ranged = call(storage, handle, headers={"Range": "bytes=0-9"},
                  environ={"wsgi.file_wrapper": FileWrapper})
    assert ranged.body == BODY[:10]
    assert len(FileWrapper.used) == 1  # ranges stream by themselves


def test_route_works_as_a_wsgi_application(storage, handle) -> None:
    app = storage.route(handle)
    started = []
    body = b"".join(app(Request.blank("/").environ, lambda status, headers: started.append(status)))
    assert started == ["200 OK"] and body == BODY


@pytest.mark.parametrize("header", [
    "bytes=-0",  # the last 0 bytes: nothing
    "bytes=10240-",  # from the end
    "bytes=99999999999999999999999999-",  # a position too long for WebOb's int()
    "BYTES=20000-30000",
])
def test_ranges_asking_for_nothing_of_the_file_are_416(storage, handle, header: str) -> None:
    response = call(storage, handle, headers={"Range": header})
    assert response.status_int == 416
    assert response.headers["Content-Range"] == "bytes */10240"


@pytest.mark.parametrize("header", [
    "bytes=0-1,5-6",  # several ranges: WebOb served the first alone as a 206
    "bytes=0-5,3-8",  # overlapping
    "bytes=0-1, 5-6",
    "bytes=0-1,",
    "bytes=5-2",  # last before first
    "bytes=0-1junk",  # WebOb served bytes 0-1
    "bytes=-",
    "bytes=abc",
    "items=0-1",
    "bytes=٣-٥",  # digits, but not ASCII ones
    "junk",
])
def test_other_ranges_are_ignored_and_the_whole_file_sent(storage, handle, header: str) -> None:
    response = call(storage, handle, headers={"Range": header})
    assert response.status_int == 200
    assert "Content-Range" not in response.headers
    assert response.body == BODY


@pytest.mark.parametrize("header, start, stop", [
    ("bytes=-20000", 0, 10240),  # a suffix longer than the file: all of it (WebOb said 416)
    ("bytes=-" + "9" * 5000, 0, 10240),  # longer than int() takes
    ("bytes=10-" + "9" * 5000, 10, 10240),
    ("bytes=0010-0019", 10, 20),
])
def test_ranges_are_clamped_to_the_file(storage, handle, header: str, start: int, stop: int) -> None:
    response = call(storage, handle, headers={"Range": header})
    assert response.status_int == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/10240"
    assert response.body == BODY[start:stop]


def test_a_range_of_an_empty_file_is_416(storage) -> None:
    handle = storage.add("empty.txt", b"")
    for header in ["bytes=0-", "bytes=-5", "bytes=-0"]:
        response = call(storage, handle, headers={"Range": header})
        assert response.status_int == 416 and response.headers["Content-Range"] == "bytes */0"


def test_conditions_come_before_ranges(storage, handle) -> None:
    etag = storage.stat(handle).etag
    assert call(storage, handle, headers={"Range": "bytes=-0", "If-None-Match": etag}
                ).status_int == 304
    stale = call(storage, handle, headers={"Range": "bytes=-0", "If-Range": '"stale"'})
    assert stale.status_int == 200 and stale.body == BODY


@pytest.mark.parametrize("name, fallback", [
    ("отчёт.html", "download.html"),  # not ".html", a hidden file
    ("отчёт", "download"),
    ("отчёт.тxt", "download.xt"),
    ("отчёт.ё", "download"),
    ("Ｒéport №1.pdf", "Report_No1.pdf"),
    ("._é.txt", "_e.txt"),
])
def test_ascii_fallback_names_are_never_empty_or_hidden(name: str, fallback: str) -> None:
    from rex.attach.response import content_disposition

    value = content_disposition(name)
    assert value.startswith(f"attachment; filename={fallback}; filename*=UTF-8''")


def damage(storage: LocalStorage, handle: str, offset: int) -> None:
    with open(storage.path + handle, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 1]))


def test_the_checksum_describes_every_response_of_the_representation(storage, handle) -> None:
    """RFC 9530's Repr-Digest is of the whole file, also on a 206 or a HEAD."""
    digest = call(storage, handle).headers["Repr-Digest"]
    assert call(storage, handle, headers={"Range": "bytes=0-9"}).headers["Repr-Digest"] == digest
    assert call(storage, handle, method="HEAD").headers["Repr-Digest"] == digest


def test_a_damaged_file_is_cut_off_at_its_last_chunk(storage) -> None:
    """The status and the chunks before the last went out; the last one is
    never sent: the body raises, and the server drops the connection."""
    content = bytes(range(256)) * (3 * 4096)  # 3 MiB: three chunks
    handle = storage.add("data.bin", content)
    damage(storage, handle, 5)
    opened = []

    def open_file():
        opened.append(storage.open(handle))
        return opened[-1]

    app = storage.route(handle)
    app.open = open_file
    started = []
    body = app(Request.blank("/").environ, lambda status, headers: started.append(status))
    assert started == ["200 OK"]
    chunks = iter(body)
    assert len(next(chunks)) + len(next(chunks)) == 2 << 20
    with pytest.raises(DamagedError):
        next(chunks)
    body.close()
    assert [file.closed for file in opened] == [True]


def test_a_small_damaged_file_fails_before_the_status(storage) -> None:
    """Found while the first chunk is read, before anything was sent: the
    error propagates from the call, for the application to answer it (503)."""
    handle = storage.add("data.bin", BODY)
    damage(storage, handle, len(BODY) - 1)
    started = []
    with pytest.raises(DamagedError):
        storage.route(handle)(Request.blank("/").environ,
                              lambda status, headers: started.append(status))
    assert started == []
    ranged = call(storage, handle, headers={"Range": "bytes=0-99"})  # not a full read
    assert ranged.status_int == 206 and ranged.body == BODY[:100]


def test_rex_serve_sends_a_checked_file_with_sendfile_and_logs_its_size(tmp_path) -> None:
    """A file longer than a checked piece, which `rex serve` sends with
    ``sendfile`` as it checks it, arrives whole, and its access line counts
    every byte (gunicorn counts only what it writes itself: 0 here)."""
    content = random.Random(8).randbytes(3 * checksum.SEGMENT + 5)
    (tmp_path / "attachments").mkdir()
    with serve(tmp_path, "access={rex.attach: anybody}") as url:
        uploaded = requests.post(f"{url}/upload", data={"code": "big", "title": "t"},
                                 files={"attachment": ("big.bin", content)}, timeout=60)
        assert uploaded.status_code == 200, uploaded.text
        response = requests.get(f"{url}/download?code=big", timeout=60)
        assert response.content == content
        assert response.headers["Repr-Digest"].startswith("crc32c=")
    log = (tmp_path / f"rex-serve-{url.rsplit(':', 1)[1]}.log").read_text()
    assert f'"GET /download?code=big HTTP/1.1" 200 {len(content)} ' in log
