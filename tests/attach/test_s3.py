"""What only the S3 backend does, on a real Ceph RADOS Gateway on 127.0.0.1:
the check at startup, boto3's credential chain, object metadata, failed and
racing uploads, memory use, paging and reads of a replaced object."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_s3 import admin_client, clear_aws_environment, s3_settings
from botocore.exceptions import ConnectionClosedError
from servers import S3Server, free_port, start_radosgw
from webob import Request

from helpers import crc32c_of
from rex.attach import get_storage
from rex.attach.s3 import S3Storage
from rex.core import Error, NotFoundError, Rex

pytestmark = pytest.mark.s3

MiB = 1 << 20
TEST_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # not a real key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A radosgw of this module's own."""
    server = start_radosgw(tmp_path_factory.mktemp("radosgw"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_aws_environment(monkeypatch, tmp_path)


@pytest.fixture
def admin(server: S3Server) -> Any:
    """A plain boto3 client, to look behind rex.attach's back."""
    return admin_client(server)


@pytest.fixture
def bucket(admin: Any) -> str:
    """A new, empty bucket for each test."""
    name = f"t{uuid.uuid4().hex[:16]}"
    admin.create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage(server: S3Server, bucket: str) -> S3Storage:
    return S3Storage(bucket, endpoint=server.endpoint, region=server.region,
                     access_key=server.access_key, secret_key=server.secret_key)


def make_app(tmp_path: Path, **settings: Any) -> Rex:
    """The demo application on SQLite with these settings."""
    return Rex("rex.attach_demo", db=f"sqlite:///{tmp_path}/x.sqlite", **settings)


def refusal(tmp_path: Path, **settings: Any) -> Error:
    """The error that stops the demo application with these settings."""
    with pytest.raises(Error) as info:
        make_app(tmp_path, **settings)
    return info.value


def operations(storage: S3Storage, when: str = "after-call") -> list[str]:
    """The names of the S3 operations that the storage calls from now on."""
    seen: list[str] = []

    def record(model: Any = None, **kwargs: Any) -> None:
        seen.append(model.name)

    storage.client.meta.events.register(f"{when}.s3", record)
    return seen


def keys(admin: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in admin.list_objects_v2(Bucket=bucket).get("Contents", [])]


def dangling_uploads(admin: Any, bucket: str) -> list[dict]:
    return admin.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


# The check at startup -------------------------------------------------------

@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def dropping_endpoint() -> Iterator[str]:
    """A port whose backlog is full, so that Linux drops further connection
    attempts (as a firewall does): connecting times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(address)
            time.sleep(0.2)
            yield f"http://127.0.0.1:{address[1]}"
        finally:
            for filler in fillers:
                filler.close()


@pytest.mark.parametrize("kind, because", [
    ("closed", "Could not connect to the endpoint URL: "),
    ("silent", "Read timeout on endpoint URL: "),
    ("dropping", "Connect timeout on endpoint URL: "),
])
@pytest.mark.slow
def test_unreachable_endpoint_fails_fast(request: pytest.FixtureRequest, tmp_path: Path,
                                         kind: str, because: str) -> None:
    endpoint = (f"http://127.0.0.1:{free_port()}" if kind == "closed"
                else request.getfixturevalue(f"{kind}_endpoint"))
    started = time.monotonic()
    error = refusal(tmp_path, attach_s3_bucket="attachments", attach_s3_endpoint=endpoint,
                    attach_s3_access_key="AKIDEXAMPLE", attach_s3_secret_key=TEST_SECRET)
    took = time.monotonic() - started
    assert took < 15, f"{kind}: {took:.1f} s"
    assert error.paragraphs[0] == ("Cannot reach S3 endpoint:", f"attachments at {endpoint}")
    assert error.paragraphs[1][0] == "Because:"
    assert str(error.paragraphs[1][1]) == f'{because}"{endpoint}/attachments"'
    assert str(error).startswith(f"Cannot reach S3 endpoint:\n    attachments at {endpoint}\n"
                                 "Because:\n")
    assert "While initializing RexDB application:\n    rex.attach_demo" in str(error)


def test_wrong_secret_key_is_refused(tmp_path: Path, server: S3Server, bucket: str) -> None:
    error = refusal(tmp_path, **{**s3_settings(server, bucket),
                                 "attach_s3_secret_key": TEST_SECRET})
    assert str(error).startswith("S3 refused the credentials for bucket:\n"
                                 f"    {bucket} at {server.endpoint}\n"
                                 "While initializing RexDB application:\n    rex.attach_demo\n")
    assert "attach_s3_secret_key: '***'" in str(error)
    assert TEST_SECRET not in str(error) and server.secret_key not in str(error)


def test_unknown_access_key_is_refused(tmp_path: Path, server: S3Server, bucket: str) -> None:
    error = refusal(tmp_path, **{**s3_settings(server, bucket),
                                 "attach_s3_access_key": "AKIDNOSUCHKEY"})
    assert error.paragraphs[0] == ("S3 refused the credentials for bucket:",
                                   f"{bucket} at {server.endpoint}")


def test_missing_bucket(tmp_path: Path, server: S3Server) -> None:
    error = refusal(tmp_path, **s3_settings(server, "no-such-bucket"))
    assert str(error).startswith("S3 bucket does not exist:\n"
                                 f"    no-such-bucket at {server.endpoint}\n")


def test_no_credentials_at_all(tmp_path: Path, server: S3Server, bucket: str) -> None:
    error = refusal(tmp_path, attach_s3_bucket=bucket, attach_s3_endpoint=server.endpoint)
    assert str(error).startswith("No S3 credentials are configured for bucket:\n"
                                 f"    {bucket} at {server.endpoint}\n"
                                 "While initializing RexDB application:\n")


def test_half_of_the_credentials(tmp_path: Path, server: S3Server, bucket: str) -> None:
    settings = {"attach_s3_bucket": bucket, "attach_s3_endpoint": server.endpoint}
    error = refusal(tmp_path, **settings, attach_s3_secret_key=server.secret_key)
    assert error.paragraphs[0] == ("S3 access key and secret key must be set together, or neither:",
                                   "access key unset, secret key set")
    assert server.secret_key not in str(error)
    error = refusal(tmp_path, **settings, attach_s3_access_key=server.access_key)
    assert error.paragraphs[0] == ("S3 access key and secret key must be set together, or neither:",
                                   f"access key {server.access_key!r}, secret key unset")


def test_incomplete_credentials_in_the_environment(tmp_path: Path, server: S3Server, bucket: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    error = refusal(tmp_path, attach_s3_bucket=bucket, attach_s3_endpoint=server.endpoint)
    assert str(error).startswith(f"Incomplete S3 credentials for bucket:\n    {bucket} at "
                                 f"{server.endpoint}\nBecause:\n"
                                 "    Partial credentials found in env")


def test_settings_fall_back_to_the_environment(tmp_path: Path, server: S3Server, bucket: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    with make_app(tmp_path, attach_s3_bucket=bucket, attach_s3_endpoint=server.endpoint):
        storage = get_storage()
        assert (storage.access_key, storage.region) == (None, None)
        assert storage.client.meta.region_name == "eu-west-3"
        handle = storage.add("memo.txt", "Feed the cats!")
        with storage.open(handle) as stream:
            assert stream.read() == b"Feed the cats!"
    # The environment's key is the one in use: a wrong one is refused.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
    error = refusal(tmp_path, attach_s3_bucket=bucket, attach_s3_endpoint=server.endpoint)
    assert error.paragraphs[0][0] == "S3 refused the credentials for bucket:"


# Building touches no network ------------------------------------------------

@pytest.fixture
def counting_endpoint() -> Iterator[tuple[str, Callable[[], int]]]:
    """A port that counts the connections it gets and hangs up on each."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    count = 0

    def serve() -> None:
        nonlocal count
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            count += 1
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", lambda: count
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)


def test_building_touches_no_network(counting_endpoint: tuple[str, Callable[[], int]]) -> None:
    endpoint, connections = counting_endpoint
    storage = S3Storage("attachments", endpoint=endpoint, region="eu-west-3",
                        access_key="AKIDEXAMPLE", secret_key=TEST_SECRET)
    assert repr(storage) == (f"S3Storage('attachments', endpoint='{endpoint}', "
                             "region='eu-west-3', access_key='AKIDEXAMPLE')")
    assert TEST_SECRET not in repr(storage)
    handle = storage.reserve("memo.txt")
    storage.download_link(handle)  # signed here, not asked for
    time.sleep(0.2)
    assert connections() == 0
    with pytest.raises(Error, match="Cannot reach S3 endpoint:"):
        storage.verify()
    assert connections() > 0  # the counter does count


# Objects and their metadata -------------------------------------------------

@pytest.mark.parametrize("name, size, mime", [
    ("Les Misérables.txt", 100_000, "text/plain; charset=UTF-8"),
    ("empty.csv", 0, "text/csv; charset=UTF-8"),
    ("data.zzz", 10, "application/octet-stream"),
    ("scan.pdf", 17 * MiB, "application/pdf"),  # a multipart upload
])
def test_add_sets_content_type_and_crc32c(storage: S3Storage, admin: Any, name: str, size: int,
                                          mime: str) -> None:
    content = os.urandom(size)
    handle = storage.add(name, io.BytesIO(content))
    head = admin.head_object(Bucket=storage.bucket, Key=handle[1:])
    assert head["ContentType"] == mime
    assert head["Metadata"] == {"crc32c": crc32c_of(content)}
    assert head["ContentLength"] == size
    assert ("-" in head["ETag"]) == (size > 16 * MiB)  # multipart ETags are "MD5-PARTS"
    with storage.open(handle) as stream:
        assert stream.read() == content


class Flaky(io.RawIOBase):
    """`size` bytes that raise OSError at byte `fail_at`: on the first read
    through if not seekable (while add() hashes it), else on the second (while
    it is uploaded), after `before_failing()`."""

    def __init__(self, size: int, fail_at: int, seekable: bool,
                 before_failing: Callable[[], None] = lambda: None) -> None:
        self.size, self.fail_at, self._seekable = size, fail_at, seekable
        self.before_failing = before_failing
        self.position = 0
        self.passes = 0  # read through to the end

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise OSError("not seekable")
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position,
                         io.SEEK_END: self.size}[whence] + offset
        return self.position

    def readinto(self, buffer: Any) -> int:
        failing_pass = 1 if self._seekable else 0
        if self.passes == failing_pass and self.position >= self.fail_at:
            self.before_failing()
            raise OSError("the disk is on fire")
        end = self.fail_at if self.passes == failing_pass else self.size
        n = min(len(buffer), end - self.position)
        if n <= 0:
            self.passes += 1
            return 0
        buffer[:n] = b"x" * n
        self.position += n
        return n


