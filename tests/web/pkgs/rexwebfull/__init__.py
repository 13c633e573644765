"""A package whose spool sits on a full disk: writing a file fails with
ENOSPC, and so does closing it (closing flushes), as on a real full disk."""

import errno
import os
import tempfile

from rex.web import Spool

REQUIRES = ("rexwebtest",)


class FullDiskFile:
    """A real file on disk whose writes and flushes fail as ENOSPC."""

    def __init__(self, path: str) -> None:
        self.raw = open(path, "w+b", buffering=0)

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def close(self) -> None:
        self.raw.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullDiskSpool(Spool):
    directory = ""  # set by the test
    opened: list[str] = []

    def open(self):
        fd, path = tempfile.mkstemp(dir=self.directory)
        os.close(fd)
        FullDiskSpool.opened.append(path)
        return FullDiskFile(path), path
