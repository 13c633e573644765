"""An attachment as an HTTP response, with the semantics of a static file.

WebOb's conditional responses do the careful HTTP work (single byte ranges
with 206/416, ``If-None-Match``/``If-Modified-Since`` with 304, ``If-Range``,
``HEAD``); this module supplies the headers and a body that streams from any
backend.  It reads the ``Range`` header itself, strictly, and hands WebOb
only one byte range it acts on correctly: several ranges or an invalid
header are ignored (200 with the whole file, as RFC 9110 allows), never a
206 of only the first.

The recorded CRC32C goes out as ``Repr-Digest`` (RFC 9530 registers
``crc32c``, as "deprecated": fit against corruption, not against an
adversary), and the storage's file checks the body as it is read.  A whole
file sent from a real file goes to the server's ``wsgi.file_wrapper``, which
``rex serve`` sends with ``sendfile`` as the file checks it (see
`rex.web.worker.Checked`); other bodies are read through Python.  The first
chunk of a body read through Python is read before the status is sent, so
that a read that fails at once (a small attachment found damaged, an object
gone) is answered as the error it is; a failure after that propagates from
the body, and the server cuts the response off.
"""

from __future__ import annotations

import mimetypes
import os
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any, BinaryIO
from urllib.parse import quote

from webob import Request, Response

from .checksum import SEGMENT, is_crc32c

BLOCK_SIZE = 1 << 20
RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)  # one range (RFC 9110 14.1.1)
HUGE = 10**18  # any position of more digits is past the end of any file


def content_type(name: str) -> str:
    """The media type for a file name; text gets a UTF-8 charset."""
    mime = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    return mime + "; charset=UTF-8" if mime.startswith("text/") else mime


def content_disposition(name: str) -> str:
    """``attachment; filename=NAME``, with an RFC 5987 ``filename*`` when the
    name is not ASCII (and an ASCII approximation as ``filename``, with the
    stem ``download`` where none of the name's stem is left: never empty,
    never a hidden ``.ext``)."""
    if name.isascii():
        return f"attachment; filename={name}"
    stem, ext = os.path.splitext(name)
    stem = _ascii(stem).lstrip(".")
    if not any(c.isalnum() for c in stem):
        stem = "download"
    ext = _ascii(ext)
    fallback = stem + (ext if len(ext) > 1 else "")
    return f"attachment; filename={fallback}; filename*=UTF-8''{quote(name, safe='')}"


def _ascii(text: str) -> str:
    """An ASCII approximation of a file name: accents dropped, ``_`` for
    anything but letters, digits, ``.``, ``_`` and ``-``."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def byte_range(header: str, size: int) -> str | None:
    """The ``Range`` header WebOb is to act on for a file of `size` bytes:
    one byte range, clamped to the file, or ``bytes=SIZE-`` when the request
    asks for nothing of it (``bytes=-0``), which WebOb answers 416; None to
    ignore the header (several ranges, last before first, anything invalid).
    """
    match = RANGE.fullmatch(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = (_position(group) for group in match.groups())
    if first is None:  # a suffix: the last `last` bytes, all of a shorter file
        return f"bytes=-{min(last, size)}" if last and size else f"bytes={size}-"
    if last is None:
        return f"bytes={first}-"
    return f"bytes={first}-{last}" if first <= last else None


def _position(digits: str) -> int | None:
    """A position of a range, None if absent; `int()` is not given thousands
    of digits, which it refuses."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else HUGE


