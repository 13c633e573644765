"""Commands that the demo's pages post forms to: each field checked as it
arrives, and a refusal shown to a person as the page again, in plain words."""

from __future__ import annotations

from dataclasses import dataclass, field

from webob import Request, Response

from rex.core import Error
from rex.web import Command, Upload

from . import csrf
from .messages import explain
from .page import wants_page

SHOWN_LENGTH = 4000  # characters of a typed value that a page shows again at most


@dataclass
class Submitted:
    """What a form has brought so far: the values typed, whether its CSRF
    token came, and the errors found in them."""

    typed: dict[str, str] = field(default_factory=dict)
    errors: list[Error] = field(default_factory=list)
    token_came: bool = False

    def check(self, req: Request) -> None:
        """Raises the first error found so far, or a `csrf.ForbiddenError`
        for a form from a browser that did not bring its token."""
        if not self.token_came:
            self.token_came = True
            try:
                csrf.check(req, None)
            except csrf.ForbiddenError as error:
                self.errors.insert(0, error)
        if self.errors:
            raise self.errors[0]


def submitted(req: Request) -> Submitted:
    """What the request's form has brought so far."""
    return req.environ.setdefault("rex.attach_demo.submitted", Submitted())


@dataclass(frozen=True)
class Refusal:
    """A refused form as its page shows it again: the values typed, the
    reason next to each field it concerns, and one about the whole form."""

    values: dict[str, str]
    reasons: dict[str, str]
    general: str | None

    @property
    def first(self) -> str | None:
        """The first field with a reason: the one to focus."""
        return next(iter(self.reasons), None)


class FormCommand(Command):
    """A command that a page of the demo posts a form to.

    Each text field is checked as it arrives (`check_value()` adds checks
    of the command's own to its validator's); what is wrong is told at
    once when a file begins, before its content is read, or else when the
    form ends (`render()` calls ``submitted(req).check(req)``).  A browser
    is answered a refusal as the page again (`page()`) with the status of
    the error; other clients get the error itself, as text.
    """

    abstract = True

    def respond(self, req: Request) -> Response:
        try:
            self.check_request(req)
            return super().respond(req)
        except Error as error:
            if not wants_page(req):
                raise
            return self.refused(req, error)

    def check_request(self, req: Request) -> None:
        """Checks what the request's headers say, before its body is read;
        nothing by default."""

    def check_field(self, req: Request, name: str, value: str | Upload) -> None:
        form = submitted(req)
        if isinstance(value, Upload):
            super().check_field(req, name, value)
            if not value.filename:  # what browsers send when no file was chosen
                form.errors.append(Error("Expected an uploaded file, got none in field:", name))
            form.check(req)
            return
        form.typed[name] = value
        try:
            if name == csrf.FIELD:
                form.token_came = True
                csrf.check(req, value)
            super().check_field(req, name, value)
            self.check_value(name, value)
        except Error as error:
            form.errors.append(error)

    def check_value(self, name: str, value: str) -> None:
        """Checks a valid text field beyond its validator; nothing by default."""

    def refused(self, req: Request, error: Error) -> Response:
        """The page again, telling why the form was refused."""
        form = submitted(req)
        errors = form.errors + ([] if error in form.errors else [error])
        forbidden = [each for each in errors if isinstance(each, csrf.ForbiddenError)]
        reasons: dict[str | None, str] = {}
        for each in errors:
            concerned, reason = explain(each, form.typed)
            reasons.setdefault(concerned, reason)
        general = reasons.pop(None, None)
        values = {name: value[:SHOWN_LENGTH] for name, value in form.typed.items()}
        refusal = Refusal(values, reasons, general)  # type: ignore[arg-type]
        return self.page(req, (forbidden or errors)[0].status, refusal)

    def page(self, req: Request, status: str, refusal: Refusal) -> Response:
        """The page that shows the form again."""
        raise NotImplementedError
