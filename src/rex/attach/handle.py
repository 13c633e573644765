"""Attachment handles: ``/YYYY/MM/DD/{uuid4}/{name}``.

A handle is opaque to users but strict here: anything that does not match
exactly is refused before it comes near a file system path or an object key.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import unicodedata
import uuid
from typing import Any

from rex.core import Error

MAX_NAME_BYTES = 128
MAX_EXT_BYTES = 32
HANDLE = re.compile(
    r"/(?P<date>\d{4}/\d{2}/\d{2})"
    r"/(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
    r"/(?P<name>[\w.-]{1,128})")


def sanitize_filename(original: str) -> str:
    """A safe file name from a user-supplied one.

    Keeps the base name only, turns spaces into ``_``, keeps word characters,
    ``.`` and ``-``, adds ``.dat`` when there is no extension and fits the name
    in 128 bytes of UTF-8 keeping the extension; never empty, never hidden.
    """
    name = unicodedata.normalize("NFC", str(original))
    name = re.split(r"[/\\]", name)[-1]
    name = re.sub(r"\s", "_", name)
    name = re.sub(r"[^\w.-]", "", name)
    stem, ext = os.path.splitext(name)
    if ext in ("", "."):
        stem, ext = name.rstrip("."), ".dat"
    ext = _truncate(ext, MAX_EXT_BYTES)
    stem = _truncate(stem.lstrip("."), MAX_NAME_BYTES - len(ext.encode())) or "_"
    return stem + ext


def _truncate(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def new_handle(name: str) -> str:
    """A fresh handle for a file of the given (original) name."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
    return f"/{date}/{uuid.uuid4()}/{sanitize_filename(name)}"


def check_handle(handle: Any) -> str:
    """The handle itself if it is well-formed, else `Error`."""
    if not (isinstance(handle, str) and _well_formed(handle)):
        raise Error("Ill-formed attachment handle:", repr(handle) if not isinstance(handle, str) else handle)
    return handle


@functools.lru_cache(maxsize=4096)  # a request checks its handle several times
def _well_formed(handle: str) -> bool:
    return bool(HANDLE.fullmatch(handle)) and sanitize_filename(handle_name(handle)) == handle_name(handle)


def is_handle(handle: Any) -> bool:
    try:
        check_handle(handle)
    except Error:
        return False
    return True


def handle_name(handle: str) -> str:
    """The file name a handle ends with."""
    return handle.rsplit("/", 1)[-1]
