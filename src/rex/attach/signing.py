"""HMAC-SHA256 signatures for the local backend's direct links."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: bytes, method: str, handle: str, expires: int) -> str:
    """The signature of a request: method, handle and expiry time, nothing else."""
    message = f"{method}\n{handle}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def is_valid(secret: bytes, method: str, handle: str, expires: str, signature: str) -> bool:
    """Is the signature right for this request, and not expired?"""
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(sign(secret, method, handle, int(expires)), signature)
