"""What only the native GCS backend does, on a real fake-gcs-server."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from backend_gcs import create_bucket, write_key
from servers import HOST, GCSServer, free_port, start_fake_gcs
from webob import Request

from helpers import crc32c_of
from rex.attach import get_storage
from rex.attach.gcs import EMULATOR, GCSStorage
from rex.core import Error, NotFoundError, Rex

pytestmark = pytest.mark.gcs

BODY = os.urandom(100_000)
UUID = "6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[GCSServer]:
    server = start_fake_gcs(tmp_path_factory.mktemp("fake-gcs"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("key") / "service-account.json"
    write_key(path)
    return str(path)


@pytest.fixture
def bucket(server: GCSServer) -> str:
    """A new, empty bucket."""
    name = f"b-{uuid.uuid4().hex}"
    create_bucket(server, name)
    return name


@pytest.fixture
def storage(server: GCSServer, bucket: str, key: str, monkeypatch) -> GCSStorage:
    monkeypatch.setenv(EMULATOR, server.endpoint)
    return GCSStorage(bucket, key=key)


def object_url(server: GCSServer, bucket: str, name: str) -> str:
    """The object's JSON API URL."""
    return f"{server.endpoint}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"


def put_object(server: GCSServer, bucket: str, name: str, data: bytes) -> requests.Response:
    """Creates or replaces an object through the JSON API, behind rex.attach's back."""
    return requests.post(f"{server.endpoint}/upload/storage/v1/b/{bucket}/o",
                         params={"uploadType": "media", "name": name}, data=data, timeout=10)


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serves `handler` on a free port of 127.0.0.1 in a thread; yields its URL."""
    httpd = ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextlib.contextmanager
def losing_first_answer(server: GCSServer, method: str, prefix: str) -> Iterator[str]:
    """A proxy to the server on 127.0.0.1 that forwards every request but
    hangs up instead of answering the first `method` on a path with `prefix`,
    as a network that loses an answer; yields its URL."""
    lost: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in ("host", "connection")}
            answer = requests.request(self.command, server.endpoint + self.path,
                                      headers=headers, data=body, timeout=30)
            if not lost and self.command == method and self.path.startswith(prefix):
                lost.append(self.path)
                self.close_connection = True
                return
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("connection", "content-length", "content-encoding",
                                        "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Proxy) as url:
        yield url
    assert lost, f"no {method} {prefix}... went through the proxy"


def demo(tmp_path: Path, bucket: str, key: str) -> Rex:
    return Rex("rex.attach_demo", attach_gcs_bucket=bucket, attach_gcs_key=key,
               db=f"sqlite:///{tmp_path}/x.sqlite")


# Initialization and construction.

def test_app_starts_on_an_existing_bucket(server, bucket: str, key: str, tmp_path: Path,
                                          monkeypatch) -> None:
    monkeypatch.setenv(EMULATOR, server.endpoint)
    with demo(tmp_path, bucket, key):
        storage = get_storage()
        assert isinstance(storage, GCSStorage) and storage.bucket == bucket


def test_app_fails_when_bucket_does_not_exist(server, key: str, tmp_path: Path,
                                              monkeypatch) -> None:
    monkeypatch.setenv(EMULATOR, server.endpoint)
    with pytest.raises(Error) as info:
        demo(tmp_path, "no-such-bucket", key)
    assert str(info.value).startswith(
        f"GCS bucket does not exist:\n    no-such-bucket\nAt:\n    {server.endpoint}\n")


def test_app_fails_soon_when_endpoint_is_unreachable(key: str, tmp_path: Path,
                                                     monkeypatch) -> None:
    endpoint = f"http://{HOST}:{free_port()}"
    monkeypatch.setenv(EMULATOR, endpoint)
    start = time.monotonic()
    with pytest.raises(Error) as info:
        demo(tmp_path, "attachments", key)
    assert time.monotonic() - start < 15
    assert str(info.value).startswith(f"Cannot reach GCS at:\n    {endpoint}\nBecause:\n")
    assert "While checking GCS bucket:\n    attachments\n" in str(info.value)


def test_app_fails_clearly_on_a_server_that_is_not_gcs(key: str, tmp_path: Path,
                                                       monkeypatch) -> None:
    with http_server(BaseHTTPRequestHandler) as endpoint:  # 501 to every request
        monkeypatch.setenv(EMULATOR, endpoint)
        with pytest.raises(Error) as info:
            demo(tmp_path, "attachments", key)
    assert str(info.value).startswith(
        "GCS cannot use bucket:\n    attachments\nGCS answered:\n    501 GET")
    assert f"While checking GCS at:\n    {endpoint}\n" in str(info.value)


def test_verify_gives_up_on_a_silent_server(key: str, monkeypatch) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind((HOST, 0))
        silent.listen()
        endpoint = f"http://{HOST}:{silent.getsockname()[1]}"
        monkeypatch.setenv(EMULATOR, endpoint)
        storage = GCSStorage("attachments", key=key)
        storage.verify_timeout = 1
        start = time.monotonic()
        with pytest.raises(Error, match=f"^Cannot reach GCS at:\n    {endpoint}\n"):
            storage.verify()
        assert time.monotonic() - start < 5


def test_construction_touches_nothing(tmp_path: Path, key: str, monkeypatch) -> None:
    missing = str(tmp_path / "missing.json")
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()
        listener.settimeout(0.5)
        monkeypatch.setenv(EMULATOR, f"http://{HOST}:{listener.getsockname()[1]}")
        storage = GCSStorage("attachments", key=missing)
        assert repr(storage) == f"GCSStorage('attachments', key={missing!r})"
        with pytest.raises(socket.timeout):
            listener.accept()
        with pytest.raises(Error) as info:
            storage.download_link(f"/2024/01/01/{UUID}/memo.txt")
        assert str(info.value).startswith(
            f"Cannot read the GCS service account key:\n    {missing}")
        used = GCSStorage("attachments", key=key)
        used.verify_timeout = 0.5
        with pytest.raises(Error):
            used.verify()
        listener.accept()[0].close()  # the check above would have seen a connection


def test_construction_with_another_endpoint_touches_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(EMULATOR, raising=False)
    missing = str(tmp_path / "missing.json")
    storage = GCSStorage("attachments", key=missing, endpoint=f"http://{HOST}:{free_port()}")
    with pytest.raises(Error, match="^Cannot read the GCS service account key:"):
        storage.stat(f"/2024/01/01/{UUID}/memo.txt")


def test_links_need_a_key(server, bucket: str, monkeypatch) -> None:
    monkeypatch.setenv(EMULATOR, server.endpoint)
    storage = GCSStorage(bucket)
    for link, args in ((storage.download_link, ()), (storage.upload_link, (1,))):
        with pytest.raises(Error) as info:
            link(storage.reserve("memo.txt"), *args)
        assert str(info.value) == "GCS links need a service account key; set:\n    attach_gcs_key"


# Writes and removals.

def test_write_refuses_an_existing_handle(storage: GCSStorage) -> None:
    handle = storage.add("memo.txt", "original")
    with pytest.raises(Error) as info:
        storage.write(handle, io.BytesIO(b"replacement"))
    assert str(info.value) == f"Attachment already exists:\n    {handle}"
    assert storage.open(handle).read() == b"original"


def test_write_that_loses_a_race_replaces_nothing(storage: GCSStorage, server, bucket) -> None:
    handle = storage.reserve("memo.txt")

    class Racing(io.BytesIO):
        """Another writer creates the object while this one is being read."""

        def read(self, size: int | None = -1) -> bytes:
            if self.tell() == 0:
                put_object(server, bucket, handle[1:], b"first").raise_for_status()
            return super().read(size)

    with pytest.raises(Error) as info:
        storage.write(handle, Racing(b"second"))
    assert str(info.value) == f"Attachment already exists:\n    {handle}"
    assert storage.open(handle).read() == b"first"


def test_write_retried_after_a_lost_answer_succeeds(server, bucket: str, key: str,
                                                    monkeypatch) -> None:
    with losing_first_answer(server, "POST", f"/upload/storage/v1/b/{bucket}/o") as proxy:
        monkeypatch.setenv(EMULATOR, proxy)
        storage = GCSStorage(bucket, key=key)
        handle = storage.add("memo.txt", "stored once")
    assert requests.get(object_url(server, bucket, handle[1:]), timeout=10).ok
    monkeypatch.setenv(EMULATOR, server.endpoint)
    assert GCSStorage(bucket).open(handle).read() == b"stored once"


def test_remove_retried_after_a_lost_answer_succeeds(storage: GCSStorage, server,
                                                     bucket: str, monkeypatch) -> None:
    handle = storage.add("memo.txt", "x")
    with losing_first_answer(server, "POST", f"/upload/storage/v1/b/{bucket}/o") as proxy:
        monkeypatch.setenv(EMULATOR, proxy)
        GCSStorage(bucket).remove(handle)  # its tombstone's upload, retried
    assert handle not in storage  # a tombstone holds its key
    meta = requests.get(object_url(server, bucket, handle[1:]), timeout=10).json()
    assert meta["metadata"] == {"removed": "1"}


@pytest.mark.parametrize("name, content_type, size, seekable", [
    ("Les Misérables.txt", "text/plain; charset=UTF-8", 100_000, True),
    ("scan.pdf", "application/pdf", (9 << 20) + 7, False),  # resumable, spooled
])
def test_type_and_checksums_are_stored(storage: GCSStorage, server, bucket, name: str,
                                       content_type: str, size: int, seekable: bool) -> None:
    data = os.urandom(size)
    source = io.BytesIO(data)
    if not seekable:
        source.seekable = lambda: False  # type: ignore[method-assign]
    handle = storage.add(name, source)
    meta = requests.get(object_url(server, bucket, handle[1:]), timeout=10).json()
    assert meta["contentType"] == content_type
    assert "metadata" not in meta  # the CRC32C is GCS's own
    assert meta["crc32c"] == crc32c_of(data)
    assert storage.stat(handle).crc32c == crc32c_of(data)
    assert int(meta["size"]) == size
    assert meta["contentDisposition"].startswith("attachment; filename=")


# Reads.

def test_damaged_object_is_detected_when_read_to_the_end(tmp_path: Path, key: str,
                                                         monkeypatch) -> None:
    """Bytes changed on the server's disk, its metadata (CRC32C) intact.

    Over the JSON API fake-gcs-server recomputes the CRC32C of whatever it
    is sent, so the damage is done to the file of its filesystem backend."""
    data_dir = tmp_path / "objects"
    server = start_fake_gcs(tmp_path, data_dir=data_dir)
    try:
        create_bucket(server, "damaged")
        monkeypatch.setenv(EMULATOR, server.endpoint)
        storage = GCSStorage("damaged", key=key)
        handle = storage.add("data.bin", BODY)
        path = data_dir / "damaged" / handle[1:]
        assert path.read_bytes() == BODY
        path.write_bytes(BODY[:5000] + bytes([BODY[5000] ^ 1]) + BODY[5001:])
        assert storage.stat(handle).st_size == len(BODY)
        with pytest.raises(Error) as info:
            storage.open(handle).read()
        assert str(info.value) == f"Attachment is damaged: its CRC32C does not match:\n    {handle}"
    finally:
        server.stop()


def test_open_reads_the_generation_it_found(storage: GCSStorage, server, bucket) -> None:
    handle = storage.add("memo.txt", "old text")
    stream = storage.open(handle)
    put_object(server, bucket, handle[1:], b"new text").raise_for_status()
    with pytest.raises(NotFoundError, match="^Attachment was removed or replaced while it was read:"):
        stream.read()
    assert storage.open(handle).read() == b"new text"


def test_route_serves_the_generation_its_headers_describe(storage: GCSStorage, server,
                                                          bucket: str) -> None:
    handle = storage.add("memo.txt", "old text")
    app = storage.route(handle)  # its headers say 8 bytes of the first generation
    put_object(server, bucket, handle[1:], b"new text, longer").raise_for_status()
    with pytest.raises(NotFoundError, match="^Attachment was removed or replaced while it was read:"):
        Request.blank("/").get_response(app).body  # noqa: B018
    assert Request.blank("/").get_response(storage.route(handle)).body == b"new text, longer"


def test_iteration_pages_in_order_and_skips_other_keys(storage: GCSStorage, server,
                                                      bucket: str) -> None:
    storage.page_size = 3
    added = [storage.add(f"f{i}.txt", str(i)) for i in range(8)]
    for name in ("0-first", "2024/01/01/not-a-uuid/x.txt", f"2099/12/31/{UUID}/bad name.txt",
                 f"2099/12/31/{UUID}/memo.txt/more", "README", "zzz/"):
        put_object(server, bucket, name, b"not an attachment").raise_for_status()
    page = requests.get(f"{server.endpoint}/storage/v1/b/{bucket}/o",
                        params={"maxResults": 3}, timeout=10).json()
    assert len(page["items"]) == 3 and page["nextPageToken"]  # the server does page
    assert list(storage) == sorted(added)
