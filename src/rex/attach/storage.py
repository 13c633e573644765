"""The storage interface that every backend implements."""

from __future__ import annotations

import base64
import io
import json
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple, Union

from webob import Response

from rex.core import Error, NotFoundError, TooLargeError

from .handle import check_handle, handle_name, new_handle
from .response import AttachmentApp

Content = Union[str, bytes, BinaryIO]
CHUNK_SIZE = 1 << 20


class Stat(NamedTuple):
    """What `Storage.stat()` tells of an attachment (as `os.stat_result` does)."""

    st_size: int
    st_mtime: float
    etag: str  # a strong HTTP entity tag, quotes included
    crc32c: str | None = None  # recorded at write time; None if written before checksums


@dataclass(frozen=True)
class PresignedLink:
    """A request that a client may send straight to the store: its method,
    URL, form fields (a ``POST`` form, the file last) and headers (sent as
    they are, the file as the body).  As a WSGI application it answers with
    its JSON, for a page's script."""

    url: str
    fields: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, environ: dict, start_response: object) -> object:
        body = json.dumps({"method": self.method, "url": self.url, "fields": self.fields,
                           "headers": self.headers})
        response = Response(body, content_type="application/json", charset="utf-8")
        response.cache_control = "no-store"
        return response(environ, start_response)


class Storage(ABC):
    """Attachments by handle: add, open, stat, remove, iterate, serve.

    Backends implement the abstract methods and check every handle they get
    with `check_handle()` before using it.  `max_size` bounds what direct
    upload links accept; `link_expiry` is how long links are valid (seconds).
    """

    # Does `open()` give an OS file, or one that checks its CRC32C as
    # `checksum.VerifiedReader.sendfile_segments()` gives it out, which a
    # server can ``sendfile``?
    sendfile = False

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
    def write(self, handle: str, file: BinaryIO) -> str | None:
        """Stores a file at a reserved handle, all or nothing, with its CRC32C;
        returns the CRC32C that the store holds for it, if the write tells
        (else None: `stat()` does)."""

    @abstractmethod
    def open(self, handle: str) -> BinaryIO:
        """The attachment as a readable, seekable binary file, which raises
        `DamagedError` when read to its end if it does not match its CRC32C."""

    @abstractmethod
    def stat(self, handle: str) -> Stat:
        """Size, modification time, entity tag and CRC32C of the attachment."""

    @abstractmethod
    def record_crc32c(self, handle: str) -> str:
        """The attachment's CRC32C; one written before checksums were
        recorded is read in full and its CRC32C recorded now."""

    @abstractmethod
    def remove(self, handle: str) -> None:
        """Removes the attachment, all or nothing."""

    def _delete(self, handle: str) -> None:
        """Deletes what is at `handle` for good, leaving no tombstone: only
        for what is never an attachment (the probe of ``rex attach check``),
        never for `remove()`."""
        raise Error("Cannot delete for good from:", repr(self))

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
                             sendfile=self.sendfile, crc32c=stat.crc32c)

    def upload_link(self, handle: str, size: int, md5: str | None = None) -> PresignedLink:
        """A ``PUT`` of exactly `size` bytes (at most `max_size`) that stores
        them straight into the store at a reserved handle, until the link
        expires; with `md5` (the base64 MD5 of the content, as in
        ``Content-MD5``) the store also refuses other content.

        The link writes at most once: the store refuses it once the handle
        holds an attachment, or held one that was removed; so this refuses a
        handle that is taken.
        """
        check_handle(handle)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise Error("Expected the size of the upload in bytes, got:", repr(size))
        if self.max_size is not None and size > self.max_size:
            raise TooLargeError(f"An attachment may have at most {self.max_size} bytes, got:",
                                size)
        if md5 is not None and not _is_md5(md5):
            raise Error("Expected a base64 MD5 digest (Content-MD5), got:", repr(md5))
        self._check_free(handle)
        return self._upload_link(handle, size, md5)

    @abstractmethod
    def _check_free(self, handle: str) -> None:
        """Raises `ExistsError` if the handle holds an attachment or held one."""

    @abstractmethod
    def _upload_link(self, handle: str, size: int, md5: str | None) -> PresignedLink:
        """The link of `upload_link()`, its arguments checked."""

    @abstractmethod
    def download_link(self, handle: str) -> PresignedLink:
        """A URL that downloads the attachment straight from the store, with
        the same ``Content-Disposition`` as `route()`, until it expires."""

    def spool(self) -> tuple[BinaryIO, str | None]:
        """A temporary file for an upload in progress, and its path if it has
        one; a backend that can take the file over without copying says so."""
        return tempfile.TemporaryFile(), None

    def __contains__(self, handle: object) -> bool:
        """Is an attachment stored at this handle?  False only when it is not
        there: an ill-formed handle or a store that fails raises."""
        try:
            self.stat(handle)  # type: ignore[arg-type]
        except NotFoundError:
            return False
        return True


def _is_md5(value: object) -> bool:
    try:
        return isinstance(value, str) and len(base64.b64decode(value, validate=True)) == 16
    except ValueError:
        return False


def as_file(content: Content) -> BinaryIO:
    """Content as a readable binary file."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return io.BytesIO(content)
    if hasattr(content, "read"):
        return content
    raise Error("Expected a string, bytes or a binary file").wrap("Got:", repr(content))
