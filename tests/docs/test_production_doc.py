"""docs/production.rst: its settings are settings, its commands parse, and
the nginx configuration it shows is what ``rex nginx`` prints for its
settings and command (the configuration tests/attach/test_nginx.py runs)."""

from __future__ import annotations

import os
import re
import shlex
import sys
import textwrap
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

sys.path.insert(0, os.path.dirname(__file__))

from declared_settings import declared  # noqa: E402

from rex.core.cli import main  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "production.rst"
# A code block, after the name of its file on a line of its own (``/etc/rex/settings.yaml``:).
BLOCK = re.compile(r"^(?:``([^`\n]+)``:\n\n)?\.\. code-block:: (\w+)\n\n((?:(?:   .*)?\n)+)", re.M)
ROOT = "/srv/rex"  # where the documented settings keep their files


def blocks(language: str) -> list[tuple[str | None, str]]:
    """The (file name or None, text) of each code block in this language."""
    return [(name or None, textwrap.dedent(text).strip("\n") + "\n")
            for name, kind, text in BLOCK.findall(DOC.read_text()) if kind == language]


def commands() -> list[list[str]]:
    """The ``rex`` commands of the console blocks, as arguments (without
    ``rex`` and an output redirection)."""
    found = []
    for _, text in blocks("console"):
        for line in re.split(r"\n(?=\$ )", text.replace("\\\n", " ")):
            words = shlex.split(line.removeprefix("$ "))
            if words[0] == "rex":
                found.append(words[1:words.index(">")] if ">" in words else words[1:])
    return found


@pytest.mark.parametrize("text", [text for _, text in blocks("yaml")])
def test_the_settings_are_settings(text: str) -> None:
    for name, value in yaml.safe_load(text).items():
        declared(name).validate(value)


@pytest.mark.parametrize("args", commands(), ids=" ".join)
def test_the_commands_parse(args: list[str]) -> None:
    command = main.get_command(click.Context(main), args[0])
    assert command is not None, f"no command rex {args[0]}"
    command.make_context(args[0], args[1:])


def test_the_nginx_configuration_is_what_rex_nginx_prints(tmp_path: Path) -> None:
    (settings_name, settings), = [block for block in blocks("yaml") if block[0]]
    (config_name, config), = blocks("nginx")
    args = next(args for args in commands() if args[0] == "nginx")
    assert args[args.index("--settings") + 1] == settings_name
    root = tmp_path / "srv"
    (root / "attachments").mkdir(parents=True)
    (tmp_path / "settings.yaml").write_text(settings.replace(ROOT, str(root)))
    args[args.index("--settings") + 1] = str(tmp_path / "settings.yaml")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.replace(str(root), ROOT) == config
    assert config_name == "/etc/nginx/conf.d/rex.conf"
