"""A 256 MiB file through the demo over real HTTP: it must come back intact,
and neither the upload nor the download may hold it in a worker's memory.

Both sides stream: the test generates the file chunk by chunk while it
sends it and hashes the download as it arrives, so the test process never
holds it either.  No timing is asserted, only bytes and memory.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from attach_demo.test_serve import MiB, rows, stored_files, upload
from helpers import RssSampler, ServerURL, serve, staged, worker_pids

pytestmark = pytest.mark.slow

CHUNKS = 256  # of 1 MiB
SIZE = CHUNKS * MiB
BIG_TIMEOUT = 300  # seconds, for each socket operation of the big transfers
MAX_UPLOAD_GROWTH = 32 * MiB
MAX_DOWNLOAD_GROWTH = 16 * MiB
WORKERS = 2  # what `serve()` asks for


def noise(digest: hashlib._Hash) -> Iterator[bytes]:
    """`SIZE` bytes in 1 MiB chunks, hashed into `digest` as they are made:
    one random block with each chunk's number in its first 8 bytes, so that
    a dropped, repeated or reordered chunk changes the SHA-256."""
    block = os.urandom(MiB)
    for number in range(CHUNKS):
        chunk = number.to_bytes(8, "big") + block[8:]
        digest.update(chunk)
        yield chunk


def post_file(url: str, fields: dict[str, str], name: str, chunks: Iterator[bytes],
              size: int) -> http.client.HTTPResponse:
    """POSTs ``/upload`` as multipart/form-data with a Content-Length, the
    file field ``attachment`` last, its `size` bytes sent as `chunks` come."""
    boundary = "rex-" + secrets.token_hex(16)
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                   f"{value}\r\n" for key, value in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; '
             f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n')
    start, end = head.encode(), f"\r\n--{boundary}--\r\n".encode()
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=BIG_TIMEOUT)
    try:
        connection.request("POST", "/upload", body=itertools.chain([start], chunks, [end]),
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                    "Content-Length": str(len(start) + size + len(end))})
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


def ready_workers(url: ServerURL) -> list[int]:
    """The server's workers, once all of them have started."""
    deadline = time.monotonic() + 30
    while len(pids := worker_pids(url.pid)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(pids) == WORKERS, pids
    return pids


def test_256_mib_round_trip_in_constant_memory(tmp_path: Path) -> None:
    attach_dir = tmp_path / "attachments"
    sent, received = hashlib.sha256(), hashlib.sha256()
    try:
        with serve(tmp_path) as url:
            workers = ready_workers(url)
            # A few small round trips first, so that what a worker allocates
            # once (on its first upload, page or download) is not counted.
            for number in range(6):
                assert upload(url, f"warm{number}", "Warm-up", "w.bin", b"w" * MiB).status_code == 303
                assert requests.get(f"{url}/download?code=warm{number}", timeout=30).content == b"w" * MiB
                assert len(rows(url)) == number + 1

            with RssSampler(workers) as upload_memory:
                response = post_file(url, {"code": "big", "title": "A quarter GiB"}, "big.bin",
                                     noise(sent), SIZE)
            assert response.status == 303, response.status
            assert urlsplit(urljoin(url + "/upload", response.getheader("Location"))).path == "/"

            with RssSampler(workers) as download_memory:
                with requests.get(f"{url}/download?code=big", stream=True,
                                  timeout=BIG_TIMEOUT) as download:
                    assert download.status_code == 200
                    assert download.headers["Content-Length"] == str(SIZE)
                    length = 0
                    for chunk in download.iter_content(MiB):
                        received.update(chunk)
                        length += len(chunk)

            # Neither transfer made gunicorn replace a worker (which would
            # hide its memory from the samplers).
            assert worker_pids(url.pid) == workers
            big = [row for row in rows(url) if row["code"] == "big"]
            assert big == [{"code": "big", "title": "A quarter GiB", "size": f"{SIZE:,} bytes",
                            "href": "download?code=big"}]

        print(f"\nworker RSS growth: upload {upload_memory.growth / MiB:.1f} MiB, "
              f"download {download_memory.growth / MiB:.1f} MiB "
              f"({'VmHWM' if upload_memory.exact else 'sampled VmRSS'})")
        assert length == SIZE
        assert received.hexdigest() == sent.hexdigest()
        big_files = [path for path in stored_files(attach_dir) if path.endswith("/big.bin")]
        assert len(big_files) == 1 and os.path.getsize(big_files[0]) == SIZE
        assert len(stored_files(attach_dir)) == 7
        # The spooled upload was renamed into place: nothing stays in staging.
        assert staged(attach_dir) == []
        assert upload_memory.growth < MAX_UPLOAD_GROWTH, upload_memory.peak
        assert download_memory.growth < MAX_DOWNLOAD_GROWTH, download_memory.peak
    finally:
        shutil.rmtree(attach_dir, ignore_errors=True)
