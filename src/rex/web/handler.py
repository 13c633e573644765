"""Routing of HTTP requests to the commands and locations of the packages,
and the mapping of what they raise to HTTP answers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import quote

from webob import Request, Response
from webob.exc import HTTPException, HTTPMethodNotAllowed, HTTPNotFound

from rex.core import Error, InsufficientStorageError, UnavailableError, WSGIHandler, get_rex

from .access import refusal
from .command import Command, Endpoint, Location
from .proxy import apply_proxy

log = logging.getLogger("rex.web")


class WebHandler(WSGIHandler):
    """Dispatches a request: 404 for unknown paths, 405 for other methods,
    401 or 403 without the permission (`refusal()`; both checked before the
    body is read), 400 for bad parameters, else the endpoint's response.
    What a trusted proxy says of the request is applied first (`apply_proxy()`).

    What an endpoint raises becomes the answer: a `rex.core.Error` or a
    WebOb HTTP exception answers its own status; any other exception is a
    bug, logged with its traceback and answered with a bare 500.
    """

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.locations: list[tuple[str, Location]] = []
        for package in get_rex().packages:
            for command_type in Command.all():
                if get_rex().packages.owner(command_type.__module__) is package:
                    self.commands[package.prefix + command_type.path] = command_type(package)
            for location_type in Location.all():
                if get_rex().packages.owner(location_type.__module__) is package:
                    prefix = package.prefix + location_type.path.rstrip("/")
                    self.locations.append((prefix, location_type(package)))
        self.locations.sort(key=lambda item: len(item[0]), reverse=True)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            apply_proxy(environ)
            return self.dispatch(Request(environ))(environ, start_response)
        except Exception as exc:  # raised before any response started
            return failure(exc, environ)(environ, start_response)

    def dispatch(self, req: Request) -> Response:
        path = decoded_path(req)
        command = self.commands.get(path)
        if command is not None:
            self.check(command, req)
            return command.respond(req)
        for prefix, location in self.locations:
            if path == prefix or path.startswith(prefix + "/") or prefix == "":
                self.check(location, req)
                return location.render(req, path[len(prefix):])
        raise HTTPNotFound()

    @staticmethod
    def check(endpoint: Endpoint, req: Request) -> None:
        if req.method not in endpoint.methods:
            raise HTTPMethodNotAllowed(headers={"Allow": ", ".join(endpoint.methods)})
        if not endpoint.authorize(req):
            raise refusal(req)


def decoded_path(req: Request) -> str:
    """The request's path; `Error` (400) unless the path and the query
    string are UTF-8 (WebOb decodes both lazily and raises
    `UnicodeDecodeError`, which would otherwise surface as a 500)."""
    try:
        path = req.path_info or "/"
    except UnicodeError:
        raise Error("Expected a URL path in UTF-8, got:", _raw(req.environ, "PATH_INFO")) from None
    try:
        req.GET  # parsed once and kept by WebOb
    except UnicodeError:
        raise Error("Expected a query string in UTF-8, got:",
                    _raw(req.environ, "QUERY_STRING", safe="=&+%")) from None
    return path


def _raw(environ: dict, key: str, safe: str = "/") -> str:
    """An environ string as the client sent it, percent-encoded beyond ASCII
    (PEP 3333 strings hold the request's bytes as latin-1)."""
    return quote(environ.get(key, "").encode("latin-1", "replace"), safe=safe)


def failure(exc: Exception, environ: dict) -> Callable:
    """The WSGI application that answers an exception, which is logged when
    it is not the client's doing: an outage (503) as a warning, a full store
    (507) as an error, both with their cause; anything but an `Error` or an
    HTTP exception is a bug, logged with its traceback and answered with a
    500 that reveals nothing of it."""
    where = f"{environ.get('REQUEST_METHOD')} {_raw(environ, 'PATH_INFO')}"  # no query: it may sign
    if isinstance(exc, UnavailableError):
        log.warning("%s: %s", where, _first_line(exc), exc_info=exc)
    elif isinstance(exc, InsufficientStorageError):
        log.error("%s: %s", where, _first_line(exc), exc_info=exc)
    if isinstance(exc, (Error, HTTPException)):
        return exc  # type: ignore[return-value]
    log.error("%s: unexpected %s", where, type(exc).__name__, exc_info=exc)
    return Response("Internal Server Error\n", status=500, content_type="text/plain")


def _first_line(exc: Exception) -> str:
    return str(exc).partition("\n")[0]
