"""The health check of the attachment storage (see `rex.core.health`)."""

from __future__ import annotations

from rex.core.health import HealthCheck

from .settings import get_storage


class StorageHealth(HealthCheck):
    """The storage is usable, as the application checked it at start
    (`Storage.verify()`: the directory is writable, the bucket answers
    these credentials, within seconds)."""

    name = "storage"

    def __call__(self) -> None:
        get_storage().verify()
