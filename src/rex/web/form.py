"""Streaming parsing of submitted forms.

A file field is written to disk as its bytes arrive (python-multipart's push
parser), never held in memory; where it is written is up to the `Spool`
extension, so that an attachment store can have it land in its own temporary
directory and keep it by a rename rather than a second copy.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from webob import Request
from webob.exc import HTTPRequestEntityTooLarge
from webob.multidict import MultiDict

from rex.core import Error, Extension

CHUNK_SIZE = 1 << 20
MAX_FIELD_SIZE = 1 << 20  # a plain (non-file) field lives in memory


class Upload:
    """A file field of a submitted form, spooled to a temporary file."""

    def __init__(self, filename: str, content_type: str, file: BinaryIO, path: str | None) -> None:
        self.filename = filename
        self.content_type = content_type
        self.file = file
        self.path = path  # None for an anonymous temporary file
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def discard(self) -> None:
        """Closes and removes the spooled file, unless it was moved away."""
        self.file.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.content_type!r}, size={self.size})"


class Spool(Extension):
    """Where file fields go while a form streams in, and how big they may be.

    The default spools to anonymous temporary files with no size limit; a
    package overrides it by subclassing (the last subclass wins).
    """

    def open(self) -> tuple[BinaryIO, str | None]:
        """A new writable binary file, and its path if it has one."""
        return tempfile.TemporaryFile(), None

    def max_size(self) -> int | None:
        """The largest file field accepted, in bytes."""
        return None


def parse_form(req: Request) -> tuple[MultiDict, list[Upload]]:
    """The fields of a POSTed form: strings, and `Upload` objects for files.

    Raises `HTTPRequestEntityTooLarge` as soon as a file exceeds the spool's
    limit and `Error` on a malformed body; files already spooled are removed.
    """
    content_type, options = parse_options_header(req.environ.get("CONTENT_TYPE", ""))
    if content_type != b"multipart/form-data":
        return MultiDict(req.POST), []
    boundary = options.get(b"boundary")
    if not boundary:
        raise Error("Expected a multipart boundary in Content-Type:", req.environ["CONTENT_TYPE"])
    spool = Spool.top()()
    parser = _FormParser(boundary, spool)
    try:
        for chunk in _body(req):
            parser.write(chunk)
        parser.finish()
    except BaseException:
        for upload in parser.uploads:
            upload.discard()
        raise
    return parser.fields, parser.uploads


def _body(req: Request) -> Iterator[bytes]:
    """The request body in chunks.  With a Content-Length, straight from the
    server's input: WebOb's `body_file` would add a buffered copy that costs
    a third of the time of parsing."""
    length = req.content_length
    if length is None or req.is_body_seekable:
        stream = req.body_file
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk
        return
    stream = req.body_file_raw
    while length > 0 and (chunk := stream.read(min(CHUNK_SIZE, length))):
        length -= len(chunk)
        yield chunk


class _FormParser:
    """Callbacks for python-multipart that build fields and spool files."""

    def __init__(self, boundary: bytes, spool: Spool) -> None:
        self.spool = spool
        self.limit = spool.max_size()
        self.fields = MultiDict()
        self.uploads: list[Upload] = []
        self.complete = False
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._name = ""
        self._upload: Upload | None = None
        self._value = bytearray()
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except (HTTPRequestEntityTooLarge, Error):
            raise
        except Exception as exc:
            raise Error("Got a malformed multipart/form-data body:", str(exc)) from None

    def finish(self) -> None:
        if not self.complete:
            raise Error("Got a truncated multipart/form-data body")

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_name = self._header_value = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = _decode(options.get(b"name", b""))
        self._value = bytearray()
        self._upload = None
        if b"filename" in options:
            file, path = self.spool.open()
            content_type = _decode(self._headers.get(b"content-type", b"application/octet-stream"))
            self._upload = Upload(_decode(options[b"filename"]), content_type, file, path)
            self.uploads.append(self._upload)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self._upload
        if upload is None:
            if len(self._value) + end - start > MAX_FIELD_SIZE:
                raise HTTPRequestEntityTooLarge(f"A form field is larger than {MAX_FIELD_SIZE} bytes.")
            self._value += data[start:end]
            return
        upload.size += end - start
        if self.limit is not None and upload.size > self.limit:
            raise HTTPRequestEntityTooLarge(f"The file is larger than {self.limit} bytes.")
        upload.file.write(memoryview(data)[start:end])

    def _part_end(self) -> None:
        if self._upload is not None:
            self._upload.file.flush()
            self._upload.file.seek(0)
            self.fields.add(self._name, self._upload)
        else:
            self.fields.add(self._name, _decode(bytes(self._value)))

    def _end(self) -> None:
        self.complete = True


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
