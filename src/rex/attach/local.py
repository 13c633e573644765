"""Attachments in a local directory.

Layout: the file of handle ``/Y/M/D/UUID/NAME`` is ``DIR/Y/M/D/UUID/NAME``.
A write is staged in the hidden ``DIR/.tmp`` and becomes visible by one
``rename`` of its ``UUID`` directory, after ``fsync``, which fails if that
directory exists: a crash leaves each attachment wholly there or not at all,
and nothing is ever replaced.  A removal renames the file to ``.removed``
in its ``UUID`` directory (emptied) and leaves it there, as a tombstone that
keeps the handle from being written again.

The attachment's CRC32C is an extended attribute of its file,
``user.rex.attach.crc32c``, set before the file's ``fsync``: kept in the
inode, it is made durable by that same ``fsync`` (a file beside it would
cost one more, a quarter of the time of a small add), and it moves with the
file, a spooled upload's too.  So the store must support ``user.*``
attributes (ext4, XFS, btrfs, tmpfs do), which `verify()` checks; copies of
it must keep them (``rsync -X``, ``cp -a``), or their attachments read as
having no checksum.

Every path is walked one directory at a time without following a symbolic
link (``O_NOFOLLOW`` relative to the parent's descriptor), so a link planted
in the store is never followed out of it.

Each process stages in a directory of its own under ``DIR/.tmp``, which it
holds locked (``flock``) while it lives: what a dead process left there is
recognised by the lock that nobody holds, and swept.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import stat as st
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO
from urllib.parse import quote, urlencode

from rex.core import Error, ExistsError, InsufficientStorageError, NotFoundError, UnavailableError

from . import checksum
from .handle import check_handle, is_handle
from .signing import is_valid, sign
from .response import AttachmentApp
from .storage import CHUNK_SIZE, PresignedLink, Stat, Storage

TMP = ".tmp"
SECRET = ".secret"
REMOVED = ".removed"  # the tombstone in the UUID directory of a removed attachment
CRC32C = "user.rex.attach.crc32c"  # the file's extended attribute: its CRC32C (base64)
WRITER = "writer-"  # a process's staging directory, DIR/.tmp/writer-*
LOCK = "lock"  # in it, the file its process holds locked
STALE_AGE = 24 * 3600  # seconds after which an unlocked staging entry is a leftover
PARTS = (re.compile(r"\d{4}"), re.compile(r"\d{2}"), re.compile(r"\d{2}"))
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # no such file, or a link in the way
FULL = (errno.ENOSPC, errno.EDQUOT)


class LocalStorage(Storage):
    """Attachments as files under a directory of the local file system.

    `url_prefix` is where the application serves `AttachLocation`, which
    direct links go through.
    """

    sendfile = True

    def __init__(self, path: str, *, secret: str | None = None, max_size: int | None = None,
                 link_expiry: int = 3600, url_prefix: str = "/attach") -> None:
        super().__init__(max_size=max_size, link_expiry=link_expiry)
        self.path = os.path.abspath(path)
        self.tmp = os.path.join(self.path, TMP)
        self.url_prefix = url_prefix
        self._secret = secret.encode() if secret is not None else None
        self._writer: tuple[int, str, int] | None = None  # pid, directory, locked fd
        self._writer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.path!r})"

    # Paths, one directory at a time.

    @contextlib.contextmanager
    def _dir(self, parts: list[str], create: bool = False) -> Iterator[int]:
        """A descriptor of ``DIR/parts...``, reached without following a
        link; with `create`, missing directories are made, durably."""
        fd = os.open(self.path, DIR_FLAGS)
        try:
            for part in parts:
                made = False
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                        made = True
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
                if made:
                    os.fsync(fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _failure(self, exc: OSError, handle: str) -> Error:
        """What an OS error of a read or a removal means."""
        if exc.errno in MISSING:
            return NotFoundError("Attachment does not exist:", handle)
        return UnavailableError("Attachment storage is failing:", self.path).wrap(
            "Because:", f"{exc.strerror} ({handle})")

    def _open(self, handle: str) -> tuple[BinaryIO, os.stat_result, str | None]:
        """The attachment's file, open for reading (a regular file reached
        without following a link), its status and its recorded CRC32C."""
        *parts, name = check_handle(handle)[1:].split("/")
        try:
            with self._dir(parts) as fd:
                file = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    info = os.fstat(file)
                    if not st.S_ISREG(info.st_mode):
                        raise NotFoundError("Attachment does not exist:", handle)
                    crc32c = _crc32c(file)
                except BaseException:
                    os.close(file)
                    raise
        except OSError as exc:
            raise self._failure(exc, handle) from None
        return os.fdopen(file, "rb"), info, crc32c

    # The storage interface.

    def write(self, handle: str, file: BinaryIO) -> None:
        *dates, uuid, name = check_handle(handle)[1:].split("/")
        with self._failing(handle):
            staging = tempfile.mkdtemp(dir=self._workdir())
        try:
            staged = os.path.join(staging, name)
            spooled = getattr(file, "path", None)
            if spooled is not None and os.path.dirname(spooled) == os.path.dirname(staging):
                # An upload that `spool()` placed here: keep it, don't copy it.
                spool = file.file  # type: ignore[attr-defined]
                crc32c = getattr(file, "crc32c", None)  # what the form parser computed
                with self._failing(handle):
                    if crc32c is None:
                        spool.seek(0)
                        crc32c, _ = checksum.compute(spool)
                    os.setxattr(spool.fileno(), CRC32C, crc32c.encode())
                    os.fsync(spool.fileno())
                    os.rename(spooled, staged)
            else:
                self._copy(handle, file, staged)
            with self._failing(handle):
                _fsync_dir(staging)
                with self._dir(dates, create=True) as fd:
                    try:
                        os.rename(staging, uuid, dst_dir_fd=fd)
                    except OSError as exc:
                        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                            self._check_free(handle)  # raises, saying which
                            raise ExistsError("Attachment already exists:", handle) from None
                        raise
                    os.fsync(fd)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _copy(self, handle: str, file: BinaryIO, path: str) -> None:
        """Copies `file` to a new file at `path`, with its CRC32C, durably."""
        with self._failing(handle):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            crc = 0
            while chunk := file.read(CHUNK_SIZE):  # the source's errors are its own
                crc = checksum.extend(crc, chunk)
                with self._failing(handle):
                    _write_all(fd, chunk)
            with self._failing(handle):
                os.setxattr(fd, CRC32C, checksum.encode(crc).encode())
                os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _failing(self, handle: str) -> Iterator[None]:
        """Turns the OS errors of a write into what they mean."""
        try:
            yield
        except OSError as exc:
            if exc.errno in FULL:
                raise InsufficientStorageError("No space left in the attachment storage:",
                                               self.path) from exc
            raise UnavailableError("Attachment storage is failing:", self.path).wrap(
                "Because:", f"{exc.strerror} ({handle})") from exc

    def _check_free(self, handle: str) -> None:
        *dates, uuid, _ = check_handle(handle)[1:].split("/")
        try:
            with self._dir(dates) as fd:
                os.stat(uuid, dir_fd=fd, follow_symlinks=False)
                removed = _exists(f"{uuid}/{REMOVED}", fd)
        except OSError as exc:
            if exc.errno in MISSING:
                return
            raise self._failure(exc, handle) from None
        if removed:
            raise ExistsError("Attachment was removed; its handle cannot be used again:", handle)
        raise ExistsError("Attachment already exists:", handle)

    def open(self, handle: str) -> BinaryIO:
        file, info, crc32c = self._open(handle)
        return checksum.verified(file, info.st_size, crc32c, handle)

    def stat(self, handle: str) -> Stat:
        file, info, crc32c = self._open(handle)
        file.close()
        return _stat(handle, info, crc32c)

    def route(self, handle: str) -> AttachmentApp:
        """One walk for the headers and the body: the file opened to stat
        the attachment is the one its first body reads."""
        file, info, crc32c = self._open(handle)
        opened = _Opener(checksum.verified(file, info.st_size, crc32c, handle),
                         lambda: self.open(handle))
        return self._route(handle, _stat(handle, info, crc32c), opened)

    def record_crc32c(self, handle: str) -> str:
        """Reads an attachment that has no CRC32C and sets it, create-only
        (``XATTR_CREATE``): one recorded meanwhile by another process must
        be the same, else the attachment (or that record) is damaged."""
        file, _, crc32c = self._open(handle)
        with file, self._failing(handle):
            if crc32c is not None:
                return crc32c
            crc32c, _ = checksum.compute(file)
            try:
                os.setxattr(file.fileno(), CRC32C, crc32c.encode(), os.XATTR_CREATE)
            except FileExistsError:
                recorded = _crc32c(file.fileno())
                if recorded != crc32c:
                    raise checksum.mismatch(handle, str(recorded), crc32c) from None
            os.fsync(file.fileno())
        return crc32c

    def remove(self, handle: str) -> None:
        """Renames the file to the tombstone and empties it."""
        *parts, name = check_handle(handle)[1:].split("/")
        try:
            with self._dir(parts) as fd:
                if not st.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise NotFoundError("Attachment does not exist:", handle)
                os.rename(name, REMOVED, src_dir_fd=fd, dst_dir_fd=fd)
                tombstone = os.open(REMOVED, os.O_WRONLY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    os.ftruncate(tombstone, 0)
                finally:
                    os.close(tombstone)
                os.fsync(fd)
        except OSError as exc:
            raise self._failure(exc, handle) from None

    def _delete(self, handle: str) -> None:
        """Deletes the handle's directory, reached without following a link."""
        *dates, folder, _ = check_handle(handle)[1:].split("/")
        try:
            with self._dir(dates) as fd:
                shutil.rmtree(folder, dir_fd=fd)
        except OSError as exc:
            raise self._failure(exc, handle) from None

    def __iter__(self) -> Iterator[str]:
        return self._walk(self.path, "", 0)

    def _walk(self, path: str, prefix: str, depth: int) -> Iterator[str]:
        try:
            entries = sorted((entry.name, entry) for entry in os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return
        for name, entry in entries:
            handle = f"{prefix}/{name}"
            if depth == 4:
                if entry.is_file(follow_symlinks=False) and is_handle(handle):
                    yield handle
            elif entry.is_dir(follow_symlinks=False) and (depth == 3
                                                          or PARTS[depth].fullmatch(name)):
                yield from self._walk(entry.path, handle, depth + 1)

    def verify(self) -> None:
        if not os.path.isdir(self.path):
            raise Error("Attachment storage must be an existing directory:", self.path)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise Error("Attachment storage must be writable:", self.path)
        try:
            os.makedirs(self.tmp, exist_ok=True)
            probe = tempfile.TemporaryFile(dir=self.tmp)
        except OSError:
            raise Error("Attachment storage must be writable:", self.path) from None
        with probe:
            try:
                os.setxattr(probe.fileno(), CRC32C, b"AAAAAA==")
            except OSError as exc:
                raise Error("Attachment storage must support extended attributes (user.*), "
                            "which keep checksums:", self.path).wrap(
                    "Because:", exc.strerror) from None
        self.secret  # created now, before a server forks its workers
        self.sweep()

    # Staging.

    def spool(self) -> tuple[BinaryIO, str | None]:
        file = tempfile.NamedTemporaryFile(dir=self._workdir(), delete=False)
        return file, file.name  # type: ignore[return-value]

    def _workdir(self) -> str:
        """This process's staging directory, made and locked on first use
        (and after a fork: a child's writes are its own)."""
        with self._writer_lock:
            if self._writer is None or self._writer[0] != os.getpid():
                os.makedirs(self.tmp, exist_ok=True)
                self.sweep()
                draft = tempfile.mkdtemp(dir=self.tmp, prefix="new-")
                fd = os.open(os.path.join(draft, LOCK), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path = os.path.join(self.tmp, WRITER + os.path.basename(draft)[len("new-"):])
                os.rename(draft, path)  # only a locked directory is named writer-*
                self._writer = (os.getpid(), path, fd)
            return self._writer[1]

    def sweep(self, age: float = STALE_AGE) -> None:
        """Removes what dead writers left in the staging area (`leftovers()`)."""
        for entry in self.leftovers(age):
            with contextlib.suppress(FileNotFoundError):  # its writer finished or swept it
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)

    def leftovers(self, age: float = STALE_AGE) -> list[os.DirEntry]:
        """What dead writers left in the staging area: the directory of every
        process that no longer holds its lock, and any other entry untouched
        for `age` seconds."""
        cutoff = time.time() - age
        try:
            entries = list(os.scandir(self.tmp))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):  # its writer finished or swept it
                is_dir = entry.is_dir(follow_symlinks=False)
                if is_dir and entry.name.startswith(WRITER):
                    if _is_dead(entry.path):
                        found.append(entry)
                    continue
                paths = [entry.path]
                if is_dir:
                    paths += [os.path.join(entry.path, name) for name in os.listdir(entry.path)]
                if all(os.lstat(path).st_mtime < cutoff for path in paths):
                    found.append(entry)
        return found

    # Direct links.

    def _upload_link(self, handle: str, size: int, md5: str | None) -> PresignedLink:
        """A signed ``PUT`` to `AttachLocation`, for `size` bytes (and the MD5)."""
        params = {"size": str(size)}
        headers = {}
        if md5 is not None:
            params["md5"] = headers["Content-MD5"] = md5
        return PresignedLink(self._signed_url("PUT", handle, params), method="PUT",
                             headers=headers)

    def download_link(self, handle: str) -> PresignedLink:
        """A signed ``GET`` to `AttachLocation`, valid without a session."""
        return PresignedLink(self._signed_url("GET", check_handle(handle), {}))

    def _signed_url(self, method: str, handle: str, params: dict[str, str]) -> str:
        params = {"expires": str(int(time.time()) + self.link_expiry), **params}
        params["signature"] = sign(self.secret, method, handle, params)
        return f"{self.url_prefix}{quote(handle)}?{urlencode(params)}"

    def is_signed(self, method: str, handle: str, query: dict[str, str]) -> bool:
        """Does a link's signature allow this request?"""
        return is_valid(self.secret, method, handle, query)

    @property
    def secret(self) -> bytes:
        """The signing key: the setting, else one kept in ``DIR/.secret``,
        created once by whichever process needs it first."""
        if self._secret is None:
            path = os.path.join(self.path, SECRET)
            if not os.path.exists(path):
                os.makedirs(self.tmp, exist_ok=True)
                with tempfile.NamedTemporaryFile("w", dir=self.tmp) as draft:
                    draft.write(secrets.token_hex(32))
                    draft.flush()
                    os.fsync(draft.fileno())
                    try:
                        os.link(draft.name, path)  # atomic; the first process wins
                    except FileExistsError:
                        pass
            with open(path) as stream:
                secret = stream.read().strip()
            if len(secret) < 32:
                raise Error("Attachment link secret is damaged:", path)
            self._secret = secret.encode()
        return self._secret


