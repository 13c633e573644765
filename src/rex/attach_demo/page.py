"""The demo's HTML pages, and the headers they go with."""

from __future__ import annotations

from typing import Any

from webob import Request, Response

from rex.web import render_template

from . import csrf

# The page's own origin only: its script and stylesheet are files of the
# application (see static.py), nothing inline; no framing; forms posted
# only to the application.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def wants_page(req: Request) -> bool:
    """Does the client read pages (a browser), rather than a script or an
    API client, which get errors as text?"""
    return "text/html" in req.headers.get("Accept", "")


def html_page(req: Request, template: str, status: str = "200 OK", **context: Any) -> Response:
    """The page of a template of the demo, given the browser's CSRF token
    for its forms (as ``csrf_token``), with the headers that keep browsers
    from running anything the page did not bring itself, framing it or
    second-guessing its type, and shared caches from keeping it (it holds
    the token of one browser)."""
    token = csrf.token(req)
    page = render_template("rex.attach_demo:" + template, csrf_token=token, **context)
    response = Response(page, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control = "private, no-cache"
    csrf.keep(req, response, token)
    return response