class AttachmentApp:
    """Serves one attachment.

    Called with a WebOb request it returns a `webob.Response`; called as a
    WSGI application ``(environ, start_response)`` it answers the request.
    `crc32c` is the attachment's recorded checksum, which `open()` checks
    when the file is read to its end (as `Storage.open()` does).
    """

    def __init__(self, name: str, size: int, mtime: float, etag: str,
                 open: Callable[[], BinaryIO], *, sendfile: bool = False,
                 crc32c: str | None = None) -> None:
        self.name = name
        self.size = size
        self.mtime = mtime
        self.etag = etag
        self.open = open
        self.sendfile = sendfile  # `open()` gives an OS file, fit for ``sendfile``
        self.crc32c = crc32c

    def response(self, req: Request) -> Response:
        headers = [
            ("Content-Type", content_type(self.name)),
            ("Last-Modified", formatdate(self.mtime, usegmt=True)),
            ("ETag", self.etag),
            ("Cache-Control", "private, no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if is_crc32c(self.crc32c):
            headers.append(("Repr-Digest", f"crc32c=:{self.crc32c}:"))
        headers += [
            ("Content-Length", str(self.size)),
            ("Content-Disposition", content_disposition(self.name)),
            ("Accept-Ranges", "bytes"),
        ]
        body: Iterable[bytes] = Body(self.open, self.size)
        wrapper = req.environ.get("wsgi.file_wrapper")
        ranged = byte_range(req.environ.get("HTTP_RANGE", ""), self.size) is not None
        # A checked file goes to the server's ``sendfile`` only if it is
        # longer than the piece checked before any goes out: a shorter one
        # would be found damaged after the status, not before.
        if (self.sendfile and wrapper is not None and req.method == "GET" and not ranged
                and (self.crc32c is None or self.size > SEGMENT)):
            body = wrapper(self.open(), BLOCK_SIZE)
            return _RangeResponse(headerlist=headers, app_iter=body, conditional_response=True)
        return _StreamedResponse(headerlist=headers, app_iter=body, conditional_response=True)

    def __call__(self, *args: Any) -> Any:
        if len(args) == 1:
            return self.response(args[0])
        environ, start_response = args
        return self.response(Request(environ))(environ, start_response)

    def __repr__(self) -> str:
        return f"<AttachmentApp {self.name!r} {self.size} bytes>"


class _RangeResponse(Response):
    """A conditional response that gives WebOb's range handling only what
    `byte_range()` makes of the request's ``Range``: WebOb reads the first
    of several ranges as if it were all that was asked, ``bytes=-0`` as the
    whole file, and fails on a position of thousands of digits."""

    def conditional_response_app(self, environ: dict, start_response: Callable) -> Any:
        if "HTTP_RANGE" in environ:
            environ = dict(environ)
            header = byte_range(environ.pop("HTTP_RANGE"), self.content_length or 0)
            if header is not None:
                environ["HTTP_RANGE"] = header
        return super().conditional_response_app(environ, start_response)


class _StreamedResponse(_RangeResponse):
    """A response that reads the first chunk of its body before it starts:
    if that read fails, the error propagates from the call, nothing sent."""

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        started: list[tuple] = []
        app_iter = super().__call__(environ, lambda *args: started.append(args))
        chunks = _Chained(app_iter)
        try:
            chunks.first = list(itertools.islice(chunks.iterator, 1))
        except BaseException:
            chunks.close()
            raise
        start_response(*started[0])
        return chunks


class _Chained:
    """The chunks of an iterable, its first one read ahead; closing it
    closes both the iterator and the iterable."""

    def __init__(self, source: Iterable[bytes]) -> None:
        self.source = source
        self.iterator = iter(source)
        self.first: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        return itertools.chain(self.first, self.iterator)

    def close(self) -> None:
        for part in (self.iterator, self.source):
            close = getattr(part, "close", None)
            if close is not None:
                close()


class Body:
    """A lazily opened attachment body that can also serve a byte range.
    Closing it closes `open` if that has a ``close()`` (a file it holds)."""

    def __init__(self, open: Callable[[], BinaryIO], size: int) -> None:
        self.open = open
        self.size = size

    def close(self) -> None:
        close = getattr(self.open, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> Iterator[bytes]:
        return self.app_iter_range(0, self.size)

    def app_iter_range(self, start: int, stop: int | None) -> Iterator[bytes]:
        stop = self.size if stop is None else min(stop, self.size)
        with self.open() as file:
            if start:
                file.seek(start)
            remaining = stop - start
            while remaining > 0:
                chunk = file.read(min(BLOCK_SIZE, remaining))
                if not chunk:
                    raise OSError(f"attachment ended {remaining} bytes early")
                remaining -= len(chunk)
                yield chunk