def _is_dead(path: str) -> bool:
    """Has the process of this staging directory gone (its lock is free)?"""
    try:
        fd = os.open(os.path.join(path, LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _crc32c(fd: int) -> str | None:
    """The CRC32C recorded on a file, as found there; None if none is."""
    try:
        return os.getxattr(fd, CRC32C).decode("ascii", "replace")
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return None
        raise


def _write_all(fd: int, data: bytes) -> None:
    """Writes all of `data` (unbuffered: nothing is left to fail at close)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _exists(path: str, dir_fd: int) -> bool:
    try:
        os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stat(handle: str, info: os.stat_result, crc32c: str | None) -> Stat:
    tag = hashlib.sha256(f"{handle}:{info.st_size}:{info.st_mtime_ns}".encode()).hexdigest()
    return Stat(info.st_size, info.st_mtime, f'"{tag[:32]}"', crc32c)


class _Opener:
    """Opens an attachment: gives out `first`, a file open already, then
    new ones; closing it closes `first` if nobody took it (a response
    without a body: ``HEAD``, 304)."""

    def __init__(self, first: BinaryIO, reopen: Callable[[], BinaryIO]) -> None:
        self.first: BinaryIO | None = first
        self.reopen = reopen

    def __call__(self) -> BinaryIO:
        first, self.first = self.first, None
        return first if first is not None else self.reopen()

    def close(self) -> None:
        if self.first is not None:
            self.first.close()
            self.first = None
