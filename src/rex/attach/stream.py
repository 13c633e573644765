"""A seekable reader over an object store that fetches byte ranges on demand."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO, Protocol


class Readable(Protocol):
    def read(self, size: int = ...) -> bytes: ...
    def close(self) -> None: ...


class RangeReader(io.RawIOBase):
    """Reads an object of known size through ranged requests.

    ``fetch(start)`` opens a stream of the object from byte ``start`` to its
    end (an HTTP ``Range: bytes=start-``); reading sequentially keeps one such
    stream open, seeking drops it and the next read opens another.  Nothing is
    buffered beyond what the caller asks for.
    """

    def __init__(self, size: int, fetch: Callable[[int], Readable]) -> None:
        self.size = size
        self._fetch = fetch
        self._position = 0
        self._stream: Readable | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._position:
            self._drop()
            self._position = position
        return position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.size - self._position)
        if want <= 0:
            return 0
        if self._stream is None:
            self._stream = self._fetch(self._position)
        data = self._stream.read(want)
        if not data:
            raise OSError(f"object ended at byte {self._position} of {self.size}")
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._drop()
        super().close()


def open_ranges(size: int, fetch: Callable[[int], Readable], buffer_size: int = 1 << 20) -> BinaryIO:
    """A buffered, seekable binary file over `RangeReader`."""
    return io.BufferedReader(RangeReader(size, fetch), buffer_size)  # type: ignore[return-value]
