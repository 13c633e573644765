"""HMAC-SHA256 signatures for the local backend's direct links."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

EXPIRES = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() accepts '²'


def sign(secret: bytes, method: str, handle: str, expires: int) -> str:
    """The signature of a request: method, handle and expiry time, nothing else."""
    message = f"{method}\n{handle}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def is_valid(secret: bytes, method: str, handle: str, expires: str, signature: str) -> bool:
    """Is the signature right for this request, and not expired?  Any string
    may come from a URL: a malformed one is invalid, never an exception."""
    if not EXPIRES.fullmatch(expires) or int(expires) < time.time():
        return False
    expected = sign(secret, method, handle, int(expires)).encode()
    # Bytes: compare_digest() refuses str with non-ASCII characters.
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))
