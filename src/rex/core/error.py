"""The exceptions of RexDB: an error message made of paragraphs, and one
subclass per meaning, each with the HTTP status that meaning has."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from webob import Response

# The password of a URL (``postgresql://user:PASSWORD@host/db``): from the
# colon after the user name to the first ``@`` (as SQLAlchemy reads it, so a
# ``/`` or a space in it is hidden too), then on to the last ``@`` of the
# same word (so is an unencoded ``@``).
_URL_PASSWORD = re.compile(r"(://[^/?#@\s:]*:)[^@\n]*@(?:\S*@)?")


def mask_passwords(text: str) -> str:
    """The text with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


class Error(Exception):
    """An error meant for the user: a message, then paragraphs of context.

    Each paragraph is a message with an optional payload (a value the message
    is about); `wrap()` adds a paragraph as the error travels outward, so the
    final text reads from the cause to its context::

        Expected an integer
        Got:
            'ten'
        While validating setting:
            attach_max_size

    A plain `Error` is bad input.  Subclasses say what else went wrong, so
    that callers can tell "not there" from "broken" (`NotFoundError`,
    `ExistsError`, `TooLargeError`, `UnavailableError`, `InsufficientStorageError`).
    As a WSGI application an error answers its `status` with that text.

    The text never shows the password of a URL (see `mask_passwords()`):
    a payload may be a database URL a user mistyped.
    """

    status = "400 Bad Request"

    def __init__(self, message: str, payload: Any = None) -> None:
        super().__init__(message)
        self.paragraphs: list[tuple[str, Any]] = [(message, payload)]

    def wrap(self, message: str, payload: Any = None) -> Error:
        """Adds a paragraph of context and returns the error itself."""
        self.paragraphs.append((message, payload))
        return self

    def __str__(self) -> str:
        lines = []
        for message, payload in self.paragraphs:
            lines.append(message)
            if payload is not None:
                lines.extend("    " + line for line in str(payload).splitlines() or [""])
        return mask_passwords("\n".join(lines))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        if "text/html" in accept:
            body = (f"<!DOCTYPE html>\n<title>{html.escape(self.status)}</title>\n"
                    f"<pre>{html.escape(str(self))}</pre>\n")
            response = Response(body, status=self.status, content_type="text/html")
        else:
            response = Response(str(self) + "\n", status=self.status, content_type="text/plain")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if self.status.startswith("503"):
            response.headers["Retry-After"] = "5"
        return response(environ, start_response)


class NotFoundError(Error):
    """The thing asked for is not there (and nothing else is wrong)."""

    status = "404 Not Found"


class ExistsError(Error):
    """A create-only write found the thing there already."""

    status = "409 Conflict"


class TooLargeError(Error):
    """The input is larger than a limit allows."""

    status = "413 Payload Too Large"


class InsufficientStorageError(Error):
    """The store has no room left (a full disk, an exceeded quota)."""

    status = "507 Insufficient Storage"


class UnavailableError(Error):
    """A store or database cannot be reached or fails: an outage, not a
    fault of the request; trying again later may work."""

    status = "503 Service Unavailable"


for _error in (Error, NotFoundError, ExistsError, TooLargeError, InsufficientStorageError,
               UnavailableError):
    # Show as `rex.core.Error` in tracebacks, where users import it from.
    _error.__module__ = "rex.core"
