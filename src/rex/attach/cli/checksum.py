"""The CRC32C of attachments as the commands read them (see
`rex.attach.checksum` for what the stores record)."""

from __future__ import annotations

from typing import BinaryIO

from rex.core import Error, NotFoundError

from ..checksum import CHUNK_SIZE, compute, encode, extend, mismatch
from ..storage import Storage


class Checksummed:
    """A reader that computes the CRC32C of what is read through it.

    The checksum is of the first pass from the start to the end; with
    `expected`, the end of that pass fails (`DamagedError`) unless the two
    agree, so that what is written from it is refused before it is
    complete.  It can seek (a writer may read it twice, hashing first) only
    if `seekable`: a stream of a remote store is better read once.
    """

    def __init__(self, stream: BinaryIO, expected: str | None = None, handle: str = "",
                 seekable: bool = False) -> None:
        self.stream = stream
        self.expected = expected
        self.handle = handle
        self._seekable = seekable
        self.crc = 0
        self.position = 0
        self.done = False  # the first pass reached the end
        self.whole = True  # and read everything in order

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if not self.done:
            if data:
                self.crc = extend(self.crc, data)
            else:
                self.done = True
                if self.whole and self.expected is not None and self.crc32c != self.expected:
                    raise mismatch(self.handle, self.expected, encode(self.crc))
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
        return encode(self.crc) if self.done and self.whole else None


def read_crc32c(storage: Storage, handle: str) -> tuple[str, int]:
    """The CRC32C and size of an attachment, read in full.

    A storage checks what is read in full against its record, and fails at
    the end if they differ (`DamagedError`); then the content is read again
    as two parts (its first byte, then the rest from a second stream), which
    it does not check, so that the checksum of what is stored can be told.
    """
    try:
        with storage.open(handle) as stream:
            return compute(stream)
    except NotFoundError:
        raise
    except Error as error:
        try:
            return _read_in_parts(storage, handle)
        except Error:
            raise error from None


def _read_in_parts(storage: Storage, handle: str) -> tuple[str, int]:
    with storage.open(handle) as stream:
        first = stream.read(1)
    crc, size = extend(0, first), len(first)
    with storage.open(handle) as stream:
        stream.seek(size)
        while chunk := stream.read(CHUNK_SIZE):
            crc = extend(crc, chunk)
            size += len(chunk)
    return encode(crc), size
