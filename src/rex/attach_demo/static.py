"""``/static/NAME``: the stylesheet and the script of the demo's pages."""

from __future__ import annotations

import os

from webob import Request, Response
from webob.exc import HTTPNotFound
from webob.static import FileApp

from rex.web import Location

DIRECTORY = os.path.join(os.path.dirname(__file__), "static")
FILES = frozenset(os.listdir(DIRECTORY))  # by exact name: no path leads anywhere else


class StaticLocation(Location):
    """Serves the files of the package's ``static/`` directory, for the
    pages' Content-Security-Policy, which allows scripts and styles from the
    application itself only.  Browsers revalidate them (``no-cache``) and
    get a 304 while they are unchanged."""

    path = "/static"

    def render(self, req: Request, path: str) -> Response:
        name = path.removeprefix("/")
        if name not in FILES:
            raise HTTPNotFound()
        response = req.get_response(FileApp(os.path.join(DIRECTORY, name)))
        response.cache_control = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
