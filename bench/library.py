"""The library-level measures, run in the benchmark's own process: each
function is one timed run and returns ``(seconds, memory growth in bytes)``,
the growth being the rise of this process's VmRSS while it ran.

Each measure has a raw side (the plainest code that does the same job with
the standard library or boto3) and a project side (the `Storage` API).
"""

from __future__ import annotations

import datetime
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from procs import RssSampler

CHUNK_SIZE = 1 << 20
Run = tuple[float, int]  # seconds, bytes of memory growth


def timed(work: Callable[[], object]) -> Run:
    """Runs `work`, timing it and sampling this process's memory."""
    with RssSampler([os.getpid()]) as sampler:
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
    return seconds, sampler.growth


# -- many small durable adds ---------------------------------------------------------------

def raw_durable_adds(directory: str, count: int, data: bytes) -> Run:
    """The raw durable atomic create, `count` times: write a temporary file,
    fsync it, rename it to its name, fsync the directory."""
    os.makedirs(directory, exist_ok=True)

    def work() -> None:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(count):
                tmp = os.path.join(directory, f".{i}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, os.path.join(directory, f"{i}.bin"))
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    return timed(work)


def storage_adds(storage: Any, count: int, data: bytes) -> Run:
    """``storage.add(name, data)``, `count` times."""
    return timed(lambda: [storage.add(f"{i}.bin", data) for i in range(count)])


# -- listing many handles ------------------------------------------------------------------

def make_tree(directory: str, count: int, per_day: int = 1000) -> None:
    """Lays out `count` one-byte attachments the way the local backend does,
    ``DIR/YYYY/MM/DD/UUID/NAME``, `per_day` to a day; fast (no fsync)."""
    day = datetime.date(2020, 1, 1)
    for i in range(count):
        if i % per_day == 0:
            parent = os.path.join(directory, day.strftime("%Y/%m/%d"))
            os.makedirs(parent, exist_ok=True)
            day += datetime.timedelta(days=1)
        folder = os.path.join(parent, str(uuid.uuid4()))
        os.mkdir(folder)
        with open(os.path.join(folder, f"{i}.bin"), "wb") as out:
            out.write(b"x")


def scandir_walk(path: str, prefix: str = "", depth: int = 0) -> Iterator[str]:
    """The raw listing: ``/YYYY/MM/DD/UUID/NAME`` of every file of a tree
    laid out by `make_tree`, sorted, hidden entries (``.tmp``) skipped."""
    with os.scandir(path) as entries:
        names = sorted(entry.name for entry in entries if not entry.name.startswith("."))
    for name in names:
        if depth == 4:
            yield f"{prefix}/{name}"
        else:
            yield from scandir_walk(f"{path}/{name}", f"{prefix}/{name}", depth + 1)


def count_all(handles: Iterator[str], expected: int) -> Run:
    """Consumes an iterator of handles, keeping none; it must yield `expected`."""
    found = 0

    def work() -> None:
        nonlocal found
        for _ in handles:
            found += 1

    run = timed(work)
    if found != expected:
        raise RuntimeError(f"listed {found} handles, expected {expected}")
    return run


# -- S3 --------------------------------------------------------------------------------------

def boto3_upload(client: Any, bucket: str, key: str, path: str, config: Any = None,
                 extra_args: dict[str, Any] | None = None) -> Run:
    """``upload_fileobj`` of a file (boto3's managed, multipart transfer),
    with a `TransferConfig` and ``ExtraArgs`` if given."""
    def work() -> None:
        with open(path, "rb") as file:
            client.upload_fileobj(file, bucket, key, Config=config, ExtraArgs=extra_args)

    return timed(work)


def file_crc32c(path: str) -> str:
    """The CRC32C of a file (untimed: what a reference puts in metadata)."""
    from rex.attach.checksum import compute

    with open(path, "rb") as file:
        return compute(file)[0]


def storage_add_file(storage: Any, name: str, path: str) -> tuple[Run, str]:
    """``storage.add(name, file)`` of an open file; also returns the handle."""
    handle = ""

    def work() -> None:
        nonlocal handle
        with open(path, "rb") as file:
            handle = storage.add(name, file)

    return timed(work), handle


def boto3_stream(client: Any, bucket: str, key: str, size: int) -> Run:
    """``get_object`` and its body read 1 MiB at a time, and discarded."""
    def work() -> None:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        received = 0
        while chunk := body.read(CHUNK_SIZE):
            received += len(chunk)
        body.close()
        _check(received, size)

    return timed(work)


def route_stream(storage: Any, handle: str, size: int) -> Run:
    """``storage.route(handle)`` called as a WSGI application for a plain GET,
    its body iterated and discarded."""
    from webob import Request

    def work() -> None:
        status, _, body = Request.blank("/").call_application(storage.route(handle))
        received = 0
        try:
            for chunk in body:
                received += len(chunk)
        finally:
            getattr(body, "close", lambda: None)()
        if not status.startswith("200"):
            raise RuntimeError(f"route({handle}): {status}")
        _check(received, size)

    return timed(work)


def _check(received: int, size: int) -> None:
    if received != size:
        raise RuntimeError(f"received {received} bytes, expected {size}")
