"""The storage interface that every backend implements."""

from __future__ import annotations

import io
import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple, Union

from webob import Response

from rex.core import Error

from .handle import handle_name, new_handle
from .response import AttachmentApp

Content = Union[str, bytes, BinaryIO]
CHUNK_SIZE = 1 << 20


class Stat(NamedTuple):
    """What `Storage.stat()` tells of an attachment (as `os.stat_result` does)."""

    st_size: int
    st_mtime: float
    etag: str  # a strong HTTP entity tag, quotes included


@dataclass(frozen=True)
class PresignedLink:
    """A URL (and, for uploads, form fields) that lets a client talk to the
    store directly.  As a WSGI application it answers with its JSON."""

    url: str
    fields: dict[str, str] = field(default_factory=dict)

    def __call__(self, environ: dict, start_response: object) -> object:
        body = json.dumps({"url": self.url, "fields": self.fields})
        response = Response(body, content_type="application/json", charset="utf-8")
        response.cache_control = "no-store"
        return response(environ, start_response)


class Storage(ABC):
    """Attachments by handle: add, open, stat, remove, iterate, serve.

    Backends implement the abstract methods and check every handle they get
    with `check_handle()` before using it.  `max_size` bounds what direct
    upload links accept; `link_expiry` is how long links are valid (seconds).
    """

    sendfile = False  # does `open()` give an OS file, which a server can ``sendfile``?

    def __init__(self, *, max_size: int | None = None, link_expiry: int = 3600) -> None:
        self.max_size = max_size
        self.link_expiry = link_expiry

    def reserve(self, name: str) -> str:
        """A new handle for a file of this name; nothing is stored yet."""
        return new_handle(name)

    def add(self, name: str, content: Content) -> str:
        """Stores content (`str`, `bytes` or a readable binary file, read in
        chunks) as an attachment and returns its handle."""
        handle = self.reserve(name)
        self.write(handle, as_file(content))
        return handle

    @abstractmethod
    def write(self, handle: str, file: BinaryIO) -> None:
        """Stores a file at a reserved handle, all or nothing."""

    @abstractmethod
    def open(self, handle: str) -> BinaryIO:
        """The attachment as a readable, seekable binary file."""

    @abstractmethod
    def stat(self, handle: str) -> Stat:
        """Size, modification time and entity tag of the attachment."""

    @abstractmethod
    def remove(self, handle: str) -> None:
        """Removes the attachment, all or nothing."""

    @abstractmethod
    def __iter__(self) -> Iterator[str]:
        """The handles of all attachments, sorted."""

    @abstractmethod
    def verify(self) -> None:
        """Raises `Error` unless the storage is usable."""

    def route(self, handle: str) -> AttachmentApp:
        """The attachment as an HTTP response (see `AttachmentApp`)."""
        return self._route(handle, self.stat(handle), lambda: self.open(handle))

    def _route(self, handle: str, stat: Stat, open: Callable[[], BinaryIO]) -> AttachmentApp:
        return AttachmentApp(handle_name(handle), stat.st_size, stat.st_mtime, stat.etag, open,
                             sendfile=self.sendfile)

    @abstractmethod
    def upload_link(self, handle: str) -> PresignedLink:
        """A form POST (multipart, the file in a field named ``file`` after
        the link's fields) that uploads straight into the store at a reserved
        handle, within `max_size`, until the link expires."""

    @abstractmethod
    def download_link(self, handle: str) -> PresignedLink:
        """A URL that downloads the attachment straight from the store, with
        the same ``Content-Disposition`` as `route()`, until it expires."""

    def spool(self) -> tuple[BinaryIO, str | None]:
        """A temporary file for an upload in progress, and its path if it has
        one; a backend that can take the file over without copying says so."""
        return tempfile.TemporaryFile(), None

    def __contains__(self, handle: object) -> bool:
        try:
            self.stat(handle)  # type: ignore[arg-type]
        except Error:
            return False
        return True


def as_file(content: Content) -> BinaryIO:
    """Content as a readable binary file."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return io.BytesIO(content)
    if hasattr(content, "read"):
        return content
    raise Error("Expected a string, bytes or a binary file").wrap("Got:", repr(content))
