"""``/attach/{handle}``: attachments over HTTP, for those allowed to see them,
and for anyone holding a signed direct link."""

from __future__ import annotations

from typing import BinaryIO

from webob import Request, Response
from webob.exc import (HTTPConflict, HTTPCreated, HTTPForbidden, HTTPMethodNotAllowed,
                       HTTPNotFound)

from rex.core import Error
from rex.web import Location, Spool, parse_form

from .handle import is_handle
from .settings import get_storage


class AttachLocation(Location):
    """``GET``/``HEAD /attach/HANDLE`` serves an attachment to requests with
    the permission that `access` gives rex.attach; an unknown or ill-formed
    handle is 404.

    A request carrying ``expires`` and ``signature`` (a direct link of the
    local backend) needs no session instead, but must match its signature:
    method, handle and expiry, else 403.  A signed ``POST`` stores one
    multipart file at exactly its reserved handle: the only way to write
    through HTTP (an unsigned one is 405, whoever sends it).
    """

    path = "/"
    methods = ("GET", "HEAD", "POST")

    def authorize(self, req: Request) -> bool:
        if "signature" in req.GET:
            return True  # checked against the handle in render()
        if req.method == "POST":  # whoever asks: only a signed link writes
            raise HTTPMethodNotAllowed("Writing an attachment needs a signed upload link.",
                                       headers={"Allow": "GET, HEAD"})
        return super().authorize(req)

    def render(self, req: Request, path: str) -> Response:
        if not is_handle(path):
            raise HTTPNotFound()
        storage = get_storage()
        if "signature" in req.GET:
            method = "GET" if req.method == "HEAD" else req.method
            is_signed = getattr(storage, "is_signed", None)
            if is_signed is None or not is_signed(method, path, req.GET.get("expires", ""),
                                                  req.GET.get("signature", "")):
                raise HTTPForbidden("The link is invalid or expired.")
        if req.method == "POST":
            return self.store(req, path)
        try:
            return storage.route(path)(req)
        except Error:
            raise HTTPNotFound() from None

    def store(self, req: Request, handle: str) -> Response:
        fields, uploads = parse_form(req)
        try:
            if len(uploads) != 1:
                raise Error("Expected exactly one uploaded file, got:", len(uploads))
            if handle in get_storage():
                raise HTTPConflict("The attachment exists already.")
            get_storage().write(handle, uploads[0])
        finally:
            for upload in uploads:
                upload.discard()
        return HTTPCreated(location=req.path_url)


class AttachSpool(Spool):
    """Spools uploaded files where the storage can take them over, up to
    `attach_max_size`."""

    def open(self) -> tuple[BinaryIO, str | None]:
        return get_storage().spool()

    def max_size(self) -> int | None:
        return get_storage().max_size


