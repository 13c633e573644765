"""The probe of ``rex attach check``: check's own object, never an attachment.

It lives at a handle that no attachment can have, under the date
``0000/00/00`` (`new_handle()` gives today's), so that it is written, read
and served through the storage interface as an attachment is, and then
deleted for good: no record can reference it and no upload link names it,
so it needs no tombstone, and every run of ``check`` leaves nothing behind.
What a check killed before its end left there, `gc` collects (`leftovers()`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from rex.core import Error, NotFoundError

from ..handle import is_handle
from ..storage import Storage

DATE = "0000/00/00"
NAME = "rex-attach-check.txt"


def new_probe() -> str:
    """A fresh handle for a probe."""
    return f"/{DATE}/{uuid.uuid4()}/{NAME}"


def is_probe(handle: str) -> bool:
    return is_handle(handle) and handle.startswith(f"/{DATE}/")


def discard(storage: Storage, handle: str) -> None:
    """Deletes the probe at `handle` for good, whatever is there (also a
    tombstone, had someone removed it meanwhile); refuses any other handle."""
    if not is_probe(handle):
        raise Error("Not a probe of rex attach check:", handle)
    storage._delete(handle)


def leftovers(storage: Storage, cutoff: float) -> Iterator[str]:
    """The probes that a check killed before its end left, written before
    `cutoff` (seconds since the epoch)."""
    prefix = f"/{DATE}/"
    for handle in storage:
        if handle < prefix:
            continue
        if not handle.startswith(prefix):
            break  # sorted: past the probes
        with contextlib.suppress(NotFoundError):  # deleted meanwhile
            if storage.stat(handle).st_mtime < cutoff:
                yield handle
