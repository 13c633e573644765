"""Streaming parsing of submitted forms, in bounded memory.

A file field is written to disk as its bytes arrive (python-multipart's push
parser), never held in memory; where it is written is up to the `Spool`
extension, so that an attachment store can have it land in its own temporary
directory and keep it by a rename rather than a second copy.

Whatever a form holds in memory is limited, as Starlette's form parsers do,
by the constants below; past one, the request is refused with 413
(`TooLargeError`) naming the limit.  A malformed body is 400; a disk that
fills up while a file spools is 507 (`InsufficientStorageError`), not the
client's fault.
"""

from __future__ import annotations

import base64
import errno
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import BinaryIO
from urllib.parse import quote, unquote_to_bytes

import crc32c
from python_multipart import MultipartParser, QuerystringParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from webob import Request
from webob.multidict import MultiDict

from rex.core import Error, Extension, InsufficientStorageError, TooLargeError

CHUNK_SIZE = 1 << 20
MAX_FIELDS = 1000  # fields of a form, files included: multipart parts or urlencoded pairs
MAX_FILES = 100  # file fields; each keeps a spool file open until the request ends
MAX_FIELDS_SIZE = 1 << 20  # bytes of a form held in memory: names, values, file names and types
MAX_PART_HEADERS = 16  # headers of one multipart part
MAX_PART_HEADERS_SIZE = 16 << 10  # bytes of one multipart part's headers
MAX_URLENCODED_SIZE = 3 * MAX_FIELDS_SIZE  # a urlencoded body (``%XX`` is 3 bytes for 1)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class Upload:
    """A file field of a submitted form, spooled to a temporary file.

    `size` and `crc32c` are those of what was received (the CRC32C as the
    base64 of its four bytes, big-endian, as Google Cloud Storage shows it;
    None until the whole file is in), computed while it was spooled so that
    a store need not read the file again to record them."""

    def __init__(self, filename: str, content_type: str, file: BinaryIO, path: str | None) -> None:
        self.filename = filename
        self.content_type = content_type
        self.file = file
        self.path = path  # None for an anonymous temporary file
        self.size = 0
        self.crc32c: str | None = None

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def discard(self) -> None:
        """Closes and removes the spooled file, unless it was moved away.

        The file is removed even if closing fails, as it does when closing
        flushes to a full disk."""
        try:
            self.file.close()
        finally:
            if self.path is not None:
                with suppress(FileNotFoundError):
                    os.unlink(self.path)

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.content_type!r}, size={self.size})"


def discard(uploads: Iterable[Upload]) -> None:
    """Discards every upload, even when one fails; then raises the first failure."""
    failure: OSError | None = None
    for upload in uploads:
        try:
            upload.discard()
        except OSError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


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


FieldCheck = Callable[[str, "str | Upload"], None]


def parse_form(req: Request, on_field: FieldCheck | None = None) -> tuple[MultiDict, list[Upload]]:
    """The fields of a POSTed form: strings, and `Upload` objects for files.

    Reads ``multipart/form-data`` and urlencoded bodies (also a body with no
    Content-Type, as browsers and WebOb do); any other body is not read and
    has no fields.  Raises `TooLargeError` past a limit of this module or of
    the spool, `InsufficientStorageError` when the spool's disk is full and
    `Error` on a malformed body; files already spooled are then removed.

    `on_field(name, value)` is called as each text field ends, with its
    value, and as each file field begins, with its `Upload` (still empty),
    before what follows is read: what it raises stops the parsing there, so
    that a form bound to be refused is refused before its file is read.
    """
    content_type, options = parse_options_header(req.environ.get("CONTENT_TYPE", ""))
    if content_type in (b"", b"application/x-www-form-urlencoded"):
        return _parse_urlencoded(req, on_field), []
    if content_type != b"multipart/form-data":
        return MultiDict(), []
    boundary = options.get(b"boundary")
    if not boundary:
        raise Error("Expected a multipart boundary in Content-Type:", req.environ["CONTENT_TYPE"])
    parser = _MultipartParser(boundary, Spool.top()(), on_field)
    try:
        for chunk in _body(req):
            parser.write(chunk)
        parser.finish()
    except BaseException:
        with suppress(OSError):  # the first failure is the one to report
            discard(parser.uploads)
        raise
    return parser.fields, parser.uploads


def _parse_urlencoded(req: Request, on_field: FieldCheck | None) -> MultiDict:
    parser = _UrlencodedParser(on_field)
    for chunk in _body(req, MAX_URLENCODED_SIZE):
        parser.write(chunk)
    parser.finish()
    return parser.fields


def _body(req: Request, limit: int | None = None) -> Iterator[bytes]:
    """The request body in chunks: up to its Content-Length, straight from
    the server's input (WebOb's `body_file` would add a buffered copy that
    costs a third of the time of parsing); without one, to the end of the
    input.  Past `limit` bytes, `TooLargeError`, before reading any when the
    Content-Length says so."""
    length = _content_length(req)
    if limit is not None and length is not None and length > limit:
        raise TooLargeError(f"Expected a form body of at most {limit} bytes, got:", length)
    if length is None or req.is_body_seekable:
        stream, length = req.body_file, None
    else:
        stream = req.body_file_raw
    seen = 0
    while length is None or seen < length:
        size = CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - seen)
        chunk = stream.read(size)
        if not chunk:
            return
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise TooLargeError(f"Expected a form body of at most {limit} bytes, got more")
        yield chunk


