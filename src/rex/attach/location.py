"""``/attach/{handle}``: attachments over HTTP, for those allowed to see them,
and for anyone holding a signed direct link."""

from __future__ import annotations

import base64
import errno
import hashlib
from typing import BinaryIO

from webob import Request, Response
from webob.exc import HTTPForbidden, HTTPMethodNotAllowed, HTTPNotFound

from rex.core import Error, InsufficientStorageError
from rex.web import Location, Spool, Upload, redirect

from . import checksum
from .handle import handle_name, is_handle
from .offload import serve
from .settings import get_storage
from .storage import CHUNK_SIZE


class AttachLocation(Location):
    """``GET``/``HEAD /attach/HANDLE`` serves an attachment (its bytes sent
    as `attach_serve` says) to requests with the permission that `access`
    gives rex.attach; an unknown or ill-formed handle is 404.

    A request carrying ``expires`` and ``signature`` (a direct link of the
    local backend) needs no session instead, but must match its signature:
    method, handle and every query parameter, else 403.  A signed ``PUT``
    stores its body, of exactly the link's ``size`` (and ``md5``), at
    exactly its reserved handle, once: the only way to write through HTTP (an
    unsigned one is 405, whoever sends it).
    """

    path = "/"
    methods = ("GET", "HEAD", "PUT")

    def authorize(self, req: Request) -> bool:
        if "signature" in req.GET:
            return True  # checked against the handle in render()
        if req.method == "PUT":  # whoever asks: only a signed link writes
            raise HTTPMethodNotAllowed("Writing an attachment needs a signed upload link.",
                                       headers={"Allow": "GET, HEAD"})
        return super().authorize(req)

    def render(self, req: Request, path: str) -> Response:
        if not is_handle(path):
            raise HTTPNotFound()
        storage = get_storage()
        query = dict(req.GET)
        if "signature" in query:
            method = "GET" if req.method == "HEAD" else req.method
            is_signed = getattr(storage, "is_signed", None)
            if (len(query) != len(req.GET) or is_signed is None
                    or not is_signed(method, path, query)):
                raise HTTPForbidden("The link is invalid or expired.")
        if req.method == "PUT":
            return self.store(req, path, int(query["size"]), query.get("md5"))
        return serve(path)(req)

    def store(self, req: Request, handle: str, size: int, md5: str | None) -> Response:
        """Streams the body to the storage's spool, then stores it."""
        if req.content_length != size:
            raise Error(f"Expected a body of exactly {size} bytes (the link's size), got:",
                        "none" if req.content_length is None else req.content_length)
        get_storage()._check_free(handle)  # spares reading what would be refused
        file, path = get_storage().spool()
        upload = Upload(handle_name(handle), "application/octet-stream", file, path)
        try:
            digest, crc = hashlib.md5(), 0
            stream, remaining = req.body_file_raw, size
            while remaining > 0:
                chunk = stream.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise Error("Got a truncated body; bytes missing:", remaining)
                remaining -= len(chunk)
                digest.update(chunk)
                crc = checksum.extend(crc, chunk)
                try:
                    file.write(chunk)
                except OSError as exc:
                    raise InsufficientStorageError("No space left to store the upload:",
                                                   handle) if exc.errno == errno.ENOSPC else exc
            upload.size, upload.crc32c = size, checksum.encode(crc)
            file.flush()
            file.seek(0)
            if md5 is not None and base64.b64encode(digest.digest()).decode() != md5:
                raise Error("The body does not match the link's Content-MD5:", md5)
            get_storage().write(handle, upload)
        finally:
            upload.discard()
        return redirect(req.path, status=201)  # the path alone: never the Host header


class AttachSpool(Spool):
    """Spools uploaded files where the storage can take them over, up to
    `attach_max_size`."""

    def open(self) -> tuple[BinaryIO, str | None]:
        return get_storage().spool()

    def max_size(self) -> int | None:
        return get_storage().max_size
