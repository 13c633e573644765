"""``/attach/{handle}``: attachments over HTTP, for those allowed to see them."""

from __future__ import annotations

from typing import BinaryIO

from webob import Request, Response
from webob.exc import HTTPNotFound

from rex.core import Error
from rex.web import Location, Spool

from .handle import is_handle
from .settings import get_storage


class AttachLocation(Location):
    """Serves any attachment by its handle (GET and HEAD); an unknown or
    ill-formed handle is 404.  Access: the `access` setting for rex.attach."""

    path = "/"

    def render(self, req: Request, path: str) -> Response:
        if not is_handle(path):
            raise HTTPNotFound()
        try:
            return get_storage().route(path)(req)
        except Error:
            raise HTTPNotFound() from None


class AttachSpool(Spool):
    """Spools uploaded files where the storage can take them over."""

    def open(self) -> tuple[BinaryIO, str | None]:
        return get_storage().spool()
