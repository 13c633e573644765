"""An attachment as an HTTP response, with the semantics of a static file.

WebOb's conditional responses do the careful HTTP work (single byte ranges
with 206/416, ``If-None-Match``/``If-Modified-Since`` with 304, ``If-Range``,
``HEAD``); this module supplies the headers and a body that streams from any
backend, and hands a real file to the server's ``wsgi.file_wrapper``
(``sendfile``) when the whole file is sent.
"""

from __future__ import annotations

import mimetypes
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import Any, BinaryIO
from urllib.parse import quote

from webob import Request, Response

BLOCK_SIZE = 1 << 20


def content_type(name: str) -> str:
    """The media type for a file name; text gets a UTF-8 charset."""
    mime = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    return mime + "; charset=UTF-8" if mime.startswith("text/") else mime


def content_disposition(name: str) -> str:
    """``attachment; filename=NAME``, with an RFC 5987 ``filename*`` when the
    name is not ASCII (and an ASCII approximation as ``filename``)."""
    if name.isascii():
        return f"attachment; filename={name}"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = "".join(c if c.isalnum() or c in "._-" else "_" for c in fallback) or "_"
    return f"attachment; filename={fallback}; filename*=UTF-8''{quote(name, safe='')}"


class AttachmentApp:
    """Serves one attachment.

    Called with a WebOb request it returns a `webob.Response`; called as a
    WSGI application ``(environ, start_response)`` it answers the request.
    """

    def __init__(self, name: str, size: int, mtime: float, etag: str,
                 open: Callable[[], BinaryIO], *, sendfile: bool = False) -> None:
        self.name = name
        self.size = size
        self.mtime = mtime
        self.etag = etag
        self.open = open
        self.sendfile = sendfile  # `open()` gives an OS file, fit for ``sendfile``

    def response(self, req: Request) -> Response:
        headers = [
            ("Content-Type", content_type(self.name)),
            ("Last-Modified", formatdate(self.mtime, usegmt=True)),
            ("ETag", self.etag),
            ("Cache-Control", "private, no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Length", str(self.size)),
            ("Content-Disposition", content_disposition(self.name)),
            ("Accept-Ranges", "bytes"),
        ]
        body: Iterable[bytes] = Body(self.open, self.size)
        wrapper = req.environ.get("wsgi.file_wrapper")
        if self.sendfile and wrapper is not None and req.method == "GET" and req.range is None:
            body = wrapper(self.open(), BLOCK_SIZE)
        return Response(headerlist=headers, app_iter=body, conditional_response=True)

    def __call__(self, *args: Any) -> Any:
        if len(args) == 1:
            return self.response(args[0])
        environ, start_response = args
        return self.response(Request(environ))(environ, start_response)

    def __repr__(self) -> str:
        return f"<AttachmentApp {self.name!r} {self.size} bytes>"


class Body:
    """A lazily opened attachment body that can also serve a byte range."""

    def __init__(self, open: Callable[[], BinaryIO], size: int) -> None:
        self.open = open
        self.size = size

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
