"""HMAC-SHA256 signatures for the local backend's direct links."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

EXPIRES = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() accepts '²'


def sign(secret: bytes, method: str, handle: str, params: Mapping[str, str]) -> str:
    """The signature of a request: its method, handle and query parameters
    (``expires`` and, for an upload, ``size`` and ``md5``), nothing else."""
    message = "\n".join([method, handle, *(f"{name}={params[name]}" for name in sorted(params))])
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def is_valid(secret: bytes, method: str, handle: str, query: Mapping[str, str]) -> bool:
    """Is the request's ``signature`` right for it, and not expired?  Any
    string may come from a URL: a malformed one is invalid, never an error."""
    params = {name: value for name, value in query.items() if name != "signature"}
    expires = params.get("expires", "")
    if not EXPIRES.fullmatch(expires) or int(expires) < time.time():
        return False
    expected = sign(secret, method, handle, params).encode()
    # Bytes: compare_digest() refuses str with non-ASCII characters.
    return hmac.compare_digest(expected, query.get("signature", "").encode("utf-8",
                                                                           "surrogatepass"))
