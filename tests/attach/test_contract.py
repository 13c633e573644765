"""The storage contract: the same assertions for every backend, on real
servers (a directory, Ceph's RADOS Gateway for S3, fake-gcs-server for GCS)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import logging
import os
import random
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urljoin

import pytest
import requests
from backends import MAX_SIZE
from sqlalchemy import insert, select
from webob import Request

from helpers import MISSING, crc32c_of
from rex.attach import DamagedError, PresignedLink, check_handle
from rex.attach_demo.database import file_table
from rex.core import Error, ExistsError, NotFoundError, TooLargeError
from rex.db import get_db

BODY = os.urandom(100_000)
MiB = 1 << 20


def call(storage, handle: str, **kwargs):
    return Request.blank("/", **kwargs).get_response(storage.route(handle))


def test_add_open_stat_remove(storage) -> None:
    handle = storage.add("memo.txt", "Feed the cats!")
    assert check_handle(handle).endswith("/memo.txt")
    with storage.open(handle) as stream:
        assert stream.read() == b"Feed the cats!"
    stat = storage.stat(handle)
    assert stat.st_size == 14
    assert abs(stat.st_mtime - time.time()) < 300
    assert stat.etag.startswith('"')
    storage.remove(handle)
    assert handle not in storage


@pytest.mark.parametrize("content", [b"", b"\x00\xff" * 1000, "Ünïcödé"])
def test_content_round_trips(storage, content) -> None:
    expected = content.encode() if isinstance(content, str) else content
    handle = storage.add("data.bin", content)
    assert storage.open(handle).read() == expected
    assert storage.stat(handle).st_size == len(expected)


def test_large_files_stream_both_ways(storage) -> None:
    size = 12 * (1 << 20) + 12345
    digest = hashlib.sha256()

    class Source(io.RawIOBase):
        remaining = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), self.remaining, 1 << 20)
            chunk = os.urandom(n)
            buffer[:n] = chunk
            digest.update(chunk)
            self.remaining -= n
            return n

    handle = storage.add("big.bin", io.BufferedReader(Source(), 1 << 20))
    assert storage.stat(handle).st_size == size
    check = hashlib.sha256()
    with storage.open(handle) as stream:
        while chunk := stream.read(1 << 20):
            check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


def test_open_is_seekable(storage) -> None:
    handle = storage.add("data.bin", BODY)
    with storage.open(handle) as stream:
        assert stream.seekable()
        stream.seek(50_000)
        assert stream.read(10) == BODY[50_000:50_010]
        stream.seek(-5, io.SEEK_END)
        assert stream.read() == BODY[-5:]
        stream.seek(10)
        assert stream.read(5) == BODY[10:15]
        assert stream.tell() == 15


@pytest.mark.parametrize("method", ["open", "stat", "remove"])
def test_missing_attachment(storage, method: str) -> None:
    with pytest.raises(Error) as info:
        getattr(storage, method)(MISSING)
    assert str(info.value) == f"Attachment does not exist:\n    {MISSING}"


def test_second_remove(storage) -> None:
    handle = storage.add("memo.txt", "x")
    storage.remove(handle)
    with pytest.raises(Error, match="Attachment does not exist:"):
        storage.remove(handle)


@pytest.mark.parametrize("method", ["open", "stat", "remove", "route", "upload_link",
                                    "download_link"])
@pytest.mark.parametrize("handle", ["/../secret", "memo.txt", MISSING + "/x", None])
def test_ill_formed_handles(storage, method: str, handle) -> None:
    args = (1,) if method == "upload_link" else ()
    with pytest.raises(Error, match="Ill-formed attachment handle:"):
        getattr(storage, method)(handle, *args)
    with pytest.raises(Error, match="Ill-formed attachment handle:"):
        handle in storage  # noqa: B015 (not "not there": never a handle)


def test_iteration_is_sorted_and_complete(storage) -> None:
    added = {storage.add(f"f{i}.txt", str(i)) for i in range(12)}
    handles = list(storage)
    assert handles == sorted(handles)
    assert added <= set(handles)
    assert all(check_handle(handle) for handle in handles)


def test_reserve_stores_nothing(storage) -> None:
    handle = storage.reserve("later.pdf")
    assert handle.endswith("/later.pdf")
    assert handle not in storage
    assert handle not in list(storage)


def test_route_headers_and_body(storage) -> None:
    handle = storage.add("Les Misérables.txt", BODY)
    response = call(storage, handle)
    assert response.status_int == 200
    assert response.body == BODY
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.headers["Content-Length"] == str(len(BODY))
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=Les_Miserables.txt; filename*=UTF-8''Les_Mis%C3%A9rables.txt")
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == storage.stat(handle).etag
    assert response.headers["Last-Modified"] == formatdate(int(storage.stat(handle).st_mtime),
                                                           usegmt=True)


def test_route_ranges_conditionals_and_head(storage) -> None:
    handle = storage.add("data.bin", BODY)
    ranged = call(storage, handle, headers={"Range": "bytes=1000-1999"})
    assert ranged.status_int == 206 and ranged.body == BODY[1000:2000]
    assert ranged.headers["Content-Range"] == f"bytes 1000-1999/{len(BODY)}"
    assert call(storage, handle, headers={"Range": "bytes=-10"}).body == BODY[-10:]
    assert call(storage, handle, headers={"Range": f"bytes={len(BODY)}-"}).status_int == 416
    etag = storage.stat(handle).etag
    assert call(storage, handle, headers={"If-None-Match": etag}).status_int == 304
    head = call(storage, handle, method="HEAD")
    assert head.status_int == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(BODY))


def test_route_under_a_server_with_a_file_wrapper(storage, backend) -> None:
    """Only an OS file with no checksum to check goes to ``wsgi.file_wrapper``
    (sendfile); others stream, checked."""
    wrapped = []

    def file_wrapper(file, block_size: int):
        wrapped.append(file)
        return iter(lambda: file.read(block_size), b"")

    handle = storage.add("data.bin", BODY)
    response = call(storage, handle, environ={"wsgi.file_wrapper": file_wrapper})
    assert response.body == BODY
    assert wrapped == []
    if backend.forget_checksum is not None:
        backend.forget_checksum(handle)
        response = call(storage, handle, environ={"wsgi.file_wrapper": file_wrapper})
        assert response.body == BODY
        assert [hasattr(file, "fileno") and file.fileno() >= 0 for file in wrapped] == (
            [True] if storage.sendfile else [])


def test_route_of_missing_attachment(storage) -> None:
    with pytest.raises(Error, match="Attachment does not exist:"):
        storage.route(MISSING)


# Checksums.


def randbytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("size", [0, 100_000, 17 * MiB])  # 17 MiB: S3 multipart, GCS resumable
@pytest.mark.parametrize("seekable", [True, False])
def test_stat_gives_the_crc32c_recorded_at_write(storage, size: int, seekable: bool) -> None:
    content = randbytes(size)
    source = io.BytesIO(content)
    if not seekable:
        source.seekable = lambda: False  # type: ignore[method-assign]
    handle = storage.add("data.bin", source)
    assert storage.stat(handle).crc32c == crc32c_of(content)
    assert call(storage, handle).headers["Repr-Digest"] == f"crc32c=:{crc32c_of(content)}:"
    with storage.open(handle) as stream:
        assert stream.read() == content


def test_damage_is_found_at_the_end_of_a_full_read(storage, backend, caplog) -> None:
    content = randbytes(3 * MiB, seed=1)
    handle = storage.add("data.bin", content)
    backend.damage(handle, 2 * MiB + 5)
    with storage.open(handle) as stream:  # reads that are not the whole file: not checked
        stream.seek(MiB)
        assert stream.read() == content[MiB:2 * MiB + 5] + bytes([content[2 * MiB + 5] ^ 1]) \
            + content[2 * MiB + 6:]
        stream.seek(0)
        assert stream.read(MiB) == content[:MiB]
        with caplog.at_level(logging.ERROR, logger="rex.attach"), \
                pytest.raises(DamagedError) as info:
            stream.read()  # on from where the checked part ends: to the end, checked
    assert str(info.value) == f"Attachment is damaged: its CRC32C does not match:\n    {handle}"
    assert info.value.status == "503 Service Unavailable"
    assert [(record.name, record.levelname) for record in caplog.records] == [
        ("rex.attach", "ERROR")]
    assert handle in caplog.records[0].getMessage()
    with storage.open(handle) as stream:
        stream.read(3 * MiB - 1)  # all but the last byte
        with pytest.raises(DamagedError):
            stream.read(1)
    ranged = call(storage, handle, headers={"Range": "bytes=0-99"})
    assert ranged.status_int == 206 and ranged.body == content[:100]


def test_record_crc32c_of_an_attachment_without_one(storage, backend) -> None:
    content = randbytes(200_000, seed=2)
    handle = storage.add("data.bin", content)
    if backend.forget_checksum is None:  # GCS: every object has one
        assert storage.record_crc32c(handle) == crc32c_of(content)
        return
    backend.forget_checksum(handle)
    assert storage.stat(handle).crc32c is None
    response = call(storage, handle)
    assert response.body == content and "Repr-Digest" not in response.headers
    assert storage.record_crc32c(handle) == crc32c_of(content)
    assert storage.stat(handle).crc32c == crc32c_of(content)
    assert storage.record_crc32c(handle) == crc32c_of(content)  # once recorded, kept
    assert storage.open(handle).read() == content
    backend.damage(handle, 0)
    with pytest.raises(DamagedError):
        storage.open(handle).read()


def add_row(app, code: str, handle: str, size: int) -> None:
    """A row of the demo's ``file`` table, so that ``/download`` serves `handle`."""
    with app, get_db().begin() as connection:
        connection.execute(insert(file_table).values(code=code, title=code, handle=handle,
                                                     size=size))


