"""Routing of HTTP requests to the commands and locations of the packages."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from webob import Request, Response
from webob.exc import HTTPException, HTTPMethodNotAllowed, HTTPNotFound, HTTPUnauthorized

from rex.core import Error, WSGIHandler, get_rex

from .command import Command, Endpoint, Location
from .form import parse_form


class WebHandler(WSGIHandler):
    """Dispatches a request: 404 for unknown paths, 405 for other methods,
    401 without the permission (checked before the body is read), 400 for
    bad parameters, else the endpoint's response."""

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
        req = Request(environ)
        try:
            response = self.dispatch(req)
        except (HTTPException, Error) as exc:
            response = exc
        return response(environ, start_response)

    def dispatch(self, req: Request) -> Response:
        path = req.path_info or "/"
        command = self.commands.get(path)
        if command is not None:
            self.check(command, req)
            fields = req.GET.copy()
            uploads = []
            if req.method == "POST":
                form, uploads = parse_form(req)
                fields.extend(form)
            try:
                return command.render(req, **command.parse(fields))
            finally:
                for upload in uploads:
                    upload.discard()
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
            raise HTTPUnauthorized()
