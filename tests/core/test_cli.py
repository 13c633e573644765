"""The ``rex`` command line: settings in any order, user errors as one
paragraph and exit status 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import rex_script

from rex.core.cli import build_app, main, parse_settings


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_settings_come_from_the_file_then_the_arguments(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("attach_dir: /from/file\ndb: sqlite:///x\n")
    assert parse_settings(("attach_dir=/from/args",), str(path)) == [
        (str(path), {"attach_dir": "/from/file", "db": "sqlite:///x"}),
        ("the command line", {"attach_dir": "/from/args"})]
    app = build_app("rex.attach_demo", (f"attach_dir={tmp_path}", f"db=sqlite:///{tmp_path}/x"),
                    str(path))
    assert app.settings.attach_dir == str(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["--settings", "/no/such.yaml"], "rex: Cannot read the settings file /no/such.yaml: "
                                      "No such file or directory."),
    (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range 1<=x<=65535."),
    (["--workers", "0"], "Invalid value for '--workers': 0 is not in the range 1<=x<=256."),
    (["attach_dir"], "rex: Expected a setting as NAME=VALUE, got 'attach_dir'."),
    (["no_such_setting=1"], "rex: Got unknown setting:\n    no_such_setting"),
])
def test_user_errors_are_one_message_and_status_2(args: list[str], message: str) -> None:
    status, output = run("serve", "rex.attach_demo", *args)
    assert status == 2
    assert message in output


def test_broken_yaml_is_a_message(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("attach_dir: [unclosed\n")
    status, output = run("serve", "rex.attach_demo", "--settings", str(path))
    assert status == 2 and f"The settings file {path} is not valid YAML:" in output
    path.write_text("- a list\n")
    status, output = run("serve", "rex.attach_demo", "--settings", str(path))
    assert status == 2 and "must hold a mapping of setting names to values, not a list" in output


def test_settings_may_follow_options(tmp_path: Path) -> None:
    """`scripts/demo db=...` appends settings after the options it sets."""
    process = subprocess.run([rex_script(), "serve", "rex.attach_demo", "--port", "1",
                              "attach_dir=" + str(tmp_path / "missing")],
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert "Attachment storage must be an existing directory:" in process.stderr
    assert "Traceback" not in process.stderr


def test_version_and_help() -> None:
    status, output = run("--version")
    assert status == 0 and output.startswith("rex, version ")
    status, output = run("--help")
    assert status == 0 and "serve" in output and "`" not in output
    status, output = run("serve", "--help")
    assert "[default: 8080" in output


def test_an_unknown_setting_says_where_it_came_from_and_what_was_meant(tmp_path: Path) -> None:
    status, output = run("serve", "rex.attach_demo", "atach_dir=/x")
    assert status == 2
    assert ("rex: Got unknown setting:\n    atach_dir\nDeclared in:\n    the command line\n"
            "Did you mean:\n    attach_dir\n") in output
    path = tmp_path / "settings.yaml"
    path.write_text("attach_s3_bucket_name: b\n")
    status, output = run("serve", "rex.attach_demo", "--settings", str(path))
    assert status == 2
    assert (f"Got unknown setting:\n    attach_s3_bucket_name\nDeclared in:\n    {path}\n"
            "Did you mean:\n    attach_s3_bucket, attach_gcs_bucket\n") in output


def test_a_busy_port_is_one_message_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "attachments").mkdir()
        process = subprocess.run(
            [rex_script(), "serve", "rex.attach_demo", f"attach_dir={tmp_path}/attachments",
             f"db=sqlite:///{tmp_path}/demo.sqlite", "--port", str(port)],
            capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert process.stderr == (f"rex: Cannot listen on 127.0.0.1:{port}: port {port} is in use "
                              "by another program; choose another with --port, or stop that "
                              "program.\n")


def test_serve_help_is_plain_text_with_defaults() -> None:
    status, output = run("serve", "--help")
    assert status == 0 and "`" not in output
    output = " ".join(output.split())  # as wrapped to the terminal's width
    for default in ("[default: 127.0.0.1]", "[default: 8080;", "[default: 2;", "[default: 256;",
                    "[default: 60;", "[default: info]", "[default: text]"):
        assert default in output
