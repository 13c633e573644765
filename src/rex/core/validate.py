"""Validators: callables that check a value and return it in canonical form.

Each raises `Error` naming what was expected and what it got.  Values may come
from Python, YAML or strings (command line, query string), so validators of
non-string types also accept their string spelling.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from .error import Error, mask_passwords

SHOWN_LENGTH = 200  # characters of a rejected value that an error shows at most


def shown(value: Any) -> str:
    """A rejected value as an error shows it: its `repr`, without any URL
    password (hidden before the cut, so that no part of one is left), cut
    to `SHOWN_LENGTH` characters: a 400 answer need not echo a megabyte."""
    text = mask_passwords(repr(value))
    if len(text) > SHOWN_LENGTH:
        text = text[:SHOWN_LENGTH] + "..."
    return text


class Validate:
    """Base class of validators."""

    def __call__(self, value: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(repr(arg) for arg in self._args())
        return f"{self.__class__.__name__}({args})"

    def _args(self) -> tuple:
        return ()

    def _fail(self, expected: str, value: Any, payload: Any = None) -> Error:
        return Error(expected, payload).wrap("Got:", shown(value))


class AnyVal(Validate):
    """Accepts any value."""

    def __call__(self, value: Any) -> Any:
        return value


class StrVal(Validate):
    """A string, optionally no longer than `max_length` characters (checked
    first, so that a huge value costs no regular expression) and matching a
    regular expression in full."""

    def __init__(self, pattern: str | None = None, max_length: int | None = None) -> None:
        self.pattern = pattern
        self.max_length = max_length
        self._regex = re.compile(pattern) if pattern is not None else None

    def _args(self) -> tuple:
        if self.max_length is not None:
            return (self.pattern, self.max_length)
        return (self.pattern,) if self.pattern is not None else ()

    def __call__(self, value: Any) -> str:
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise self._fail("Expected a valid UTF-8 string", value) from None
        if not isinstance(value, str):
            raise self._fail("Expected a string", value)
        if "\0" in value:
            raise self._fail("Expected a string without NUL characters", value)
        if self.max_length is not None and len(value) > self.max_length:
            raise self._fail("Expected a string no longer than:", value,
                             f"{self.max_length} characters")
        if self._regex is not None and not self._regex.fullmatch(value):
            raise self._fail("Expected a string matching:", value, f"/{self.pattern}/")
        return value


class PathVal(StrVal):
    """A file system path; ``{cwd}`` expands to the working directory and the
    result is absolute."""

    def __init__(self) -> None:
        super().__init__()

    def __call__(self, value: Any) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        value = super().__call__(value)
        if not value:
            raise self._fail("Expected a non-empty path", value)
        return os.path.abspath(value.replace("{cwd}", os.getcwd()))


class IntVal(Validate):
    """An integer, optionally within bounds (inclusive)."""

    def __init__(self, min_bound: int | None = None, max_bound: int | None = None) -> None:
        self.min_bound = min_bound
        self.max_bound = max_bound

    def _args(self) -> tuple:
        if self.max_bound is not None:
            return (self.min_bound, self.max_bound)
        return (self.min_bound,) if self.min_bound is not None else ()

    def __call__(self, value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail("Expected an integer", value)
        if self.min_bound is not None and value < self.min_bound:
            raise self._fail("Expected an integer no less than:", value, self.min_bound)
        if self.max_bound is not None and value > self.max_bound:
            raise self._fail("Expected an integer no greater than:", value, self.max_bound)
        return value


class BoolVal(Validate):
    """A Boolean; also ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0``."""

    TRUE = {"true", "yes", "on", "1"}
    FALSE = {"false", "no", "off", "0", ""}

    def __call__(self, value: Any) -> bool:
        if isinstance(value, str) and value.lower() in self.TRUE | self.FALSE:
            return value.lower() in self.TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self._fail("Expected a Boolean value", value)


class ChoiceVal(Validate):
    """One of the given strings."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def _args(self) -> tuple:
        return self.choices

    def __call__(self, value: Any) -> str:
        if value not in self.choices:
            raise self._fail("Expected one of:", value, ", ".join(self.choices))
        return value


class MaybeVal(Validate):
    """``None`` or a value accepted by the given validator."""

    def __init__(self, validate: Validate) -> None:
        self.validate = validate

    def _args(self) -> tuple:
        return (self.validate,)

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.validate(value)


def _parse_yaml(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


class SeqVal(Validate):
    """A list of values accepted by the item validator (a YAML string too)."""

    def __init__(self, validate_item: Validate | None = None) -> None:
        self.validate_item = validate_item or AnyVal()

    def _args(self) -> tuple:
        return (self.validate_item,)

    def __call__(self, value: Any) -> list:
        value = _parse_yaml(value)
        if not isinstance(value, (list, tuple)):
            raise self._fail("Expected a sequence", value)
        items = []
        for index, item in enumerate(value):
            try:
                items.append(self.validate_item(item))
            except Error as error:
                raise error.wrap("While validating sequence item", f"#{index + 1}")
        return items


class MapVal(Validate):
    """A mapping with validated keys and values (a YAML string too)."""

    def __init__(self, validate_key: Validate | None = None,
                 validate_value: Validate | None = None) -> None:
        self.validate_key = validate_key or AnyVal()
        self.validate_value = validate_value or AnyVal()

    def _args(self) -> tuple:
        return (self.validate_key, self.validate_value)

    def __call__(self, value: Any) -> dict:
        value = _parse_yaml(value)
        if not isinstance(value, Mapping):
            raise self._fail("Expected a mapping", value)
        result = {}
        for key, item in value.items():
            key = self.validate_key(key)
            try:
                result[key] = self.validate_value(item)
            except Error as error:
                raise error.wrap("While validating mapping value for key:", repr(key))
        return result