@pytest.mark.parametrize("size, fail_at, seekable, expected", [
    (8 * 1024, 4 * 1024, False, []),
    (40 * MiB, 20 * MiB, False, []),
    (8 * 1024, 4 * 1024, True, ["PutObject"]),
    (40 * MiB, 20 * MiB, True, ["CreateMultipartUpload", "UploadPart", "AbortMultipartUpload"]),
], ids=["hashing-small", "hashing-large", "uploading-single-put", "uploading-multipart"])
def test_failed_upload_leaves_nothing(storage: S3Storage, admin: Any, size: int, fail_at: int,
                                      seekable: bool, expected: list[str]) -> None:
    calls = operations(storage, "before-call")
    keys_asked: list[str] = []
    for operation in ("HeadObject", "PutObject", "CreateMultipartUpload"):
        storage.client.meta.events.register(
            f"before-parameter-build.s3.{operation}",
            lambda params, **kwargs: keys_asked.append(params["Key"]))
    part_uploaded = threading.Event()
    storage.client.meta.events.register("after-call.s3.UploadPart",
                                        lambda **kwargs: part_uploaded.set())
    seen_uploads: list[int] = []

    def before_failing() -> None:
        if "CreateMultipartUpload" in calls:
            part_uploaded.wait(30)  # fail with parts stored, for the abort to remove
            seen_uploads.append(len(dangling_uploads(admin, storage.bucket)))

    with pytest.raises(OSError, match="the disk is on fire"):
        storage.add("doomed.bin", Flaky(size, fail_at, seekable, before_failing))

    assert [name for name in dict.fromkeys(calls) if name != "HeadObject"] == expected
    if "AbortMultipartUpload" in expected:
        assert seen_uploads == [1]  # the listing does show an upload in progress
    assert dangling_uploads(admin, storage.bucket) == []
    assert keys(admin, storage.bucket) == []
    asked = set(keys_asked)  # a look below asks too
    assert len(asked) == (1 if seekable else 0)  # hashing fails before any request
    assert all("/" + key not in storage for key in asked)


