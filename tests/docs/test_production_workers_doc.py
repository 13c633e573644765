"""docs/production-workers.rst: its commands parse, and the defaults, names
and formats it states are the code's."""

from __future__ import annotations

import re
import shlex
from datetime import timedelta
from pathlib import Path

import click
import pytest

from rex.core import health
from rex.core.cli import main
from rex.web import logs, serve

DOC = (Path(__file__).resolve().parents[2] / "docs" / "production-workers.rst").read_text()


def commands() -> list[list[str]]:
    """The arguments of each ``$ rex ...`` line of the console blocks."""
    blocks = re.findall(r"^\.\. code-block:: console\n\n((?:(?:   .*)?\n)+)", DOC, re.M)
    lines = "".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line.strip())[2:] for line in lines if line.strip().startswith("$ rex ")]


@pytest.mark.parametrize("args", commands(), ids=" ".join)
def test_the_commands_parse(args: list[str]) -> None:
    command = main.get_command(click.Context(main), args[0])
    assert command is not None
    command.make_context(args[0], args[1:])


def test_the_defaults_are_the_code_s() -> None:
    assert commands(), "no command found"
    assert f"(by default {serve.WORKERS} × {serve.THREADS} = {serve.WORKERS * serve.THREADS})" in DOC
    assert f"``--idle-timeout``\nseconds (default {serve.IDLE_TIMEOUT}," in DOC
    assert f"each within {health.CHECK_TIMEOUT:g} seconds, and keeps the\nresult for " \
           f"{health.TTL:g} seconds" in DOC


def test_the_logs_are_as_shown() -> None:
    for name in logs.SECRET_PARAMETERS:
        assert re.search(rf"``{name}``", DOC, re.I), name
    for word in logs.SECRET_WORDS:
        assert f"``{word}``" in DOC
    environ = {"REMOTE_ADDR": "127.0.0.1", "REMOTE_USER": "alice", "REQUEST_METHOD": "GET",
               "RAW_URI": "/attach/2026/11/29/...?expires=1764430000&signature=s",
               "SERVER_PROTOCOL": "HTTP/1.1"}
    fields = logs.access_fields("200 OK", 1048576, environ, timedelta(seconds=0.051))
    assert f"+0000] {logs.access_line(fields)}\n" in DOC
    listed = re.search(r"and for a request (.*?)\n\(seconds\)", DOC, re.S).group(1)
    assert re.findall(r"``(\w+)``", listed) == list(fields)