def _content_length(req: Request) -> int | None:
    value = req.environ.get("CONTENT_LENGTH", "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise Error("Expected a Content-Length of digits, got:", value[:64])
    return int(value)


class _Budget:
    """How many fields a form has, and how many bytes it holds in memory,
    checked against the limits as they grow."""

    def __init__(self) -> None:
        self.fields = self.files = self.size = 0

    def add_field(self) -> None:
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise TooLargeError(f"Expected a form of at most {MAX_FIELDS} fields, got more")

    def add_file(self) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise TooLargeError(f"Expected a form of at most {MAX_FILES} files, got more")

    def hold(self, size: int) -> None:
        self.size += size
        if self.size > MAX_FIELDS_SIZE:
            raise TooLargeError(f"Expected form fields of at most {MAX_FIELDS_SIZE} bytes "
                                "in all (files excepted), got more")


class _UrlencodedParser:
    """Callbacks for python-multipart's `QuerystringParser` that collect
    ``name=value`` pairs, percent-decoded as UTF-8."""

    def __init__(self, on_field: FieldCheck | None) -> None:
        self.on_field = on_field
        self.fields = MultiDict()
        self.budget = _Budget()
        self._name = bytearray()
        self._value = bytearray()
        self._parser = QuerystringParser({
            "on_field_start": self._field_start,
            "on_field_name": lambda data, start, end: self._name.extend(data[start:end]),
            "on_field_data": lambda data, start, end: self._value.extend(data[start:end]),
            "on_field_end": self._field_end,
        })

    def write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()

    def _field_start(self) -> None:
        self.budget.add_field()
        self._name.clear()
        self._value.clear()

    def _field_end(self) -> None:
        name, value = _unquote(self._name), _unquote(self._value)
        self.budget.hold(len(name) + len(value))
        name, value = _utf8(name, "name"), _utf8(value, "value")
        self.fields.add(name, value)
        if self.on_field is not None:
            self.on_field(name, value)


def _unquote(data: bytearray) -> bytes:
    return unquote_to_bytes(bytes(data).replace(b"+", b" "))


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        preview = quote(data[:64]) + ("..." if len(data) > 64 else "")
        raise Error(f"Expected a form field {what} in UTF-8, got:", preview) from None


class _MultipartParser:
    """Callbacks for python-multipart's `MultipartParser` that build fields
    and spool files."""

    def __init__(self, boundary: bytes, spool: Spool, on_field: FieldCheck | None) -> None:
        self.spool = spool
        self.on_field = on_field
        self.limit = spool.max_size()
        self.fields = MultiDict()
        self.uploads: list[Upload] = []
        self.budget = _Budget()
        self.complete = False
        self._headers: dict[bytes, bytes] = {}
        self._headers_size = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._name = ""
        self._upload: Upload | None = None
        self._crc = 0  # the CRC32C of the upload's data so far
        self._value = bytearray()
        callbacks = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        try:
            self._parser = MultipartParser(boundary, callbacks,  # type: ignore[arg-type]
                                           max_header_count=MAX_PART_HEADERS,
                                           max_header_size=MAX_PART_HEADERS_SIZE)
        except FormParserError as exc:  # a boundary over 256 bytes
            raise Error("Got a malformed multipart/form-data Content-Type:", str(exc)) from None

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            if str(exc).startswith("Maximum header"):  # python-multipart's own header limits
                raise _headers_too_large() from None
            raise Error("Got a malformed multipart/form-data body:", str(exc)) from None
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise InsufficientStorageError("No space left to store the upload") from exc
            raise

    def finish(self) -> None:
        if not self.complete:
            raise Error("Got a truncated multipart/form-data body")

    def _part_begin(self) -> None:
        self.budget.add_field()
        self._headers = {}
        self._headers_size = 0
        self._header_name.clear()
        self._header_value.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow_headers(end - start)
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._grow_headers(end - start)
        self._header_value += data[start:end]

    def _grow_headers(self, size: int) -> None:
        self._headers_size += size
        if self._headers_size > MAX_PART_HEADERS_SIZE:
            raise _headers_too_large()

    def _header_end(self) -> None:
        name = bytes(self._header_name).lower()
        if name in (b"content-disposition", b"content-type"):
            self._headers[name] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = _decode(options.get(b"name", b""))
        self._value = bytearray()
        self._upload = None
        self.budget.hold(len(self._name))
        if b"filename" in options:
            self.budget.add_file()
            filename = _decode(options[b"filename"])
            content_type = _decode(self._headers.get(b"content-type", b"application/octet-stream"))
            self.budget.hold(len(filename) + len(content_type))
            file, path = self.spool.open()
            self._upload = Upload(filename, content_type, file, path)
            self._crc = 0
            self.uploads.append(self._upload)
            if self.on_field is not None:
                self.on_field(self._name, self._upload)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self._upload
        if upload is None:
            self.budget.hold(end - start)
            self._value += data[start:end]
            return
        upload.size += end - start
        if self.limit is not None and upload.size > self.limit:
            raise TooLargeError(f"Expected a file of at most {self.limit} bytes, got more in field:",
                                self._name)
        part = data if start == 0 and end == len(data) else data[start:end]
        self._crc = crc32c.crc32c(part, self._crc)
        upload.file.write(part)

    def _part_end(self) -> None:
        if self._upload is not None:
            self._upload.crc32c = base64.b64encode(self._crc.to_bytes(4, "big")).decode()
            self._upload.file.flush()
            self._upload.file.seek(0)
            self.fields.add(self._name, self._upload)
        else:
            value = _decode(bytes(self._value))
            self.fields.add(self._name, value)
            if self.on_field is not None:
                self.on_field(self._name, value)

    def _end(self) -> None:
        self.complete = True


def _headers_too_large() -> TooLargeError:
    return TooLargeError(f"Expected multipart part headers of at most {MAX_PART_HEADERS} "
                         f"lines and {MAX_PART_HEADERS_SIZE} bytes, got more")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