@pytest.mark.parametrize("size, expected", [
    (100_000, ["PutObject"]),
    (17 * MiB, ["HeadObject", "CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart",
                "CompleteMultipartUpload"]),
], ids=["small", "multipart"])
def test_write_sends_its_crc32c_and_answers_with_it(storage: S3Storage, size: int,
                                                    expected: list[str]) -> None:
    """A small write is one create-only PUT that carries its CRC32C (for a
    store that checks it): no look before, none after; a multipart upload,
    which radosgw does not make create-only, looks first."""
    content = os.urandom(size)
    calls = operations(storage)
    sent: list[dict[str, str]] = []
    storage.client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **kwargs: sent.append({name.lower(): value for name, value
                                               in request.headers.items()}))
    handle = storage.reserve("scan.bin")
    assert storage.write(handle, io.BytesIO(content)) == crc32c_of(content)
    assert sorted(calls) == sorted(expected)  # parts go in parallel
    if sent:
        assert sent[0]["x-amz-checksum-crc32c"] == crc32c_of(content).encode()
        assert sent[0]["if-none-match"] == b"*"
    with storage.open(handle) as stream:
        assert stream.read() == content


def test_write_to_an_existing_handle_is_refused(storage: S3Storage, admin: Any) -> None:
    handle = storage.add("memo.txt", "original")
    calls = operations(storage, "before-call")
    with pytest.raises(Error) as info:
        storage.write(handle, io.BytesIO(b"replacement"))
    assert str(info.value) == f"Attachment already exists:\n    {handle}"
    assert calls == ["PutObject", "HeadObject"]  # refused (412), then a look at what is there
    assert storage.open(handle).read() == b"original"
    head = admin.head_object(Bucket=storage.bucket, Key=handle[1:])
    assert head["Metadata"]["crc32c"] == crc32c_of(b"original")


