"""Reference server: a streaming upload to S3, python-multipart then boto3.

``POST /anything`` with a multipart/form-data body: each file part is written
to an anonymous temporary file as its bytes arrive (python-multipart's push
parser, 1 MiB reads, as in ``multipart_disk.py``; no fsync: the file is only
a spool), then sent to the bucket with boto3's ``upload_fileobj``, to a new
key ``$BENCH_S3_PREFIX/Y/M/D/UUID/FILENAME``.  Plain fields are kept in
memory and dropped.  Answers ``200`` with the stored keys.  No routing, no
validation, no database, no hashing, no check that the key is free: the
project's ``/upload`` on S3 storage is measured against it.

It talks to the store exactly as the project does: the client is the one
`rex.attach.s3.S3Storage` makes (timeouts, retries, checksums off,
create-only writes), made on first use in each worker as the project's is,
the transfer is the module's `TRANSFER`, and the ``ExtraArgs`` have the
project's shape (the content type of the name, a ``crc32c`` in the metadata,
here a constant).

Run: ``BENCH_S3_ENDPOINT=http://... BENCH_S3_REGION=... BENCH_S3_ACCESS_KEY=...
BENCH_S3_SECRET_KEY=... BENCH_S3_BUCKET=... [BENCH_S3_PREFIX=ref]
gunicorn --chdir bench/refs multipart_s3:app``
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from rex.attach.s3 import TRANSFER, S3Storage

BUCKET = os.environ["BENCH_S3_BUCKET"]
PREFIX = os.environ.get("BENCH_S3_PREFIX", "ref").strip("/")
CHUNK_SIZE = 1 << 20
CRC32C = "AAAAAA=="  # the metadata's shape; computing it is what the project adds

_storage = S3Storage(BUCKET, endpoint=os.environ["BENCH_S3_ENDPOINT"],
                     region=os.environ["BENCH_S3_REGION"],
                     access_key=os.environ["BENCH_S3_ACCESS_KEY"],
                     secret_key=os.environ["BENCH_S3_SECRET_KEY"])


def client() -> Any:
    """The project's kind of client, made on first use in each process."""
    return _storage.client


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    _, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
    if b"boundary" not in options:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"expected a multipart/form-data body\n"]
    files: list[tuple[str, BinaryIO]] = []  # (file name, spooled content)
    field, value = bytearray(), bytearray()  # the current header's name and value
    disposition = b""  # the current part's Content-Disposition
    file: BinaryIO | None = None

    def on_part_begin() -> None:
        nonlocal file, disposition
        disposition = b""
        file = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_header_end() -> None:
        nonlocal disposition
        if field.lower() == b"content-disposition":
            disposition = bytes(value)
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        nonlocal file
        _, params = parse_options_header(disposition)
        if b"filename" in params:
            file = tempfile.TemporaryFile()
            name = params[b"filename"].decode("utf-8", "replace") or "upload.bin"
            files.append((os.path.basename(name), file))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if file is not None:
            file.write(memoryview(data)[start:end])

    def on_part_end() -> None:
        if file is not None:
            file.flush()
            file.seek(0)

    parser = MultipartParser(options[b"boundary"], {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    stored: list[str] = []
    try:
        stream = environ["wsgi.input"]
        while chunk := stream.read(CHUNK_SIZE):
            parser.write(chunk)
        parser.finalize()
        for name, content in files:
            key = f"{PREFIX}/{time.strftime('%Y/%m/%d')}/{uuid.uuid4()}/{name}"
            content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
            client().upload_fileobj(content, BUCKET, key, Config=TRANSFER, ExtraArgs={
                "ContentType": content_type, "Metadata": {"crc32c": CRC32C}})
            stored.append(key)
    finally:
        for _, content in files:
            content.close()
    body = ("\n".join(stored) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
