"""Who sends the bytes of a download (the setting `attach_serve`).

The application always answers first, after its access check, and so
decides what is served to whom; then the bytes come

- from the application itself (``proxy``, `Storage.route()`);
- from nginx (``accel``, local backend): the answer carries no body but
  ``X-Accel-Redirect: ATTACH_ACCEL_LOCATION/HANDLE``, which nginx serves
  from an internal location on `attach_dir` (``sendfile``, ranges and
  conditional requests are nginx's), with this answer's ``Content-Type``,
  ``Content-Disposition`` and ``Cache-Control``;
- from the store (``redirect``, S3 and GCS): a 302 to a short-lived
  `download_link()` with the same ``Content-Disposition``.

Only a request that came through a trusted proxy (`trusted_proxies`) is
answered with ``X-Accel-Redirect``: one sent straight to the application
gets the bytes from it, as nothing would act on the header.  A ``HEAD``
needs no bytes, so ``redirect`` answers it as ``proxy`` does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from webob import Request, Response

from rex.core import get_settings
from rex.web import redirect
from rex.web.proxy import is_proxied

from .response import AttachmentApp, content_disposition, content_type
from .settings import get_storage


def serve(handle: str) -> AttachmentApp | Offloaded:
    """The attachment as an HTTP response application (called with a WebOb
    request, or as a WSGI application), its bytes sent by whom
    `attach_serve` says; `NotFoundError` if it is not there."""
    app = get_storage().route(handle)
    mode = get_settings().attach_serve
    if mode == "accel":
        return Accel(handle, app)
    if mode == "redirect":
        return Redirect(handle, app)
    return app


class Offloaded:
    """An attachment whose bytes another server sends; `app` sends them
    where that server cannot."""

    def __init__(self, handle: str, app: AttachmentApp) -> None:
        self.handle = handle
        self.app = app

    def response(self, req: Request) -> Response:
        raise NotImplementedError

    def __call__(self, *args: Any) -> Any:
        if len(args) == 1:
            return self.response(args[0])
        environ, start_response = args
        return self.response(Request(environ))(environ, start_response)


class Accel(Offloaded):
    """``X-Accel-Redirect`` to the file, for nginx to send."""

    def response(self, req: Request) -> Response:
        if not is_proxied(req.environ):
            return self.app.response(req)
        location = get_settings().attach_accel_location + quote(self.handle)
        return Response(headerlist=[
            ("Content-Type", content_type(self.app.name)),
            ("Content-Disposition", content_disposition(self.app.name)),
            ("Cache-Control", "private, no-cache"),
            ("X-Accel-Redirect", location),
        ])


class Redirect(Offloaded):
    """A redirect to a short-lived link straight to the store."""

    def response(self, req: Request) -> Response:
        if req.method != "GET":
            return self.app.response(req)
        response = redirect(get_storage().download_link(self.handle).url, status=302)
        response.cache_control = "no-store"  # the link lets whoever has it in, for a while
        return response
