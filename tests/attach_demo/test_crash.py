"""``kill -9`` of the whole server while uploads run: afterwards every row
points at a whole attachment, and what the dead workers staged is swept."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from helpers import serve, staged
from sqlalchemy import select

from rex.attach import get_storage
from rex.attach_demo import file_table
from rex.core import Rex
from rex.db import get_db

UPLOADS = 48
KILL_AFTER = 12  # completed uploads before the kill; others are in flight then


def content(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest() * 8192  # 256 KiB, known by its code


def test_kill_9_during_uploads_leaves_only_whole_attachments(tmp_path: Path) -> None:
    results: dict[str, int | None] = {}
    done = threading.Condition()

    def upload(url: str, code: str) -> None:
        try:
            status: int | None = requests.post(
                url + "/upload", data={"code": code, "title": f"Title {code}"},
                files={"attachment": (f"{code}.bin", content(code))},
                allow_redirects=False, timeout=60).status_code
        except requests.RequestException:
            status = None  # the server died under it
        with done:
            results[code] = status
            done.notify_all()

    with serve(tmp_path) as url, ThreadPoolExecutor(8) as pool:
        for i in range(UPLOADS):
            pool.submit(upload, url, f"c{i:02}")
        with done:
            assert done.wait_for(lambda: len(results) >= KILL_AFTER, timeout=120)
        os.killpg(url.pid, signal.SIGKILL)  # the master and its workers at once

    app = Rex("rex.attach_demo", attach_dir=str(tmp_path / "attachments"),
              db=f"sqlite:///{tmp_path}/demo.sqlite")
    with app:
        with get_db().connect() as connection:
            rows = connection.execute(select(file_table)).all()
        storage = get_storage()
        for row in rows:
            with storage.open(row.handle) as stream:
                assert stream.read() == content(row.code), row.code
            assert row.size == len(content(row.code))
        stored = {row.code for row in rows}
        assert {code for code, status in results.items() if status == 303} <= stored
        assert len(results) == UPLOADS and None in results.values()  # the kill cut some
        storage.verify()  # as a restarted server does: sweeps the dead writers' staging
        assert staged(storage.path) == []
