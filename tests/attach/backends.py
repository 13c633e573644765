"""The backends that the contract suite runs against, each on a real server.

A backend module's `start(tmp)` returns a `Backend`: the settings that choose
it, and what its server enforces (some test servers accept any signature).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rex.attach.local import CRC32C

MAX_SIZE = 1 << 20  # attach_max_size in the contract suite


@dataclass
class Backend:
    name: str
    settings: dict[str, Any]
    enforces_signatures: bool  # the server refuses tampered and expired links
    enforces_size: bool  # the server refuses uploads over attach_max_size
    # the server honours a link's create-only precondition (else `create_only`)
    enforces_preconditions: bool = True
    env: dict[str, str] = field(default_factory=dict)  # for processes using it
    stop: Callable[[], None] = lambda: None
    # Where the server does not check signatures: an offline check of a link
    # as the real service would do it, `verify(link, method, handle) -> bool`.
    verify: Callable[[Any, str, str], bool] | None = None
    # Where the server does not check upload sizes: does the upload link's
    # policy admit this many bytes, `allows_size(link, size) -> bool`.
    allows_size: Callable[[Any, int], bool] | None = None
    # Where the server ignores preconditions of links: does the link sign
    # one that makes it create-only, `create_only(link, handle) -> bool`.
    create_only: Callable[[Any, str], bool] | None = None
    # Flips one bit of an attachment's stored content at a byte `offset`,
    # behind rex.attach's back, its recorded CRC32C left as it was:
    # `damage(handle, offset)`.
    damage: Callable[[str, int], None] = lambda handle, offset: None
    # Makes an attachment one written before checksums were recorded, where
    # the store can hold one without (GCS cannot): `forget_checksum(handle)`.
    forget_checksum: Callable[[str], None] | None = None

    def refuses(self, response: Any, link: Any, method: str, handle: str) -> bool:
        """Was (or would be, on the real service) this request refused?"""
        if self.enforces_signatures:
            return response.status_code in (400, 403)
        assert self.verify is not None, f"{self.name}: no offline link check"
        return not self.verify(link, method, handle)

    def refuses_size(self, response: Any, link: Any, size: int) -> bool:
        """Was (or would be, on the real service) this upload of `size` bytes refused?"""
        if self.enforces_size:
            return response.status_code in (400, 403, 413)
        assert self.allows_size is not None, f"{self.name}: no offline size check"
        return not self.allows_size(link, size)


def flip(path: Path, offset: int) -> None:
    """Flips the lowest bit of the byte at `offset` of a file, in place."""
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ 1]))


def start_local(tmp: Path) -> Backend:
    """A directory; links are signed and checked by rex.attach itself."""
    path = tmp / "attachments"
    path.mkdir()
    return Backend("local", {"attach_dir": str(path)}, enforces_signatures=True,
                   enforces_size=True,
                   damage=lambda handle, offset: flip(path / handle[1:], offset),
                   forget_checksum=lambda handle: os.removexattr(path / handle[1:], CRC32C))
