"""What the object-store backends (S3 and GCS) share: one protocol over a
store of named objects reached by HTTP.

A backend supplies a few primitives (`_connect`, `_find`, `_put`, `_read`,
`_bury`, `_list`); this class makes them an attachment storage:

- a write is create-only: the store itself refuses a key that exists (S3
  ``If-None-Match: *``, GCS ``ifGenerationMatch=0``); when a retried request
  meets our own earlier write, its CRC32C and size say so and the write
  stands.  Only a large write (or one to a store that cannot refuse, or
  cannot tell a refused retry) looks first whether the key is free, to
  spare sending what would be refused: a small one is sent at once, and a
  refusal costs no more than that look;
- a write answers with the CRC32C the store holds for what it stored (which
  the store computed, or recorded with the write), so that a copy is
  verified without asking again;
- every object has its CRC32C (GCS keeps one natively, S3 in the metadata),
  which a read from start to end checks;
- a removed attachment leaves a *tombstone* at its key, a small object marked
  ``removed`` in its metadata, so that a create-only write, and an upload
  link that is replayed, cannot fill the handle again;
- one lookup (`Obj`) gives both the headers and the body of a response,
  whose reads are pinned to that version: an object removed while it is read
  fails the read, never mixes two versions;
- the client is made on first use in each process (its pooled connections
  must not cross a fork) and shared by the process's threads;
- what the library raises on a failing or unreachable store becomes
  `UnavailableError`; "not found" is only ever an object that is not there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, NamedTuple

from rex.core import Error, ExistsError, NotFoundError, UnavailableError
from rex.web import Upload

from . import checksum
from .handle import check_handle, is_handle
from .response import AttachmentApp
from .storage import Stat, Storage
from .stream import Readable, open_ranges

# What a removed attachment's key holds from then on.
TOMBSTONE = b"rex.attach: this attachment was removed; its handle is not used again.\n"
REMOVED = "removed"  # the metadata key that marks a tombstone
CRC32C = "crc32c"  # the metadata key of the content's CRC32C, where the store keeps none
# Connections that a client keeps open to the store, for the threads that
# share it: at least as many as ``rex attach`` runs jobs.
CONNECTIONS = 64


@dataclass(frozen=True)
class Obj:
    """One lookup of an object: what serving it needs, and the version that
    reads of it are pinned to."""

    size: int
    mtime: float
    etag: str  # a strong HTTP entity tag, quotes included
    version: str  # S3: the ETag; GCS: the generation
    removed: bool  # a tombstone
    crc32c: str | None  # base64; None for an S3 object written before checksums

    def stat(self) -> Stat:
        return Stat(self.size, self.mtime, self.etag, self.crc32c)


class Digest(NamedTuple):
    """The content's CRC32C and size, known before it is sent (S3 keeps the
    CRC32C in the metadata; GCS checks it)."""

    crc32c: str  # base64 of the big-endian CRC32C, as GCS has it
    size: int


class Taken(Exception):
    """A create-only write found its key taken (HTTP 412 from the store);
    `retried` if a retry of the request was refused, which may have met
    what its first attempt stored."""

    def __init__(self, retried: bool = False) -> None:
        super().__init__()
        self.retried = retried


class ObjectStorage(Storage):
    """Attachments as objects of a bucket; see the module's docstring."""

    service: ClassVar[str]  # names the store in messages: "S3", "GCS"
    failures: ClassVar[tuple[type[BaseException], ...]] = ()  # what an outage raises

    def __init__(self, *, max_size: int | None = None, link_expiry: int = 3600) -> None:
        super().__init__(max_size=max_size, link_expiry=link_expiry)
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid = 0

    @property
    def client(self) -> Any:
        """The library's client, made on first use in each process."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._connect()
                self._pid = os.getpid()
            return self._client

    # The primitives of a backend.

    @abstractmethod
    def _connect(self) -> Any:
        """A new client of the store."""

    @abstractmethod
    def _find(self, key: str) -> Obj | None:
        """The object at `key`, tombstones included, or None."""

    @abstractmethod
    def _put(self, key: str, source: BinaryIO, digest: Digest) -> str:
        """Stores `source` (seekable, at its start) at `key` with its CRC32C,
        only if nothing is there (else `Taken`); returns the CRC32C that the
        store holds for it."""

    @abstractmethod
    def _looks_first(self, size: int) -> bool:
        """Must a write of `size` bytes look whether its key is free before
        it sends them?  (If not, `_put` must tell a refused retry.)"""

    @abstractmethod
    def _read(self, key: str, obj: Obj, start: int) -> Readable | None:
        """A stream of the version `obj` from byte `start` to its end, or
        None if that version is gone."""

    @abstractmethod
    def _record(self, key: str, obj: Obj, crc32c: str) -> None:
        """Records the CRC32C of the version `obj`, which has none, only if
        that version is still there (else `Taken`)."""

    @abstractmethod
    def _bury(self, key: str, obj: Obj) -> None:
        """Replaces the version `obj` at `key` by a tombstone, only if it is
        still there (else `Taken`)."""

    @abstractmethod
    def _drop(self, key: str) -> None:
        """Deletes every trace of `key` (nothing if none)."""

    @abstractmethod
    def _list(self) -> Iterator[tuple[str, bool]]:
        """Every key in sorted order, and whether it may be a tombstone."""

    @abstractmethod
    def _where(self) -> str:
        """The bucket and endpoint, for messages."""

    # The storage interface, on the primitives.

    @contextlib.contextmanager
    def _outage(self) -> Iterator[None]:
        """Turns the library's failures into `UnavailableError`."""
        try:
            yield
        except Error:
            raise
        except self.failures as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UnavailableError(f"{self.service} storage is unavailable or failing:",
                                   self._where()).wrap("Because:", reason) from exc

    def _key(self, handle: str) -> str:
        return check_handle(handle)[1:]

    def _delete(self, handle: str) -> None:
        with self._outage():
            self._drop(self._key(handle))

    def _lookup(self, handle: str) -> Obj:
        with self._outage():
            obj = self._find(self._key(handle))
        if obj is None or obj.removed:
            raise NotFoundError("Attachment does not exist:", handle)
        return obj

    def _check_free(self, handle: str) -> None:
        with self._outage():
            obj = self._find(self._key(handle))
        if obj is not None:
            raise _taken(handle, obj)

    def write(self, handle: str, file: BinaryIO) -> str:
        """Stores the content create-only (see the module's docstring) and
        returns the CRC32C that the store holds for it."""
        key = self._key(handle)
        with _prepared(file) as (source, digest):
            looked = self._looks_first(digest.size)
            if looked:
                self._check_free(handle)
            with self._outage():
                try:
                    return self._put(key, source, digest)
                except Taken as taken:
                    # Taken since the look, or by the first attempt of a retry:
                    # maybe ours, as its CRC32C and size tell.
                    obj = self._find(key)
                    if (not (looked or taken.retried) or obj is None or obj.removed
                            or obj.crc32c != digest.crc32c or obj.size != digest.size):
                        raise _taken(handle, obj) from None
                    return obj.crc32c

    def open(self, handle: str) -> BinaryIO:
        """Reads the version found now through ranged requests."""
        return self._reader(handle, self._lookup(handle))

    def _reader(self, handle: str, obj: Obj) -> BinaryIO:
        key = self._key(handle)

        def fetch(start: int) -> Readable:
            with self._outage():
                stream = self._read(key, obj, start)
            if stream is None:
                raise NotFoundError("Attachment was removed or replaced while it was read:", handle)
            return _Guarded(stream, self._outage)

        return checksum.verified(open_ranges(obj.size, fetch), obj.size, obj.crc32c, handle)

    def stat(self, handle: str) -> Stat:
        return self._lookup(handle).stat()

    def record_crc32c(self, handle: str) -> str:
        """Reads the version found now and records its CRC32C on it, unless
        another version has taken its place since."""
        obj = self._lookup(handle)
        if obj.crc32c is not None:
            return obj.crc32c
        with self._reader(handle, obj) as file:
            crc32c, _ = checksum.compute(file)
        with self._outage():
            try:
                self._record(self._key(handle), obj, crc32c)
            except Taken:
                raise NotFoundError("Attachment was removed or replaced while it was read:",
                                    handle) from None
        return crc32c

    def route(self, handle: str) -> AttachmentApp:
        """One lookup for the headers and the body: both are of one version."""
        obj = self._lookup(handle)
        return self._route(handle, obj.stat(), lambda: self._reader(handle, obj))

    def remove(self, handle: str) -> None:
        """Replaces the version found now by a tombstone; a retry that meets
        the tombstone of its own first attempt stands."""
        key, obj = self._key(handle), self._lookup(handle)
        with self._outage():
            try:
                self._bury(key, obj)
            except Taken:
                now = self._find(key)
                if now is not None and not now.removed:
                    raise NotFoundError("Attachment was replaced while it was removed:",
                                        handle) from None

    def __iter__(self) -> Iterator[str]:
        with self._outage():
            for key, maybe_removed in self._list():
                if not is_handle("/" + key):
                    continue
                if maybe_removed:
                    obj = self._find(key)
                    if obj is None or obj.removed:
                        continue
                yield "/" + key