def test_a_damaged_download_is_cut_off(app, storage, base_url: str, backend) -> None:
    """Found at its last chunk, after the status and most of the body went
    out: the server drops the connection short of its Content-Length."""
    content = randbytes(9 * MiB, seed=3)  # longer than a checked piece of sendfile
    handle = storage.add("data.bin", content)
    add_row(app, "cut", handle, len(content))
    url = f"{base_url}/download?code=cut"
    assert requests.get(url, timeout=60).content == content
    backend.damage(handle, 10)
    response = requests.get(url, stream=True, timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(content))
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in response.iter_content(1 << 16):
            received += chunk
    assert 0 < len(received) < len(content)


def test_a_small_damaged_download_is_503(app, storage, base_url: str, backend) -> None:
    """Found in the first chunk, before anything went out: an error, not a
    200 with a broken body.  The upload went through the demo's form, whose
    parser computed the CRC32C that the store recorded."""
    content = randbytes(100_000, seed=4)
    uploaded = requests.post(f"{base_url}/upload", data={"code": "small", "title": "t"},
                             files={"attachment": ("small.bin", content)}, timeout=60)
    assert uploaded.status_code == 200, uploaded.text
    with app, get_db().connect() as connection:
        handle = connection.execute(
            select(file_table.c.handle).where(file_table.c.code == "small")).scalar()
    assert storage.stat(handle).crc32c == crc32c_of(content)
    backend.damage(handle, len(content) - 1)
    response = requests.get(f"{base_url}/download?code=small", timeout=60)
    assert response.status_code == 503
    assert response.text == f"Attachment is damaged: its CRC32C does not match:\n    {handle}\n"


