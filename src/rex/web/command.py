"""Commands and locations: what a package answers over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from webob import Request, Response
from webob.multidict import MultiDict

from rex.core import MANDATORY, Error, Extension, Package, Validate

from .access import has_permission, package_permission
from .form import Upload, discard, parse_form


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

    def respond(self, req: Request) -> Response:
        """The answer to a request (its method and access already checked):
        its query string and POSTed form, validated against `parameters`,
        given to `render()`; uploaded files are discarded afterwards.  Each
        text field of the form goes through `check_field()` as it arrives.
        A command that answers some failures itself overrides this."""
        fields = req.GET.copy()
        uploads: list[Upload] = []
        if req.method == "POST":
            form, uploads = parse_form(req, lambda name, value: self.check_field(req, name, value))
            fields.extend(form)
        try:
            return self.render(req, **self.parse(fields))
        finally:
            discard(uploads)

    def check_field(self, req: Request, name: str, value: str | Upload) -> None:
        """Checks a field of a POSTed form as soon as it is there (a text
        field once it ends, a file field as it begins), before the rest of
        the body is read, so that a form bound to be refused is refused
        without reading a file behind it.  By default the field must be a
        parameter, and a text field's value must be valid (`parse()` checks
        the whole form again: a field may come twice, or in the query too).
        """
        parameter = self._parameter(name)
        if not isinstance(value, Upload):
            _validate(parameter, value)

    def parse(self, fields: MultiDict) -> dict[str, Any]:
        """Validates the query string and form fields against `parameters`."""
        for name in fields:
            self._parameter(name)
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
            params[parameter.name] = _validate(parameter, values[0])
        return params

    def _parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise Error("Received unexpected parameter:", name)


def _validate(parameter: Parameter, value: Any) -> Any:
    try:
        return parameter.validate(value)
    except Error as error:
        raise error.wrap("While parsing parameter:", parameter.name)

class Location(Endpoint):
    """A subtree of URLs under the package's URL (`path` is its prefix).

    `render()` gets the rest of the path after the prefix.
    """

    abstract = True
    path: ClassVar[str] = "/"

    def render(self, req: Request, path: str) -> Response:
        raise NotImplementedError