def _taken(handle: str, obj: Obj | None) -> ExistsError:
    if obj is not None and obj.removed:
        return ExistsError("Attachment was removed; its handle cannot be used again:", handle)
    return ExistsError("Attachment already exists:", handle)


class _Guarded:
    """A stream whose failures are the storage's outage."""

    def __init__(self, stream: Readable, outage: Callable[[], contextlib.AbstractContextManager]
                 ) -> None:
        self.stream = stream
        self.outage = outage

    def read(self, size: int = -1) -> bytes:
        with self.outage():
            return self.stream.read(size)

    def close(self) -> None:
        self.stream.close()


@contextlib.contextmanager
def _prepared(file: BinaryIO) -> Iterator[tuple[BinaryIO, Digest]]:
    """The content as a seekable file at its start, and its digest: that of
    a form's upload, computed while it was received; else one pass over a
    seekable file (read again from the page cache when sent), or a copy into
    a temporary file of one that is not."""
    source = _seekable(file)
    if source is not None:
        start = source.tell()
        if isinstance(file, Upload) and file.crc32c is not None and start == 0:
            yield source, Digest(file.crc32c, file.size)
            return
        digest = Digest(*checksum.compute(source))
        source.seek(start)
        yield source, digest
        return
    with tempfile.TemporaryFile() as spool:
        digest = Digest(*checksum.compute(file, copy=spool))
        spool.seek(0)
        yield spool, digest  # type: ignore[misc]


def _seekable(file: Any) -> BinaryIO | None:
    """The file if it can seek, or the seekable file it reads from (a form's
    spooled upload), else None."""
    for candidate in (file, getattr(file, "file", None)):
        try:
            if candidate is not None and candidate.seekable():
                return candidate  # type: ignore[no-any-return]
        except (AttributeError, OSError, ValueError):
            pass
    return None