# Through a real `rex serve`.

def test_attach_location_serves_only_the_permitted(storage, base_url: str) -> None:
    handle = storage.add("memo.txt", "Feed the cats!")
    url = base_url + "/attach" + quote(handle)
    assert requests.get(url, timeout=30).status_code == 401
    response = requests.get(url, headers={"X-Remote-User": "ann"}, timeout=30)
    assert response.status_code == 401  # a header is not a session
    assert requests.get(base_url + "/attach" + MISSING, timeout=30).status_code in (401, 404)


def test_download_link(storage, base_url: str, backend) -> None:
    handle = storage.add("Les Misérables.txt", BODY)
    link = storage.download_link(handle)
    assert isinstance(link, PresignedLink) and link.fields == {}
    response = requests.get(urljoin(base_url, link.url), timeout=30)
    assert response.status_code == 200
    assert response.content == BODY
    assert "filename*=UTF-8''Les_Mis%C3%A9rables.txt" in response.headers["Content-Disposition"]
    assert not backend.refuses(response, link, "GET", handle)
    other = storage.add("other.txt", "other")
    forged = PresignedLink(link.url.replace(quote(handle), quote(other)))
    response = requests.get(urljoin(base_url, forged.url), timeout=30)
    assert backend.refuses(response, forged, "GET", other)


