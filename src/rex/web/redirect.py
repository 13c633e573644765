"""Redirects whose ``Location`` is sent as written.

WebOb makes every ``Location`` absolute when it answers, from the request's
``Host`` header (``Response._abs_headerlist()``, and ``webob.exc``'s
redirects too), so a redirect would reflect whatever host a client, or a
cache poisoned by one, sent.  A relative reference is a valid ``Location``
(RFC 9110 10.2.2), which the browser resolves against the URL it asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from webob import Response


def redirect(location: str, status: int = 303) -> Response:
    """A redirect (303 See Other unless told) to `location`, a URL reference
    such as ``./``, ``../list`` or ``/path``, sent as given.  A reference
    that could leave the site by accident is refused: scheme-relative
    (``//host``) or with control characters, as WebOb checks for
    CVE-2024-42353."""
    if location.startswith(("//", "/\\")) or any(ord(c) < 32 or c == "\x7f" for c in location):
        raise ValueError(f"not a same-site URL reference: {location!r}")
    return _Redirect(status=status, location=location, content_type="text/plain", body=b"")


class _Redirect(Response):
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        start_response(self.status, self.headerlist)  # not `_abs_headerlist()`
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else self.app_iter
