"""Commands and locations: what a package answers over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from webob import Request, Response
from webob.multidict import MultiDict

from rex.core import MANDATORY, Error, Extension, Package, Validate

from .access import has_permission, package_permission


@dataclass(frozen=True)
class Parameter:
    """A command parameter: its name, validator and default (else mandatory)."""

    name: str
    validate: Validate
    default: Any = MANDATORY


class Endpoint(Extension):
    """What commands and locations share: allowed methods and access."""

    abstract = True
    methods: ClassVar[tuple[str, ...]] = ("GET", "HEAD")
    access: ClassVar[str | None] = None  # None: the package's permission from `access`

    def __init__(self, package: Package) -> None:
        self.package = package

    def authorize(self, req: Request) -> bool:
        """Does the request have the permission this endpoint needs?"""
        return has_permission(req, self.access or package_permission(self.package.name))


class Command(Endpoint):
    """An exact path under the package's URL, with typed parameters.

    Subclasses set `path` and `parameters` and implement `render()`, which is
    called with the validated parameters as keyword arguments.
    """

    abstract = True
    path: ClassVar[str]
    parameters: ClassVar[list[Parameter]] = []

    def render(self, req: Request, **params: Any) -> Response:
        raise NotImplementedError

    def parse(self, fields: MultiDict) -> dict[str, Any]:
        """Validates the query string and form fields against `parameters`."""
        declared = {parameter.name for parameter in self.parameters}
        for name in fields:
            if name not in declared:
                raise Error("Received unexpected parameter:", name)
        params = {}
        for parameter in self.parameters:
            values = fields.getall(parameter.name)
            if len(values) > 1:
                raise Error("Received more than one value for parameter:", parameter.name)
            if not values:
                if parameter.default is MANDATORY:
                    raise Error("Missing mandatory parameter:", parameter.name)
                params[parameter.name] = parameter.default
                continue
            try:
                params[parameter.name] = parameter.validate(values[0])
            except Error as error:
                raise error.wrap("While parsing parameter:", parameter.name)
        return params


class Location(Endpoint):
    """A subtree of URLs under the package's URL (`path` is its prefix).

    `render()` gets the rest of the path after the prefix.
    """

    abstract = True
    path: ClassVar[str] = "/"

    def render(self, req: Request, path: str) -> Response:
        raise NotImplementedError