def sneak_in(storage: S3Storage, admin: Any, handle: str, operation: str,
             body: bytes = b"theirs", metadata: dict[str, str] | None = None) -> None:
    """Someone else stores the handle's key just before `operation` is sent."""

    def put(**kwargs: Any) -> None:  # None: the call goes on
        admin.put_object(Bucket=storage.bucket, Key=handle[1:], Body=body,
                         Metadata=metadata or {})

    storage.client.meta.events.register(f"before-call.s3.{operation}", put)


def test_write_that_loses_a_race_is_refused(storage: S3Storage, admin: Any) -> None:
    """The key appears between the existence check and the PUT: the PUT's
    If-None-Match refuses to replace it."""
    handle = storage.reserve("memo.txt")
    sneak_in(storage, admin, handle, "PutObject")
    with pytest.raises(Error) as info:
        storage.write(handle, io.BytesIO(b"ours"))
    assert str(info.value) == f"Attachment already exists:\n    {handle}"
    assert admin.get_object(Bucket=storage.bucket, Key=handle[1:])["Body"].read() == b"theirs"


def test_write_that_meets_its_own_content_stands(storage: S3Storage, admin: Any) -> None:
    """A PUT that stored the object but whose answer was lost is retried;
    the retry, refused, finds the same CRC32C and size: its own."""
    handle = storage.reserve("memo.txt")
    lost: list[str] = []

    def store_and_lose_the_answer(request: Any, **kwargs: Any) -> None:
        if not lost:
            lost.append(request.url)
            admin.put_object(Bucket=storage.bucket, Key=handle[1:], Body=b"ours",
                             Metadata={"crc32c": crc32c_of(b"ours")})
            raise ConnectionClosedError(endpoint_url=request.url)

    storage.client.meta.events.register("before-send.s3.PutObject", store_and_lose_the_answer)
    calls = operations(storage)
    assert storage.write(handle, io.BytesIO(b"ours")) == crc32c_of(b"ours")
    assert len(lost) == 1 and calls == ["PutObject", "HeadObject"]
    assert storage.open(handle).read() == b"ours"


