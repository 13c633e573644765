"""docs/operations.rst, run: its settings files are written as shown, its
console commands run in order in one directory (through bash, the project's
``rex`` first on PATH), and what each prints must match what the chapter
shows.  In the shown output, ``...`` stands for any text within a line, and
a line of ``...`` alone for any number of lines.  The S3 section runs on a
radosgw of its own, whose address and keys stand in for the shown ones."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import free_port  # noqa: E402
from servers import S3Server, start_radosgw  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.rst"
# A code block, after the name of its file on a line of its own (``settings.yaml``:).
BLOCK = re.compile(r"^(?:``([^`\n]+)``:\n\n)?\.\. code-block:: (\w+)\n\n((?:(?:   .*)?\n)+)", re.M)
SHOWN_ENDPOINT, SHOWN_KEY, SHOWN_SECRET = ("http://127.0.0.1:7480", "STUDYFILESKEY",
                                           "study-files-secret")
SHOWN_PORT = "8080"
TIMEOUT = 120  # seconds for any one command

pytestmark = pytest.mark.s3


def blocks() -> list[tuple[str | None, str, str]]:
    """(file name or None, language, text) of each code block, in order."""
    return [(name or None, kind, textwrap.dedent(text).strip("\n") + "\n")
            for name, kind, text in BLOCK.findall(DOC.read_text())]


def session(text: str) -> Iterator[tuple[str, list[str]]]:
    """The commands of a console block and the lines each should print; a
    command ending in a backslash goes on in the next line's ``>``."""
    command: str | None = None
    output: list[str] = []
    continued = False
    for line in text.splitlines():
        if continued:
            command += "\n" + line.removeprefix(">")  # type: ignore[operator]
        elif line.startswith("$ "):
            if command is not None:
                yield command, output
            command, output = line[2:], []
        else:
            output.append(line)
        continued = line.endswith("\\")
    if command is not None:
        yield command, output


def matches(expected: list[str], actual: list[str]) -> bool:
    """Does the output match the shown one (``...`` as above; runs of spaces
    are one)?"""
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line.strip() == "..." else
        r"[^\S\n]*" + r"[^\S\n]*".join(r"[^\n]*?".join(re.escape(part) for part in word.split("..."))
                         for word in line.split()) + r"[^\S\n]*\n"
        for line in expected)
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_radosgw(tmp_path_factory.mktemp("radosgw"))
    try:
        boto3.session.Session().client(
            "s3", endpoint_url=server.endpoint, region_name=server.region,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key).create_bucket(Bucket="study-files")
        yield server
    finally:
        server.stop()


def test_the_chapter_runs_as_shown(tmp_path: Path, s3_server: S3Server) -> None:
    port = str(free_port())
    ours = {SHOWN_ENDPOINT: s3_server.endpoint, SHOWN_KEY: s3_server.access_key,
            SHOWN_SECRET: s3_server.secret_key, f"--port {SHOWN_PORT}": f"--port {port}",
            f"127.0.0.1:{SHOWN_PORT}/": f"127.0.0.1:{port}/"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    state = tmp_path / ".state.sh"  # the shell's variables, from one command to the next
    names: set[str] = set()
    ran = 0
    try:
        for name, kind, text in blocks():
            if kind == "yaml" and name:
                (tmp_path / name).write_text(replace(text, ours))
            if kind != "console":
                continue
            for command, shown in session(text):
                names |= set(re.findall(r"(\w+)=\$", command))
                script = (f"[ -f {state} ] && source {state}\n{replace(command, ours)}\n"
                          f"status=$?\n" + (f"declare -p {' '.join(sorted(names))} > {state}\n"
                                            if names else "") + "exit $status\n")
                done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script],
                                      cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=TIMEOUT)
                printed = replace(done.stdout.decode(), {ours[key]: key for key in ours})
                assert matches(shown, printed.splitlines()), (
                    f"$ {command}\nshown:\n" + "\n".join(shown) + f"\nprinted:\n{printed}")
                ran += 1
    finally:
        stop_background(state)
    assert ran >= 15


def replace(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def stop_background(state: Path) -> None:
    """Stops what the chapter started in the background and left running
    (if a command failed before it stopped it): the pids saved from ``$!``."""
    if state.exists():
        for pid in re.findall(r'declare -- server="(\d+)"', state.read_text()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
