"""The message that a page shows after an upload or a deletion.

The redirect that follows the POST (post, redirect, get) carries it in its
query string, signed and dated by the demo's key: nobody else can put
words in the page, and an old link shows nothing.
"""

from __future__ import annotations

from urllib.parse import urlencode

from itsdangerous import BadData, URLSafeTimedSerializer
from webob import Response

from rex.web import redirect

from .database import get_secret

PARAMETER = "notice"
MAX_AGE = 600  # seconds
MESSAGES = {
    "uploaded": "The file {code} was uploaded.",
    "deleted": "The file {code} was deleted.",
}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_secret(), salt="rex.attach_demo.notice")


def redirect_with_notice(kind: str, code: str) -> Response:
    """A redirect to the list, which will say what was done (`kind`, one
    of `MESSAGES`) to the file of `code`."""
    return redirect("./?" + urlencode({PARAMETER: _serializer().dumps([kind, code])}))


def read_notice(token: str | None) -> str | None:
    """The message of a notice token; None unless it is one of ours,
    made less than `MAX_AGE` seconds ago."""
    if token is None:
        return None
    try:
        kind, code = _serializer().loads(token, max_age=MAX_AGE)
        return MESSAGES[kind].format(code=code)
    except (BadData, KeyError, TypeError, ValueError):
        return None
