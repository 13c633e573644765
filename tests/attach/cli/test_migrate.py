"""``rex attach migrate`` as a subprocess: from a local directory to every
backend and back, killed with SIGKILL and run again, and the application
served from the target afterwards."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from backends import Backend
from cli_store import PACKAGE, TIMEOUT, Store, new_store
from helpers import rex_script, serve

DIRECTIONS = ["to", "from"]  # local to the backend, or the backend to local


def sides(store: Store, local_store: Store, direction: str) -> tuple[Store, Store]:
    """The source and the target of a migration; the target's settings file
    names the source's database: the application moves, its records stay."""
    source, target = (local_store, store) if direction == "to" else (store, local_store)
    target.settings["db"] = source.settings["db"]
    target.settings_file.write_text(yaml.safe_dump(target.settings))
    target.env.update(source.env)
    return source, target


def fill(store: Store, rng: random.Random, count: int, big: int = 0) -> dict[str, bytes]:
    """Adds `count` attachments of seeded random sizes (and `big` ones over
    the multipart threshold); returns the content of each handle."""
    storage = store.storage
    contents = {}
    for i in range(count + big):
        size = rng.choice([0, 1, 1000, 70_000, 1 << 20]) if i < count else (17 << 20) + i
        content = rng.randbytes(size)
        contents[storage.add(f"Fichier n°{i}.bin", content)] = content
    return contents


def digests(store: Store) -> dict[str, str]:
    """What the store holds, read behind the command's back."""
    storage = store.storage
    found = {}
    for handle in storage:
        with storage.open(handle) as stream:
            found[handle] = hashlib.sha256(stream.read()).hexdigest()
    return found


def expected(contents: dict[str, bytes]) -> dict[str, str]:
    return {handle: hashlib.sha256(content).hexdigest() for handle, content in contents.items()}


def size_of(contents: dict[str, bytes]) -> str:
    from rex.attach.cli.progress import size

    return size(sum(map(len, contents.values())))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_migrate_copies_every_attachment_and_the_application_follows(
        store: Store, local_store: Store, direction: str, tmp_path: Path) -> None:
    source, target = sides(store, local_store, direction)
    contents = fill(source, random.Random(7), 6, big=1)
    source.add_rows({f"c{i}": handle for i, handle in enumerate(sorted(contents))})
    before = {handle: source.storage.stat(handle) for handle in contents}
    result = source.run("migrate", "--to", str(target.settings_file), "--jobs", "3")
    assert (result.status, result.lines) == (0, [
        f"copied 7 files ({size_of(contents)}), skipped 0 (0 B), failed 0"])
    assert result.err.splitlines()[-1].startswith("migrate: 7/7 files, ")
    assert digests(target) == expected(contents)
    assert digests(source) == expected(contents)  # the source is only read
    assert {handle: source.storage.stat(handle) for handle in contents} == before
    again = source.run("migrate", "--to", str(target.settings_file), "-q")
    assert (again.status, again.lines, again.err) == (0, [
        f"copied 0 files (0 B), skipped 7 ({size_of(contents)}), failed 0"], "")
    with serve(tmp_path, "--settings", str(target.settings_file)) as url:
        for i, handle in enumerate(sorted(contents)):
            response = requests.get(f"{url}/download", params={"code": f"c{i}"}, timeout=60)
            assert response.status_code == 200 and response.content == contents[handle]


@pytest.mark.slow
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_migrate_killed_at_a_random_point_resumes(store: Store, local_store: Store,
                                                  direction: str) -> None:
    rng = random.Random(f"kill-{store.backend}-{direction}")
    source, target = sides(store, local_store, direction)
    contents = fill(source, rng, 60, big=2)
    kill_after = rng.randrange(1, 30)  # attachments in the target when it is killed
    command = [rex_script(), "attach", "migrate", PACKAGE, "--settings",
               str(source.settings_file), "--to", str(target.settings_file), "--jobs", "4"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, **source.env},
                               start_new_session=True)
    try:
        # Run in slices, stopped while the target is counted: the process
        # cannot finish between the count and the kill.
        while True:
            os.kill(process.pid, signal.SIGSTOP)
            _, status = os.waitpid(process.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status), "migrate ended before the kill"
            if len(list(target.storage)) >= kill_after:
                break
            os.kill(process.pid, signal.SIGCONT)
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL  # killed while it worked
    copied = set(target.storage)
    assert kill_after <= len(copied) < len(contents)
    resumed = source.run("migrate", "--to", str(target.settings_file), "--jobs", "4", "-q")
    assert resumed.status == 0, resumed.out
    # A store may still complete a write that the killed process had sent.
    summary = re.fullmatch(r"copied (\d+) files \(.*\), skipped (\d+) \(.*\), failed 0",
                           resumed.lines[-1])
    assert summary and int(summary[2]) >= len(copied), resumed.lines[-1]
    assert int(summary[1]) + int(summary[2]) == len(contents)
    assert digests(target) == expected(contents)
    verified = target.run("verify", "-q")
    assert verified.status == 0 and ", 0 damaged, " in verified.lines[-1]


def test_migrate_never_replaces_what_the_target_holds(store: Store, local_store: Store) -> None:
    source, target = sides(store, local_store, "to")
    contents = fill(source, random.Random(3), 3)
    taken, removed, free = sorted(contents)
    target.put(taken[1:], b"something else")
    target_storage = target.storage
    target_storage.write(removed, io.BytesIO(contents[removed]))
    target_storage.remove(removed)
    result = source.run("migrate", "--to", str(target.settings_file), "-q")
    assert result.status == 1
    failures = dict(line.removeprefix("failed  ").split(": ", 1) for line in result.lines[:-1])
    assert failures.pop(removed) == "the target removed this handle; it cannot be used again there"
    assert failures.pop(taken).startswith("the target holds other content at this handle (CRC32C ")
    assert failures == {}
    assert result.lines[-1] == (f"copied 1 file ({size_of({free: contents[free]})}), "
                                "skipped 0 (0 B), failed 2")
    with target_storage.open(taken) as stream:
        assert stream.read() == b"something else"
    assert digests(target)[free] == expected(contents)[free]


def test_migrate_does_not_copy_a_damaged_attachment(local_store: Store, tmp_path: Path) -> None:
    source = local_store
    target = new_store(Backend("local", {}, enforces_signatures=True, enforces_size=True),
                       tmp_path)
    storage = source.storage
    damaged, sound = storage.add("damaged.bin", b"x" * 5000), storage.add("sound.bin", b"y")
    source.damage(damaged[1:], 1234)
    result = source.run("migrate", "--to", str(target.settings_file), "-q")
    assert sound in target.storage
    assert result.status == 1
    assert result.lines[0] == (f"failed  {damaged}: Attachment is damaged: its CRC32C does not "
                               f"match: {damaged}")
    assert damaged not in target.storage  # refused before it was complete


def test_migrate_refuses_a_target_it_cannot_build(local_store: Store, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"attach_dir": str(tmp_path / "missing")}))
    result = local_store.run("migrate", "--to", str(wrong))
    assert result.status == 2 and result.out == ""
    assert result.err.startswith(f"rex: The target's settings ({wrong}) are refused: "
                                 "Attachment storage must be an existing directory:")
    assert local_store.run("migrate").status == 2  # no --to
