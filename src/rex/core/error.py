"""The one exception type of RexDB: an error message made of paragraphs."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from webob import Response


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

    As a WSGI application the error answers ``400 Bad Request`` with that text.
    """

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
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"

    def __call__(self, environ: dict, start_response: Any) -> Iterable[bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        if "text/html" in accept:
            body = f"<!DOCTYPE html>\n<title>400 Bad Request</title>\n<pre>{html.escape(str(self))}</pre>\n"
            response = Response(body, status=400, content_type="text/html")
        else:
            response = Response(str(self) + "\n", status=400, content_type="text/plain")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response(environ, start_response)


# Show as `rex.core.Error` in tracebacks, where users import it from.
Error.__module__ = "rex.core"
