"""CRC32C as the stores keep it (base64 of the 4 big-endian bytes, as GCS
shows it), computed here while an attachment is read."""

from __future__ import annotations

import base64
from typing import Any, BinaryIO

import google_crc32c

from rex.core import Error, NotFoundError

from ..storage import CHUNK_SIZE, Stat, Storage


def recorded(stat: Stat) -> str | None:
    """The checksum that the store recorded for an attachment, if any."""
    return getattr(stat, "crc32c", None)


def encode(checksum: Any) -> str:
    return base64.b64encode(checksum.digest()).decode()


class Checksummed:
    """A reader that computes the CRC32C of what is read through it.

    The checksum is of the first pass from the start to the end; with
    `expected`, the end of that pass fails unless the two agree, so that
    what is written from it is refused before it is complete.  It can seek
    (a writer may read it twice, hashing first) only if `seekable`: a
    stream of a remote store is better read once.
    """

    def __init__(self, stream: BinaryIO, expected: str | None = None, handle: str = "",
                 seekable: bool = False) -> None:
        self.stream = stream
        self.expected = expected
        self.handle = handle
        self._seekable = seekable
        self.checksum = google_crc32c.Checksum()
        self.position = 0
        self.done = False  # the first pass reached the end
        self.whole = True  # and read everything in order

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if not self.done:
            if data:
                self.checksum.update(data)
            else:
                self.done = True
                if self.whole and self.expected is not None and self.crc32c != self.expected:
                    raise DamagedError(self.handle, self.expected, self.crc32c)
        self.position += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._seekable:
            raise OSError("not seekable")
        position = self.stream.seek(offset, whence)
        if position != self.position and not self.done:
            self.whole = False
        self.position = position
        return position

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        self.stream.close()

    @property
    def crc32c(self) -> str | None:
        """The checksum of the first pass, if it read everything in order."""
        return encode(self.checksum) if self.done and self.whole else None


class DamagedError(Error):
    """An attachment whose content does not match its recorded checksum."""

    def __init__(self, handle: str, expected: str, found: str) -> None:
        super().__init__("Attachment is damaged: its content does not match its checksum:",
                         handle)
        self.wrap("Recorded CRC32C:", expected).wrap("Read:", found)
        self.expected = expected
        self.found = found


def read_crc32c(storage: Storage, handle: str) -> tuple[str, int]:
    """The CRC32C and size of an attachment, read in full.

    A storage may itself check what is read in full against its record, and
    fail at the end; then the content is read again as two parts (its first
    byte, then the rest from a second stream), which no storage checks, so
    that the checksum of what is actually stored can still be told.
    """
    try:
        with storage.open(handle) as stream:
            return _read(stream)
    except NotFoundError:
        raise
    except Error as error:
        try:
            return _read_in_parts(storage, handle)
        except Error:
            raise error from None


def _read(stream: BinaryIO, checksum: Any = None, size: int = 0) -> tuple[str, int]:
    checksum = checksum or google_crc32c.Checksum()
    while chunk := stream.read(CHUNK_SIZE):
        checksum.update(chunk)
        size += len(chunk)
    return encode(checksum), size


def _read_in_parts(storage: Storage, handle: str) -> tuple[str, int]:
    checksum = google_crc32c.Checksum()
    with storage.open(handle) as stream:
        first = stream.read(1)
    checksum.update(first)
    with storage.open(handle) as stream:
        stream.seek(len(first))
        return _read(stream, checksum, len(first))
