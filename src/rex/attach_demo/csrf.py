"""CSRF tokens: a signed double-submit cookie.

Every form of the demo carries its browser's token in a hidden field, and
the browser keeps the same token in a cookie that only this site's own
pages send (``SameSite=Strict``) and no script reads (``HttpOnly``).  A
form is accepted when both are there, equal, and signed with the demo's
key, so that a token planted as a cookie by someone else (from a sibling
domain, say) is no good.

A request from no browser, with neither ``Origin`` nor ``Sec-Fetch-Site``
(browsers send one or both with every POST), cannot be forged by another
site: scripts and API clients post forms without a token, as before.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import Signer
from webob import Request, Response

from rex.core import Error

from .database import get_secret

FIELD = "csrf_token"  # the form field
COOKIE = "csrf_token"


class ForbiddenError(Error):
    """A form that its browser's token does not come with."""

    status = "403 Forbidden"


def _signer() -> Signer:
    return Signer(get_secret(), salt="rex.attach_demo.csrf")


def token(req: Request) -> str:
    """The browser's token: its cookie's when that one is good, else a new
    one, which `keep()` gives the browser."""
    cookie = req.cookies.get(COOKIE, "")
    if _signer().validate(cookie):
        return cookie
    return _signer().sign(secrets.token_urlsafe(32)).decode()


def keep(req: Request, response: Response, token: str) -> None:
    """Sets the token's cookie, unless the browser has it already, for the
    pages beside this one (the demo's pages are all in one directory)."""
    if req.cookies.get(COOKIE) != token:
        response.set_cookie(COOKIE, token, path=req.path.rsplit("/", 1)[0] + "/",
                            secure=req.scheme == "https", httponly=True, samesite="strict")


def is_browser(req: Request) -> bool:
    return "Origin" in req.headers or "Sec-Fetch-Site" in req.headers


def check(req: Request, submitted: str | None) -> None:
    """Refuses (`ForbiddenError`, 403) a form that does not bring its
    browser's token: the `submitted` one (None: no token came with the
    form, which only a client that is no browser may do)."""
    if submitted is None and not is_browser(req):
        return
    cookie = req.cookies.get(COOKIE, "")
    if not (submitted and hmac.compare_digest(submitted.encode(), cookie.encode())
            and _signer().validate(cookie)):
        raise ForbiddenError("Expected the CSRF token of the browser's cookie in field:", FIELD)
