"""What the demo's forms accept: a code, a title, a token, a file name."""

from __future__ import annotations

import re

from rex.core import StrVal

from .database import file_table

# A code is a word no longer than its column: PostgreSQL refuses a longer
# one, SQLite would store it; both must answer 400 alike.
CODE = StrVal(r"\w+", max_length=file_table.c.code.type.length)
TITLE = StrVal(r"(?s).*\S.*", max_length=1000)
TOKEN = StrVal(max_length=200)  # a CSRF token (see csrf.py) is about 90 characters
NAME_LENGTH = 255  # characters of an original file name that are kept


def original_name(filename: str) -> str:
    """The name of an uploaded file as the list shows it: its base name
    (some browsers send a whole path), cut to `NAME_LENGTH` characters."""
    return re.split(r"[/\\]", filename)[-1][:NAME_LENGTH]