OK = (200, 201, 204)


def md5(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content).digest()).decode()


def send(base_url: str, link: PresignedLink, content: bytes) -> requests.Response:
    """Sends an upload link as a browser would: a form POST when it has
    fields, else its method with its headers and the content as the body."""
    url = urljoin(base_url, link.url)
    if link.fields:
        return requests.post(url, data=link.fields, files={"file": ("f", content)}, timeout=60)
    return requests.request(link.method, url, data=content, headers=link.headers, timeout=60)


def test_upload_link(storage, base_url: str, backend) -> None:
    handle = storage.reserve("Visit 2.pdf")
    link = storage.upload_link(handle, len(BODY), md5(BODY))
    assert link.method == "PUT"
    response = send(base_url, link, BODY)
    assert response.status_code in OK, response.text
    assert not backend.refuses(response, link, "PUT", handle)
    assert not backend.refuses_size(response, link, len(BODY))
    assert storage.open(handle).read() == BODY


def test_upload_link_writes_once(storage, base_url: str, backend) -> None:
    """A replayed link, a link for a taken handle, a link replayed after the
    attachment was removed: each is refused, and nothing is replaced."""
    handle = storage.reserve("memo.txt")
    link = storage.upload_link(handle, 5)
    assert send(base_url, link, b"first").status_code in OK
    with pytest.raises(ExistsError, match="Attachment already exists:"):
        storage.upload_link(handle, 5)
    if backend.enforces_preconditions:
        assert send(base_url, link, b"again").status_code in (409, 412)
    else:
        assert backend.create_only(link, handle)  # the real service answers 412
    assert storage.open(handle).read() == b"first"
    storage.remove(handle)
    assert handle not in storage and handle not in list(storage)
    if backend.enforces_preconditions:
        assert send(base_url, link, b"again").status_code in (409, 412)
        assert handle not in storage
    with pytest.raises(ExistsError, match="was removed"):
        storage.upload_link(handle, 5)
    with pytest.raises(ExistsError, match="was removed"):
        storage.write(handle, io.BytesIO(b"again"))
    with pytest.raises(NotFoundError):
        storage.open(handle)


def test_remove_leaves_no_content(storage) -> None:
    handle = storage.add("memo.txt", "private")
    storage.remove(handle)
    for method in ("open", "stat", "route", "remove"):
        with pytest.raises(NotFoundError, match="Attachment does not exist:"):
            getattr(storage, method)(handle)


def test_upload_link_refuses_oversized(storage, base_url: str, backend) -> None:
    handle = storage.reserve("big.bin")
    with pytest.raises(TooLargeError, match=f"at most {MAX_SIZE} bytes"):
        storage.upload_link(handle, MAX_SIZE + 1)
    link = storage.upload_link(handle, 10)
    response = send(base_url, link, b"x" * 11)  # more than the link says
    assert backend.refuses_size(response, link, 11) or backend.refuses(response, link, "PUT",
                                                                        handle)
    if backend.enforces_size:
        assert handle not in storage


