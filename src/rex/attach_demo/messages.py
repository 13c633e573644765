"""What a page says when a form is refused: the errors of the validators
and of the storage, which stay as they are for the library and for API
clients, in plain words for a person, each with the field it concerns."""

from __future__ import annotations

from collections.abc import Mapping

from jinja2.filters import do_filesizeformat

from rex.attach import get_storage
from rex.core import (Error, ExistsError, InsufficientStorageError, NotFoundError, TooLargeError,
                      UnavailableError)

from .csrf import ForbiddenError
from .fields import CODE, TITLE


def size_limit() -> str | None:
    """The largest file accepted (``attach_max_size``), in words: "100 MiB"."""
    limit = get_storage().max_size
    return None if limit is None else do_filesizeformat(limit, binary=True).replace(".0 ", " ")


def field_of(error: Error) -> str | None:
    """The form field an error names, if any: "While parsing parameter:",
    "Missing mandatory parameter:", "... in field:" and the like."""
    for message, payload in error.paragraphs:
        if message.endswith(("parameter:", "in field:")):
            return str(payload)
    return None


def explain(error: Error, typed: Mapping[str, str]) -> tuple[str | None, str]:
    """The field that an error of a form concerns (None: the whole form)
    and what it means, in plain words; `typed` holds what the form brought."""
    field = field_of(error)
    value = typed.get(field or "", "")
    if isinstance(error, ForbiddenError):
        return None, ("This page was open for too long, or your browser did not keep its "
                      "cookie: nothing was done. Please send the form again.")
    if isinstance(error, UnavailableError):
        return None, ("The database or the storage cannot be reached right now: nothing was "
                      "done. Please try again in a moment.")
    if isinstance(error, InsufficientStorageError):
        return None, "There is no room left to store the file: nothing was stored."
    if isinstance(error, ExistsError):
        return "code", f"A file with code {typed.get('code', '')} already exists."
    if isinstance(error, NotFoundError):
        return None, f"There is no file with code {typed.get('code', '')}."
    if field == "code":
        if not value:
            return field, "Enter a code."
        if len(value) > CODE.max_length:
            return field, f"The code may have at most {CODE.max_length} characters."
        return field, "The code may contain only letters, digits and underscores."
    if field == "title":
        if not value.strip():
            return field, "Enter a title."
        if len(value) > TITLE.max_length:
            return field, f"The title may have at most {TITLE.max_length:,} characters."
        return field, "The title may not contain NUL characters."
    if field == "attachment":
        if isinstance(error, TooLargeError):
            return field, f"The file is larger than {size_limit()}."
        return field, "Choose a file."
    if isinstance(error, TooLargeError):
        return None, "The form is too large."
    return None, "The form could not be read. Please send it again."
