"""docs/settings.rst lists every setting of every package, as the Setting
classes declare it: package, type, default, description (the class's
docstring) and whether it is a secret, in order; and each example is a
value the setting accepts."""

from __future__ import annotations

import inspect
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from declared_settings import declared, demo_settings  # noqa: E402

from rex.core import Validate  # noqa: E402
from rex.core.application import MANDATORY  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.rst"
ENTRY = re.compile(r"^``(\w+)``\n((?:(?:   .*)?\n)+)", re.M)
FIELD = re.compile(r"^   :(\w+): (.*)$", re.M)


def describe(validate: Validate) -> str:
    """A validator in words, for the type column."""
    kind = type(validate).__name__
    if kind == "MaybeVal":
        return describe(validate.validate) + ", or null"
    if kind == "IntVal":
        low, high = validate.min_bound, validate.max_bound
        if high is not None:
            return f"integer from {low} to {high}"
        return "integer" if low is None else f"integer, at least {low}"
    if kind == "MapVal":
        key, value = describe(validate.validate_key), describe(validate.validate_value)
        return f"mapping of {key} to {value}"
    words = {"StrVal": "string", "PathVal": "path", "DbVal": "database URL (SQLAlchemy)",
             "NetworksVal": "list of IP addresses and networks", "BoolVal": "Boolean"}
    if kind == "ChoiceVal":
        return "one of " + ", ".join(validate.choices)
    assert kind in words, f"describe() does not know {kind}: add it"
    return words[kind]


def expected_entries() -> list[dict[str, str]]:
    """What docs/settings.rst must say of each setting, in order."""
    return [{"name": setting.name, "Package": f"``{owner}``", "Type": describe(setting.validate),
             "Default": ("mandatory" if setting.default is MANDATORY else
                         f"``{yaml.safe_dump(setting.default, default_flow_style=True).strip()}``"
                         .replace("\n...", "")),
             "Secret": "yes: never shown in messages" if setting.secret else None,
             "description": " ".join(inspect.cleandoc(setting.__doc__ or "").split())}
            for setting, owner in demo_settings()]


def documented() -> list[dict[str, str]]:
    entries = []
    for name, body in ENTRY.findall(DOC.read_text() if DOC.exists() else ""):
        text, _, _ = body.partition("\n   :")
        fields = dict(FIELD.findall(body))
        entries.append({"name": name, **fields, "description": " ".join(text.split())})
    return entries


def expected_entry(entry: dict[str, str]) -> str:
    """The text of an entry, to paste into docs/settings.rst (its example aside)."""
    fields = "".join(f"   :{key}: {value}\n" for key, value in entry.items()
                     if key not in ("name", "description") and value is not None)
    return f"``{entry['name']}``\n   {entry['description']}\n\n{fields}   :Example: ``...``\n"


def test_every_setting_is_documented_as_declared() -> None:
    expected = expected_entries()
    found = {entry["name"]: entry for entry in documented()}
    for entry in expected:
        assert entry["name"] in found, f"docs/settings.rst lacks:\n\n{expected_entry(entry)}"
        got = {key: found[entry["name"]].get(key) for key in entry}
        assert got == entry, f"docs/settings.rst should say:\n\n{expected_entry(entry)}"
    assert [entry["name"] for entry in documented()] == [entry["name"] for entry in expected]


@pytest.mark.parametrize("entry", documented(), ids=lambda entry: entry["name"])
def test_each_example_is_accepted(entry: dict[str, str]) -> None:
    example = re.fullmatch(r"``(.*)``", entry.get("Example", ""))
    assert example, f"{entry['name']}: expected an :Example: ``NAME: VALUE``"
    (name, value), = yaml.safe_load(example.group(1)).items()
    assert name == entry["name"]
    declared(name).validate(value)