def test_write_that_finds_the_same_content_there_is_refused(storage: S3Storage,
                                                            admin: Any) -> None:
    """Not a retry: what was there before the PUT is not its own, whatever
    it holds (so a migration tells a copy from what it skips)."""
    handle = storage.reserve("memo.txt")
    sneak_in(storage, admin, handle, "PutObject", b"ours", {"crc32c": crc32c_of(b"ours")})
    with pytest.raises(Error) as info:
        storage.write(handle, io.BytesIO(b"ours"))
    assert str(info.value) == f"Attachment already exists:\n    {handle}"


def test_migration_copies_a_small_attachment_in_one_request(storage: S3Storage,
                                                            tmp_path: Path) -> None:
    """`rex attach migrate` to S3: one create-only PUT per small attachment,
    verified by what the PUT answers; run again, each PUT is refused and
    looks find the same CRC32C there: skipped."""
    from rex.attach.cli.migrate import COPIED, SKIPPED, Migration
    from rex.attach.local import LocalStorage

    source = LocalStorage(str(tmp_path))
    handles = sorted(source.add(f"file{i}.bin", os.urandom(i * 1000)) for i in range(3))
    for state, looks in [(COPIED, set()), (SKIPPED, {"HeadObject"})]:
        calls = operations(storage, "before-call")
        for handle in handles:
            copy = Migration(source, storage)(handle)
            assert (copy.state, copy.size, copy.detail) == (state, source.stat(handle).st_size, "")
            assert calls[0] == "PutObject" and set(calls[1:]) == looks, calls
            calls.clear()
    for handle in handles:
        with storage.open(handle) as copied, source.open(handle) as original:
            assert copied.read() == original.read()


# Checksums recorded later ---------------------------------------------------

def written_before_checksums(storage: S3Storage, admin: Any, content: bytes) -> str:
    """An attachment as rex.attach stored it before CRC32C: a SHA-256 in its metadata."""
    handle = storage.reserve("scan.pdf")
    admin.put_object(Bucket=storage.bucket, Key=handle[1:], Body=content,
                     ContentType="application/pdf",
                     Metadata={"sha256": hashlib.sha256(content).hexdigest()})
    return handle


def test_record_crc32c_keeps_the_object_as_it_was(storage: S3Storage, admin: Any) -> None:
    content = os.urandom(100_000)
    handle = written_before_checksums(storage, admin, content)
    assert storage.stat(handle).crc32c is None
    calls = operations(storage)
    assert storage.record_crc32c(handle) == crc32c_of(content)
    assert calls == ["HeadObject", "GetObject", "HeadObject", "CopyObject"]
    got = admin.get_object(Bucket=storage.bucket, Key=handle[1:])
    assert got["Body"].read() == content
    assert got["ContentType"] == "application/pdf"
    assert got["Metadata"] == {"sha256": hashlib.sha256(content).hexdigest(),
                               "crc32c": crc32c_of(content)}
    assert storage.stat(handle).crc32c == crc32c_of(content)


def test_record_crc32c_replaces_nothing_but_what_it_read(storage: S3Storage,
                                                         admin: Any) -> None:
    handle = written_before_checksums(storage, admin, b"old")
    sneak_in(storage, admin, handle, "CopyObject")
    with pytest.raises(NotFoundError) as info:
        storage.record_crc32c(handle)
    assert str(info.value) == f"Attachment was removed or replaced while it was read:\n    {handle}"
    got = admin.get_object(Bucket=storage.bucket, Key=handle[1:])
    assert got["Body"].read() == b"theirs" and got["Metadata"] == {}


def test_record_crc32c_never_revives_a_removed_attachment(storage: S3Storage,
                                                          admin: Any) -> None:
    handle = written_before_checksums(storage, admin, b"old")
    storage.client.meta.events.register("before-call.s3.CopyObject",
                                        lambda **kwargs: storage.remove(handle))
    with pytest.raises(NotFoundError):
        storage.record_crc32c(handle)
    assert handle not in storage


# Memory ---------------------------------------------------------------------

