"""Attachments in a local directory.

Layout: the file of handle ``/Y/M/D/UUID/NAME`` is ``DIR/Y/M/D/UUID/NAME``.
Writes and removals go through the hidden ``DIR/.tmp`` directory and become
visible (or vanish) by one ``rename`` of the ``UUID`` directory, after
``fsync``, so a crash leaves each attachment wholly there or not at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote, urlencode

from rex.core import Error

from .handle import check_handle, is_handle
from .signing import is_valid, sign
from .storage import CHUNK_SIZE, PresignedLink, Stat, Storage

TMP = ".tmp"
SECRET = ".secret"
STALE_AGE = 24 * 3600  # seconds after which a staging entry is a crash's leftover
PARTS = (re.compile(r"\d{4}"), re.compile(r"\d{2}"), re.compile(r"\d{2}"))


class LocalStorage(Storage):
    """Attachments as files under a directory of the local file system."""

    sendfile = True

    def __init__(self, path: str, *, secret: str | None = None, max_size: int | None = None,
                 link_expiry: int = 3600) -> None:
        super().__init__(max_size=max_size, link_expiry=link_expiry)
        self.path = os.path.abspath(path)
        self.tmp = os.path.join(self.path, TMP)
        self._secret = secret.encode() if secret is not None else None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.path!r})"

    def _file(self, handle: str) -> str:
        return self.path + check_handle(handle)

    def write(self, handle: str, file: BinaryIO) -> None:
        target = self._file(handle)
        os.makedirs(self.tmp, exist_ok=True)
        staging = tempfile.mkdtemp(dir=self.tmp)
        try:
            staged = os.path.join(staging, os.path.basename(target))
            spooled = getattr(file, "path", None)
            if spooled is not None and os.path.dirname(spooled) == self.tmp:
                # An upload that `spool()` placed here: keep it, don't copy it.
                os.fsync(file.file.fileno())  # type: ignore[attr-defined]
                os.rename(spooled, staged)
            else:
                fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with open(fd, "wb", closefd=True) as out:
                    while chunk := file.read(CHUNK_SIZE):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            _fsync_dir(staging)
            self._makedirs(os.path.dirname(os.path.dirname(target)))
            try:
                os.rename(staging, os.path.dirname(target))
            except OSError:
                raise Error("Attachment already exists:", handle) from None
            _fsync_dir(os.path.dirname(os.path.dirname(target)))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _makedirs(self, path: str) -> None:
        """Creates the date directories, durably."""
        if os.path.isdir(path):
            return
        self._makedirs(os.path.dirname(path))
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            return
        _fsync_dir(os.path.dirname(path))

    def open(self, handle: str) -> BinaryIO:
        try:
            return open(self._file(handle), "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise Error("Attachment does not exist:", handle) from None

    def stat(self, handle: str) -> Stat:
        try:
            st = os.stat(self._file(handle))
        except (FileNotFoundError, NotADirectoryError):
            raise Error("Attachment does not exist:", handle) from None
        tag = hashlib.sha256(f"{handle}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
        return Stat(st.st_size, st.st_mtime, f'"{tag[:32]}"')

    def remove(self, handle: str) -> None:
        target = self._file(handle)
        if not os.path.isfile(target):
            raise Error("Attachment does not exist:", handle)
        os.makedirs(self.tmp, exist_ok=True)
        trash = tempfile.mkdtemp(dir=self.tmp)
        try:
            os.rename(os.path.dirname(target), os.path.join(trash, "removed"))
        except FileNotFoundError:
            raise Error("Attachment does not exist:", handle) from None
        finally:
            _fsync_dir(os.path.dirname(os.path.dirname(target)))
            shutil.rmtree(trash, ignore_errors=True)

    def __iter__(self) -> Iterator[str]:
        return self._walk(self.path, "", 0)

    def _walk(self, path: str, prefix: str, depth: int) -> Iterator[str]:
        try:
            names = sorted(entry.name for entry in os.scandir(path)
                           if entry.is_dir(follow_symlinks=False) or depth == 4)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            handle = f"{prefix}/{name}"
            if depth == 4:
                if is_handle(handle):
                    yield handle
            elif depth == 3 or PARTS[depth].fullmatch(name):
                yield from self._walk(os.path.join(path, name), handle, depth + 1)

    def verify(self) -> None:
        if not os.path.isdir(self.path):
            raise Error("Attachment storage must be an existing directory:", self.path)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise Error("Attachment storage must be writable:", self.path)
        try:
            os.makedirs(self.tmp, exist_ok=True)
            tempfile.TemporaryFile(dir=self.tmp).close()
        except OSError:
            raise Error("Attachment storage must be writable:", self.path) from None
        self.secret  # created now, before a server forks its workers
        self.sweep()

    def sweep(self, age: float = STALE_AGE) -> None:
        """Removes what crashed writers left in the staging area: entries
        untouched for `age` seconds (a live upload keeps touching its file)."""
        cutoff = time.time() - age
        for entry in os.scandir(self.tmp):
            is_dir = entry.is_dir(follow_symlinks=False)
            paths = [entry.path]
            try:
                if is_dir:
                    paths += [os.path.join(entry.path, name) for name in os.listdir(entry.path)]
                if all(os.lstat(path).st_mtime < cutoff for path in paths):
                    shutil.rmtree(entry.path) if is_dir else os.unlink(entry.path)
            except FileNotFoundError:
                pass  # its writer finished or swept it meanwhile

    def upload_link(self, handle: str) -> PresignedLink:
        """A signed ``POST /attach/HANDLE`` (see `AttachLocation`)."""
        return PresignedLink(self._signed_url("POST", handle))

    def download_link(self, handle: str) -> PresignedLink:
        """A signed ``GET /attach/HANDLE``, valid without a session."""
        return PresignedLink(self._signed_url("GET", handle))

    def _signed_url(self, method: str, handle: str) -> str:
        expires = int(time.time()) + self.link_expiry
        query = urlencode({"expires": expires,
                           "signature": sign(self.secret, method, check_handle(handle), expires)})
        return f"/attach{quote(handle)}?{query}"

    def is_signed(self, method: str, handle: str, expires: str, signature: str) -> bool:
        """Does a link's signature allow this request?"""
        return is_valid(self.secret, method, handle, expires, signature)

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

    def spool(self) -> tuple[BinaryIO, str | None]:
        os.makedirs(self.tmp, exist_ok=True)
        file = tempfile.NamedTemporaryFile(dir=self.tmp, delete=False)
        return file, file.name  # type: ignore[return-value]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