def test_upload_link_checks_the_declared_md5(storage, base_url: str, backend) -> None:
    handle = storage.reserve("a.txt")
    link = storage.upload_link(handle, 4, md5(b"data"))
    response = send(base_url, link, b"DATA")
    if backend.enforces_preconditions:
        assert response.status_code == 400
        assert handle not in storage
    else:
        assert link.headers["Content-MD5"] == md5(b"data") and backend.verify(link, "PUT", handle)


def test_upload_link_is_for_its_handle_only(storage, base_url: str, backend) -> None:
    handle, other = storage.reserve("a.txt"), storage.reserve("b.txt")
    link = storage.upload_link(handle, 6)
    forged = PresignedLink(link.url.replace(quote(handle), quote(other)), method=link.method,
                           headers=link.headers)
    response = send(base_url, forged, b"forged")
    assert backend.refuses(response, forged, "PUT", other)
    if backend.enforces_signatures:
        assert other not in storage


def test_upload_link_cannot_choose_the_served_type(storage, base_url: str, backend) -> None:
    """An uploader may not turn a text file into a page: where the link pins
    the Content-Type, another one is refused; what is stored is served with
    the type of its name."""
    handle = storage.reserve("notes.txt")
    link = storage.upload_link(handle, 18)
    forged = PresignedLink(link.url, method=link.method,
                           headers={**link.headers, "Content-Type": "text/html"})
    response = send(base_url, forged, b"<script>1</script>")
    if "Content-Type" in link.headers:
        assert backend.refuses(response, forged, "PUT", handle)
    if handle in storage:
        assert call(storage, handle).headers["Content-Type"] == "text/plain; charset=UTF-8"


@contextlib.contextmanager
def an_hour_ago(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The clocks that the three backends sign links with, an hour behind;
    only for links, not for the requests a backend makes meanwhile (S3
    would refuse those), and not the servers' clocks: what is signed in
    here has expired there."""
    import botocore.auth
    import google.cloud.storage._signing

    hour = datetime.timedelta(hours=1)
    now = botocore.auth.get_current_datetime
    sign_s3_link = botocore.auth.S3SigV4QueryAuth.add_auth

    def sign_s3_link_an_hour_ago(self: Any, request: Any) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(botocore.auth, "get_current_datetime", lambda: now() - hour)
            sign_s3_link(self, request)

    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda real=time.time: real() - 3600)  # local and S3 interop
        patch.setattr(botocore.auth.S3SigV4QueryAuth, "add_auth", sign_s3_link_an_hour_ago)
        patch.setattr(google.cloud.storage._signing, "_NOW",
                      lambda tz=None, real=google.cloud.storage._signing._NOW: real(tz) - hour)
        yield


def test_links_expire(storage, base_url: str, backend, monkeypatch) -> None:
    """Links signed an hour ago for a minute are refused."""
    handle = storage.add("a.txt", "soon gone")
    reserved = storage.reserve("b.txt")
    storage.link_expiry, saved = 60, storage.link_expiry
    try:
        with an_hour_ago(monkeypatch):
            download, upload = storage.download_link(handle), storage.upload_link(reserved, 4)
    finally:
        storage.link_expiry = saved
    response = requests.get(urljoin(base_url, download.url), timeout=30)
    assert backend.refuses(response, download, "GET", handle)
    response = send(base_url, upload, b"late")
    assert backend.refuses(response, upload, "PUT", reserved)
    if backend.enforces_signatures:
        assert reserved not in storage
    fresh = storage.download_link(handle)  # the same link signed now is good
    assert requests.get(urljoin(base_url, fresh.url), timeout=30).content == b"soon gone"


def test_presigned_link_answers_json() -> None:
    link = PresignedLink("https://example.org/x", {"key": "value"})
    response = Request.blank("/").get_response(link)
    assert response.json == {"method": "GET", "url": "https://example.org/x",
                             "fields": {"key": "value"}, "headers": {}}