class Noise(io.RawIOBase):
    """`size` random bytes, made as they are read; not seekable."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, MiB)
        chunk = os.urandom(n)
        buffer[:n] = chunk
        self.digest.update(chunk)
        self.left -= n
        return n


@pytest.mark.parametrize("source", ["stream", "file"])
def test_large_objects_stream_in_little_memory(storage: S3Storage, tmp_path: Path,
                                               source: str) -> None:
    """64 MiB in and out with at most 40 MiB allocated by Python at once."""
    size, limit = 64 * MiB, 40 * MiB
    noise = Noise(size)
    content: Any = io.BufferedReader(noise, MiB)
    if source == "file":
        with open(tmp_path / "big.bin", "wb") as out:
            while chunk := content.read(MiB):
                out.write(chunk)
        content = open(tmp_path / "big.bin", "rb")
    assert storage.client is not None  # made before measuring
    tracemalloc.start()
    try:
        with content:
            handle = storage.add("big.bin", content)
        added = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with storage.open(handle) as stream:
            while chunk := stream.read(MiB):
                digest.update(chunk)
        read = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"tracemalloc peaks, {source}: add {added / MiB:.1f} MiB, read {read / MiB:.1f} MiB")
    assert digest.hexdigest() == noise.digest.hexdigest()
    assert storage.stat(handle).st_size == size
    assert added < limit, f"add() peaked at {added / MiB:.1f} MiB"
    assert read < limit, f"reading peaked at {read / MiB:.1f} MiB"
    storage.remove(handle)


# Listing ----------------------------------------------------------------------

def test_iteration_pages_sorts_and_skips_foreign_keys(storage: S3Storage, admin: Any) -> None:
    added = [storage.add(name, name) for name in
             ["a.txt", "Zebra.txt", "Ünïcödé.txt", "memo.txt", "x.bin", "y.bin", "z.bin"]]
    foreign = f"2024/01/01/{uuid.uuid4()}/made-elsewhere.txt"  # well-formed: listed
    for key in [foreign, "README.txt", "2024/01/01/not-a-uuid/x.txt",
                f"2024/01/01/{uuid.uuid4()}/memo.txt/extra", f"2024/01/01/{uuid.uuid4()}/a b.txt",
                "~/late.txt"]:
        admin.put_object(Bucket=storage.bucket, Key=key, Body=b"")
    storage.page_size = 3
    calls = operations(storage)
    handles = list(storage)
    assert handles == sorted(added + ["/" + foreign])
    assert calls.count("ListObjectsV2") >= 5  # 13 keys, 3 a page


# Reading an object that changes ---------------------------------------------

def test_open_refuses_an_object_replaced_while_read(storage: S3Storage, admin: Any) -> None:
    content = os.urandom(17 * MiB)  # multipart: its ETag is not an MD5
    handle = storage.add("data.bin", io.BytesIO(content))
    with storage.open(handle) as stream:
        assert stream.read(MiB) == content[:MiB]
        stream.seek(10 * MiB)  # a new ranged GET of the same version
        assert stream.read(10) == content[10 * MiB:10 * MiB + 10]
        admin.put_object(Bucket=storage.bucket, Key=handle[1:], Body=b"replaced")
        stream.seek(2 * MiB)
        with pytest.raises(Error) as info:
            stream.read(10)
        assert str(info.value) == f"Attachment was removed or replaced while it was read:\n    {handle}"


def test_route_serves_one_version_from_one_head(storage: S3Storage, admin: Any) -> None:
    handle = storage.add("memo.txt", "one")
    heads: list[str] = []
    storage.client.meta.events.register("before-call.s3.HeadObject",
                                        lambda **kwargs: heads.append("HEAD"))
    assert Request.blank("/").get_response(storage.route(handle)).body == b"one"
    assert heads == ["HEAD"]
    app = storage.route(handle)  # its headers say 3 bytes of version "one"
    admin.put_object(Bucket=storage.bucket, Key=handle[1:], Body=b"two!")
    with pytest.raises(Error, match="Attachment was removed or replaced while it was read:"):
        Request.blank("/").get_response(app).body  # noqa: B018


def test_open_refuses_an_object_removed_while_read(storage: S3Storage) -> None:
    content = os.urandom(3 * MiB)
    handle = storage.add("data.bin", content)
    with storage.open(handle) as stream:
        assert stream.read(10) == content[:10]
        storage.remove(handle)
        stream.seek(2 * MiB)
        with pytest.raises(NotFoundError) as info:
            stream.read(10)
        assert str(info.value) == f"Attachment was removed or replaced while it was read:\n    {handle}"
