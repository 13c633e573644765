"""Attachment storage: uploaded files kept in a local directory, Amazon S3 or
an S3-compatible server, or Google Cloud Storage, behind one interface."""

REQUIRES = ("rex.web",)

from .checksum import DamagedError  # noqa: E402
from . import health  # noqa: E402,F401  (its check)
from .handle import check_handle, sanitize_filename  # noqa: E402
from .local import LocalStorage  # noqa: E402
from .location import AttachLocation, AttachSpool  # noqa: E402
from .references import AttachmentReferences  # noqa: E402
from .response import AttachmentApp  # noqa: E402
from .settings import get_storage  # noqa: E402
from .storage import PresignedLink, Stat, Storage  # noqa: E402
from .upload import Attachment, AttachmentVal, download, upload  # noqa: E402

__all__ = [
    "Attachment", "AttachmentApp", "AttachmentVal", "AttachLocation", "AttachSpool", "DamagedError",
    "AttachmentReferences",
    "LocalStorage", "PresignedLink", "Stat", "Storage", "check_handle", "download",
    "get_storage", "sanitize_filename", "upload",
]
