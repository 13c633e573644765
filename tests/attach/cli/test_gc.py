"""``rex attach gc`` as a subprocess, on every backend: it removes only
what is older than the grace period, and never an attachment that a record
references, also while uploads run."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from cli_store import Store, Uploads, locked, s3_client, wait_until
from helpers import serve
from sqlalchemy import select

from rex.attach.cli.probe import new_probe
from rex.attach_demo import file_table
from rex.db import get_db
from test_orphans import COMMITTED

DAY = 86400
GRACE = 10  # seconds: the grace period where attachments cannot be made older


def make_old(store: Store, handles: list[str]) -> list[str]:
    """Makes the attachments older than the grace period; returns the
    --older-than arguments of that period.  A local file is dated back two
    days; an object store keeps its own times, so this waits until they are
    older than `GRACE` seconds."""
    storage = store.storage
    if store.backend == "local":
        for handle in handles:
            past = time.time() - 2 * DAY
            os.utime(Path(store.settings["attach_dir"]) / handle[1:], (past, past))
        return []  # the default: 24h
    newest = max(storage.stat(handle).st_mtime for handle in handles)
    wait_until(lambda: time.time() > newest + GRACE + 1)
    return ["--older-than", f"{GRACE}s"]


def test_gc_removes_old_orphans_only_while_uploads_run(store: Store, tmp_path: Path) -> None:
    storage = store.storage
    old_kept, old_orphan = storage.add("kept.txt", "kept"), storage.add("orphan.txt", "orphan")
    store.add_rows({"kept": old_kept})
    grace = make_old(store, [old_kept, old_orphan])
    with serve(tmp_path, "--settings", str(store.settings_file)) as url, \
            Uploads(url, 4) as uploads:
        for i in range(COMMITTED):
            uploads.post(f"c{i:02}")
        with locked(store.settings["db"].removeprefix("sqlite:///")):
            # Uploads in flight: each stores its file (a thread of the
            # server's workers each), then waits for the lock to record it.
            for i in range(COMMITTED, COMMITTED + 4):
                uploads.submit(f"c{i:02}")
            wait_until(lambda: len(list(storage)) == 2 + COMMITTED + 4)
            in_flight = set(storage) - rows(store) - {old_orphan}
            assert len(in_flight) == 4
            dry = store.run("gc", "--orphans", "--dry-run", *grace)
            assert (dry.status, dry.lines) == (0, [
                f"would remove unreferenced {old_orphan} of {dry.lines[0].split()[-1]}",
                "would remove 1, 0 failed"])
            assert old_orphan in storage
            collected = store.run("gc", "--orphans", *grace)
            assert (collected.status, collected.lines) == (0, [
                dry.lines[0].replace("would remove", "removed"), "removed 1, 0 failed"])
        uploads.wait(COMMITTED + 4)
    assert set(uploads.results.values()) == {303}
    assert old_orphan not in storage and old_kept in storage
    assert in_flight <= set(storage)
    assert store.run("orphans").lines == ["0 unreferenced, 0 missing"]


def rows(store: Store) -> set[str]:
    """The handles that the demo's records reference."""
    with store.app, get_db().connect() as connection:
        return set(connection.execute(select(file_table.c.handle)).scalars())


def test_gc_without_orphans_keeps_unreferenced_attachments(store: Store) -> None:
    orphan = store.storage.add("orphan.txt", "orphan")
    result = store.run("gc", "--older-than", "0")
    assert (result.status, result.lines) == (0, ["removed 0, 0 failed"])
    assert orphan in store.storage


def test_gc_collects_what_crashed_writers_left(store: Store) -> None:
    probe = new_probe()  # as a check killed before its end leaves it
    store.storage.write(probe, io.BytesIO(b"probe\n"))
    if store.backend == "local":
        past = time.time() - 2 * 3600
        os.utime(Path(store.settings["attach_dir"]) / probe[1:], (past, past))
        staging = Path(store.settings["attach_dir"]) / ".tmp"
        staging.mkdir(exist_ok=True)
        old, new = staging / "tmp-old", staging / "tmp-new"
        old.write_bytes(b"left by a writer that died")
        new.write_bytes(b"being written")
        past = time.time() - 2 * 3600
        os.utime(old, (past, past))
        left = [f"staging entry {old}"]
        removed = lambda: not old.exists() and new.exists()  # noqa: E731
        grace = "1h"
    elif store.backend == "s3":
        client, bucket = s3_client(store.settings), store.settings["attach_s3_bucket"]
        key = "2026/01/02/7e2b1c56-0d6f-4a57-9d3c-3d2b6f1a2b3c/big.bin"
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1,
                           Body=b"x" * (5 << 20))
        started = client.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["Initiated"]
        left = [f"multipart upload of {key} started {started:%Y-%m-%dT%H:%M:%SZ}"]
        removed = lambda: "Uploads" not in client.list_multipart_uploads(  # noqa: E731
            Bucket=bucket)
        wait_until(lambda: time.time() > started.timestamp() + 1)
        grace = "1s"
    else:  # GCS keeps nothing of an interrupted upload
        left, removed, grace = [], lambda: True, "0"  # noqa: E731
    crashed, left = left, [f"probe {probe} of rex attach check", *left]
    young = store.run("gc", "--older-than", "3h")
    assert (young.status, young.lines) == (0, ["removed 0, 0 failed"])
    assert not removed() or not crashed
    dry = store.run("gc", "--older-than", grace, "--dry-run")
    assert dry.lines == [f"would remove {what}" for what in left] + [
        f"would remove {len(left)}, 0 failed"]
    assert not removed() or not crashed
    assert store.keys() == [probe[1:]]
    collected = store.run("gc", "--older-than", grace)
    assert collected.lines == [f"removed {what}" for what in left] + [
        f"removed {len(left)}, 0 failed"]
    assert removed()
    assert store.keys() == []  # the probe, for good


def test_gc_takes_durations(store: Store) -> None:
    for duration in ("0", "90s", "30m", "1h30m", "7d", "2w"):
        assert store.run("gc", "--older-than", duration, "--dry-run").status == 0
    wrong = store.run("gc", "--older-than", "soon")
    assert wrong.status == 2
    assert ("Invalid value for '--older-than': expected a duration such as 24h, 90m, 1h30m or "
            "7d, got 'soon'") in wrong.err
