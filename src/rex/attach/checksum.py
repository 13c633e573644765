"""The CRC32C of attachments: computed as they are written, checked at the
end of every full read.

Every backend records the CRC32C of an attachment's content when it stores
it (GCS natively, S3 in the object's metadata, the local backend in an
extended attribute of the file), written as GCS shows it: the base64 of its
four bytes, big-endian.  CRC32C rather than SHA-256 because it catches what
a store does to data (flipped bits, torn or truncated writes) at a fraction
of the cost: a GiB takes ~53 ms with the `crc32c` package (SSE4.2; ~250 ms
with `google_crc32c`, which held full-read downloads to 0.6x of ``sendfile``)
against SHA-256's ~950 ms, a pass that alone held uploads to S3 below their
target.  It is no defence against someone who can write the store, who could
record a matching checksum as well.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import crc32c

from rex.core import UnavailableError

CHUNK_SIZE = 1 << 20
SEGMENT = 4 << 20  # what `VerifiedReader.sendfile_segments()` checks before it gives it out

log = logging.getLogger("rex.attach")
MISMATCH = "Attachment is damaged: its CRC32C does not match:"


class DamagedError(UnavailableError):
    """An attachment whose content does not match its recorded checksum:
    the store failed (503), and reading it again will not help until it is
    restored."""


def mismatch(handle: str, recorded: str, found: str) -> DamagedError:
    """The error of an attachment whose content does not match the CRC32C
    recorded for it, logged as it is found."""
    log.error("%s %s (recorded %s, read %s)", MISMATCH, handle, recorded, found)
    return DamagedError(MISMATCH, handle)


def encode(crc: int) -> str:
    """A CRC32C as recorded: the base64 of its four bytes, big-endian."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def extend(crc: int, data: bytes | bytearray | memoryview) -> int:
    """The CRC32C `crc` extended by `data`."""
    return crc32c.crc32c(data, crc)  # type: ignore[no-any-return]


def is_crc32c(value: Any) -> bool:
    """Is `value` a CRC32C as recorded (and not something else found there)?"""
    try:
        return (isinstance(value, str) and len(value) == 8
                and len(base64.b64decode(value, validate=True)) == 4)
    except (binascii.Error, ValueError):
        return False


def compute(source: BinaryIO, copy: BinaryIO | None = None) -> tuple[str, int]:
    """The CRC32C and size of what `source` holds from where it is to its
    end, copying what it reads to `copy` if given."""
    crc = size = 0
    while chunk := source.read(CHUNK_SIZE):
        crc = extend(crc, chunk)
        size += len(chunk)
        if copy is not None:
            copy.write(chunk)
    return encode(crc), size


def verified(file: BinaryIO, size: int, crc32c: str | None, handle: str) -> BinaryIO:
    """The attachment's file, which checks `crc32c` when read from start to
    end (see `VerifiedReader`); the file itself when nothing is recorded."""
    if crc32c is None:
        return file
    return VerifiedReader(file, size, crc32c, handle)  # type: ignore[return-value]


_checkers: dict[int, ThreadPoolExecutor] = {}


def _checker() -> ThreadPoolExecutor:
    """This process's threads that check pieces ahead of ``sendfile``."""
    pid = os.getpid()
    if pid not in _checkers:  # none yet, or the parent's, whose threads a fork left behind
        _checkers.clear()
        _checkers[pid] = ThreadPoolExecutor(os.cpu_count() or 2, "rex-attach-check")
    return _checkers[pid]


class VerifiedReader(io.BufferedIOBase):
    """A seekable file of `size` bytes that computes their CRC32C while they
    are read in order from the start, and compares it with the recorded one
    when the last byte is read: on a mismatch that read raises `DamagedError`
    (and so does every later one) instead of returning the data, and logs it.

    Reads that jump (after a seek) pass unchecked; reading on from where the
    checked part ends resumes the check.  A file read in part is never
    checked: it is not a full read.
    """

    def __init__(self, file: BinaryIO, size: int, crc32c: str, handle: str) -> None:
        self._file = file
        self._size = size
        self._expected = crc32c
        self._handle = handle
        self._position = 0
        self._checked = 0  # the first bytes, read in order, that the CRC covers
        self._crc = 0
        self._done = False  # the check is made
        self._damage: DamagedError | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = self._file.seek(offset, whence)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        return self._account(self._file.read(size))

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def _account(self, data: bytes) -> bytes:
        if self._position == self._checked:
            self._check(data)
        self._position += len(data)
        if self._damage is not None:
            raise self._damage
        return data

    def _check(self, data: Any) -> None:
        """Extends the check by `data`, the bytes that follow the checked
        part; compares when they complete the file, raising on a mismatch."""
        if self._done:
            return
        self._crc = extend(self._crc, data)
        self._checked += len(data)
        if self._checked >= self._size:
            self._done = True
            if encode(self._crc) != self._expected:
                self._damage = mismatch(self._handle, self._expected, encode(self._crc))
                raise self._damage

    def sendfile_fd(self) -> int:
        """The OS file that `sendfile_segments()` gives out pieces of."""
        return self._file.fileno()

    def sendfile_segments(self, offset: int, count: int) -> Iterator[tuple[int, int]]:
        """Bytes `offset` to `offset + count` as ``(offset, length)`` pieces
        that a server sends straight from `sendfile_fd()` (``sendfile``):
        each piece that continues the checked part is read and checked
        first, so the last piece of a full read is given out only if the
        CRC32C matches (else `DamagedError`, and the response is cut off).
        The next piece is checked, in another thread, while the server
        sends this one.  rex.web's server knows this protocol; other
        servers iterate over the file, which `read()` checks."""
        end = offset + count
        buffer = memoryview(bytearray(min(SEGMENT, count)))
        ahead = None  # the check of the piece at `offset`, under way
        while offset < end:
            if ahead is not None:
                ahead.result()  # raises `DamagedError` before the last piece goes out
            elif offset == self._checked:
                self._check_piece(buffer, end)
            if self._damage is not None:
                raise self._damage
            # Up to the end of the checked part, or all the rest past a gap.
            length = min(self._checked if offset < self._checked else end, end) - offset
            ahead = (_checker().submit(self._check_piece, buffer, end)
                     if offset + length == self._checked < end and not self._done else None)
            try:
                yield offset, length
            except BaseException:  # the server stopped sending
                if ahead is not None and not ahead.cancel():
                    ahead.exception()  # waits: that check reads the file into the buffer
                raise
            offset += length

    def _check_piece(self, buffer: memoryview, end: int) -> None:
        """Reads and checks the next piece of at most `len(buffer)` bytes
        (not beyond `end`) that follows the checked part."""
        if self._done:
            return
        length = min(len(buffer), end - self._checked)
        if os.preadv(self.sendfile_fd(), [buffer[:length]], self._checked) != length:
            raise OSError(f"{self._handle} ended before byte {self._checked + length}")
        self._check(buffer[:length])

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            super().close()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self._handle!r} {self._size} bytes>"
