"""``rex attach orphans`` as a subprocess, on every backend: attachments
that no record references, records whose attachment is missing, and those
that a server killed during uploads leaves."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
import yaml
from cli_store import Store, Uploads, content, locked, wait_until
from helpers import MISSING, PG_PASSWORD, serve, start_postgres
from sqlalchemy import select

from rex.attach_demo import file_table
from rex.db import get_db


def test_orphans_are_unreferenced_attachments_and_missing_ones(store: Store) -> None:
    storage = store.storage
    referenced, unreferenced, removed = (storage.add(name, name) for name in
                                         ("kept.txt", "lost.txt", "removed.txt"))
    storage.remove(removed)
    assert store.run("orphans").lines == [f"unreferenced {h}" for h in sorted([
        referenced, unreferenced])] + ["2 unreferenced, 0 missing"]
    store.add_rows({"a": referenced, "b": MISSING, "c": removed, "d": "not a handle"})
    result = store.run("orphans")
    assert result.status == 1
    assert result.lines == sorted([f"unreferenced {unreferenced}", f"missing      {MISSING}",
                                   f"missing      {removed}", "missing      not a handle"],
                                  key=lambda line: line.split()[-1]) + [
        "1 unreferenced, 3 missing"]
    with store.app, get_db().begin() as connection:
        connection.execute(file_table.delete().where(file_table.c.code != "a"))
    storage.remove(unreferenced)
    clean = store.run("orphans")
    assert (clean.status, clean.lines) == (0, ["0 unreferenced, 0 missing"])


def test_orphans_needs_to_know_where_handles_are_kept(store: Store) -> None:
    """rex.attach alone declares no place: it cannot tell an orphan."""
    bare = store.settings_file.with_name("bare.yaml")
    bare.write_text(yaml.safe_dump({name: value for name, value in store.settings.items()
                                    if name != "db"}))
    refused = store.run("orphans", "--settings", str(bare), package="rex.attach")
    assert refused.status == 2 and refused.out == ""
    assert refused.err == ("rex: The application declares no AttachmentReferences: it cannot "
                           "tell which attachments its records reference\n")
    handle = store.storage.add("a.txt", "a")
    unsure = store.run("rm", "--settings", str(bare), handle, "--yes", package="rex.attach")
    assert unsure.status == 2 and handle in store.storage


@pytest.mark.postgres
def test_orphans_on_postgres(local_store: Store, tmp_path: Path) -> None:
    """Handles are read through a server-side cursor, in handle order."""
    store = local_store
    with start_postgres(tmp_path) as url:
        store.settings["db"] = url
        store.settings_file.write_text(yaml.safe_dump(store.settings))
        storage = store.storage
        handles = sorted(storage.add(f"{i}.txt", str(i)) for i in range(2500))  # > a batch
        store.add_rows({f"c{i}": handle for i, handle in enumerate(handles) if i % 100})
        result = store.run("orphans")
        assert result.status == 1
        assert result.lines == [f"unreferenced {handles[i]}" for i in range(0, 2500, 100)] + [
            "25 unreferenced, 0 missing"]
        assert PG_PASSWORD not in result.out + result.err


# After kill -9 ---------------------------------------------------------------

COMMITTED = 8  # uploads that complete before the database is locked


def test_orphans_after_kill_9_during_uploads(store: Store, tmp_path: Path) -> None:
    """Uploads in flight when the server dies stored their file but not
    their record: `orphans` finds exactly those, and nothing is missing."""
    storage = store.storage
    with serve(tmp_path, "--settings", str(store.settings_file)) as url, \
            Uploads(url, 8) as uploads:
        for i in range(COMMITTED):
            uploads.post(f"c{i:02}")
        assert set(uploads.results.values()) == {303}
        with locked(store.settings["db"].removeprefix("sqlite:///")):
            for i in range(COMMITTED, 24):
                uploads.submit(f"c{i:02}")
            # Each of the 8 uploads in flight (one server thread each) stores
            # its file, then waits for the lock to record it.
            wait_until(lambda: len(list(storage)) == COMMITTED + 8)
            os.killpg(url.pid, signal.SIGKILL)  # the master and its workers at once
        uploads.wait(24)
    with store.app, get_db().connect() as connection:
        recorded = dict(connection.execute(select(file_table.c.handle, file_table.c.code)).all())
    code_of = {hashlib.sha256(content(code)).digest(): code for code in uploads.results}
    orphaned = {}
    for handle in storage:
        with storage.open(handle) as stream:
            code = code_of[hashlib.sha256(stream.read()).digest()]  # each is whole
        if handle not in recorded:
            orphaned[handle] = code
    assert sorted(recorded.values()) == [f"c{i:02}" for i in range(COMMITTED)]
    assert len(orphaned) == 8
    assert all(uploads.results[code] is None for code in orphaned.values())
    result = store.run("orphans")
    assert result.status == 1
    assert result.lines == [f"unreferenced {handle}" for handle in sorted(orphaned)] + [
        "8 unreferenced, 0 missing"]
