"""Reference server: a bare streaming upload with python-multipart.

``POST /anything`` with a multipart/form-data body: each file part is written
to a new file in ``$BENCH_DIR`` as its bytes arrive (python-multipart's push
parser, 1 MiB reads), then fsynced; plain fields are kept in memory and
dropped.  Answers ``200`` with the stored file names.  No routing, no
validation, no database: the fastest a Python WSGI upload can reasonably be,
so the project's ``/upload`` is measured against it.

Run: ``BENCH_DIR=/some/dir gunicorn --chdir bench/refs multipart_disk:app``
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

ROOT = os.environ["BENCH_DIR"]
CHUNK_SIZE = 1 << 20


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    _, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
    if b"boundary" not in options:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"expected a multipart/form-data body\n"]
    stored: list[str] = []
    headers = bytearray()  # the raw header values of the current part
    file: BinaryIO | None = None

    def on_part_begin() -> None:
        nonlocal file
        headers.clear()
        file = None

    def on_header_value(data: bytes, start: int, end: int) -> None:
        headers.extend(data[start:end])

    def on_headers_finished() -> None:
        nonlocal file
        if b"filename=" in headers:
            file = tempfile.NamedTemporaryFile(dir=ROOT, prefix="upload-", delete=False)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if file is not None:
            file.write(memoryview(data)[start:end])

    def on_part_end() -> None:
        if file is not None:
            file.flush()
            os.fsync(file.fileno())
            file.close()
            stored.append(os.path.basename(file.name))

    parser = MultipartParser(options[b"boundary"], {
        "on_part_begin": on_part_begin,
        "on_header_value": on_header_value,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    stream = environ["wsgi.input"]
    while chunk := stream.read(CHUNK_SIZE):
        parser.write(chunk)
    parser.finalize()
    body = ("\n".join(stored) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
