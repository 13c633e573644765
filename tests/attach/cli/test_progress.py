"""The progress of long commands: a bar on a terminal, plain lines
otherwise, nothing with --quiet."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios

from cli_store import PACKAGE, TIMEOUT, Store
from helpers import rex_script


def test_a_terminal_gets_a_bar(local_store: Store) -> None:
    storage = local_store.storage
    for i in range(3):
        storage.add(f"{i}.txt", "x" * 1000)
    leader, follower = pty.openpty()  # standard error is a terminal, of 100 columns
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        process = subprocess.run(
            [rex_script(), "attach", "verify", PACKAGE, "--settings",
             str(local_store.settings_file)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=follower, timeout=TIMEOUT)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0
    text = shown.decode()
    assert "\r" in text  # redrawn in place
    assert "verify: 100%|" in text and "| 3/3 files, 2.9 KiB, " in text
    assert process.stdout.decode().splitlines()[-1].startswith("verified 3 attachments")


def test_plain_lines_otherwise_and_nothing_when_quiet(local_store: Store) -> None:
    local_store.storage.add("a.txt", "a")
    shown = local_store.run("verify")
    assert shown.err.startswith("verify: 1/1 files, 1 B, ") and shown.err.count("\n") == 1
    assert "\r" not in shown.err
    assert local_store.run("verify", "--quiet").err == ""
