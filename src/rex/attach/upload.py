"""From a submitted form to a stored attachment, and back to an HTTP response."""

from __future__ import annotations

from typing import Any, BinaryIO, NamedTuple

from rex.core import Error, Validate
from rex.web import Upload

from .offload import Offloaded, serve
from .response import AttachmentApp
from .settings import get_storage


class Attachment(NamedTuple):
    """An uploaded file: its original name and a readable binary file."""

    name: str
    content: BinaryIO


class AttachmentVal(Validate):
    """Accepts an uploaded file: a form's file field (`rex.web.Upload` or
    `cgi.FieldStorage`), an `Attachment` or a ``(name, file)`` pair."""

    def __call__(self, value: Any) -> Attachment:
        if isinstance(value, Attachment):
            return value
        if isinstance(value, Upload):
            if value.filename:
                return Attachment(value.filename, value)  # type: ignore[arg-type]
        elif isinstance(value, tuple) and len(value) == 2:
            name, content = value
            if isinstance(name, str) and hasattr(content, "read"):
                return Attachment(name, content)
        elif getattr(value, "filename", None) and hasattr(getattr(value, "file", None), "read"):
            return Attachment(value.filename, value.file)  # cgi.FieldStorage
        raise Error("Expected an uploaded file").wrap("Got:", repr(value))


def upload(attachment: Any) -> str:
    """Adds an uploaded file to the storage; returns the attachment handle."""
    name, content = AttachmentVal()(attachment)
    return get_storage().add(name, content)


def download(handle: str) -> AttachmentApp | Offloaded:
    """The attachment as an HTTP response application, its bytes sent by
    the application, nginx or the store, as `attach_serve` says."""
    return serve(handle)
