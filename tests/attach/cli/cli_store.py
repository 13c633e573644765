"""What the ``rex attach`` tests share: a new, empty store for each test on
each backend of the contract suite (a directory, a bucket of its radosgw or
of its fake-gcs-server), and the command run as a subprocess on it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml
from sqlalchemy import insert

from backend_gcs import PROJECT
from backends import Backend
from helpers import rex_script

from rex.attach import Storage, get_storage
from rex.attach_demo import file_table
from rex.core import Rex
from rex.db import get_db

PACKAGE = "rex.attach_demo"
TIMEOUT = 300  # seconds any one command may take


@dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@dataclass
class Store:
    """An empty store of one backend, for one test, and the application's
    settings for it (in `settings_file`)."""

    backend: str
    settings: dict[str, Any]
    settings_file: Path
    remove: Callable[[str], None]  # removes an object behind rex.attach's back
    # flips a byte of an object behind rex.attach's back, its metadata kept
    damage: Callable[[str, int], None]
    # stores an object as a plain client does, without rex.attach's metadata
    put: Callable[[str, bytes], None]
    # every key (or file) the store holds, tombstones included, sorted
    keys: Callable[[], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    _app: Rex | None = None

    def run(self, command: str, *args: str, input: bytes | None = None,
            package: str = PACKAGE) -> Result:
        """``rex attach COMMAND PACKAGE --settings FILE ARGS...`` as a
        subprocess (a ``--settings`` in `args` wins)."""
        argv = [rex_script(), "attach", command, package]
        if "--settings" not in args:
            argv += ["--settings", str(self.settings_file)]
        process = subprocess.run([*argv, *args], input=input, capture_output=True,
                                 timeout=TIMEOUT, env={**os.environ, **self.env},
                                 stdin=None if input is not None else subprocess.DEVNULL)
        err = process.stderr.decode(errors="replace")
        assert "Traceback" not in err, err
        return Result(process.returncode, process.stdout.decode(errors="replace"), err)

    def run_bytes(self, command: str, *args: str) -> bytes:
        argv = [rex_script(), "attach", command, PACKAGE, "--settings", str(self.settings_file)]
        process = subprocess.run([*argv, *args], capture_output=True, timeout=TIMEOUT,
                                 stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        assert process.returncode == 0, process.stderr.decode(errors="replace")
        return process.stdout

    @property
    def app(self) -> Rex:
        """The application in this process, on the same store and database."""
        if self._app is None:
            self._app = Rex(PACKAGE, **self.settings)
        return self._app

    def add_rows(self, rows: dict[str, str]) -> None:
        """Records of the demo that reference handles, by code."""
        with self.app, get_db().begin() as connection:
            for code, handle in rows.items():
                connection.execute(insert(file_table).values(code=code, title=code,
                                                             handle=handle, size=0))

    @property
    def storage(self) -> Storage:
        with self.app:
            return get_storage()


def bucket_name() -> str:
    return f"cli-{uuid.uuid4().hex[:20]}"


def new_store(backend: Backend, tmp_path: Path) -> Store:
    """A new, empty store of `backend`, with a database of its own."""
    settings: dict[str, Any] = {"db": f"sqlite:///{tmp_path}/demo-{uuid.uuid4().hex[:8]}.sqlite"}
    if backend.name == "local":
        path = tmp_path / f"attachments-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        settings["attach_dir"] = str(path)

        def remove(key: str) -> None:
            os.unlink(path / key)

        def damage(key: str, offset: int) -> None:
            with open(path / key, "r+b") as file:
                file.seek(offset)
                byte = file.read(1)
                file.seek(offset)
                file.write(bytes([byte[0] ^ 0xFF]))

        def put(key: str, data: bytes) -> None:
            (path / key).parent.mkdir(parents=True)
            (path / key).write_bytes(data)

        def keys() -> list[str]:
            return sorted(str(file.relative_to(path)) for file in path.rglob("*")
                          if file.is_file() and not file.relative_to(path).parts[0].startswith("."))
    elif backend.name == "s3":
        settings.update(backend.settings, attach_s3_bucket=bucket_name())
        client = s3_client(settings)
        client.create_bucket(Bucket=settings["attach_s3_bucket"])

        def remove(key: str) -> None:
            client.delete_object(Bucket=settings["attach_s3_bucket"], Key=key)

        def damage(key: str, offset: int) -> None:
            bucket = settings["attach_s3_bucket"]
            found = client.get_object(Bucket=bucket, Key=key)
            body = bytearray(found["Body"].read())
            body[offset] ^= 0xFF
            client.put_object(Bucket=bucket, Key=key, Body=bytes(body),
                              ContentType=found["ContentType"], Metadata=found["Metadata"])

        def put(key: str, data: bytes) -> None:
            client.put_object(Bucket=settings["attach_s3_bucket"], Key=key, Body=data)

        def keys() -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=settings["attach_s3_bucket"])
            return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))
    else:
        settings.update(backend.settings, attach_gcs_bucket=bucket_name())
        endpoint = backend.env["STORAGE_EMULATOR_HOST"]
        requests.post(f"{endpoint}/storage/v1/b", params={"project": PROJECT},
                      json={"name": settings["attach_gcs_bucket"]}, timeout=10).raise_for_status()

        def remove(key: str) -> None:
            requests.delete(f"{endpoint}/storage/v1/b/{settings['attach_gcs_bucket']}/o/"
                            f"{requests.utils.quote(key, safe='')}", timeout=10).raise_for_status()

        def damage(key: str, offset: int) -> None:
            raise NotImplementedError("fake-gcs-server keeps its objects in memory")

        def put(key: str, data: bytes) -> None:
            requests.post(f"{endpoint}/upload/storage/v1/b/{settings['attach_gcs_bucket']}/o",
                          params={"uploadType": "media", "name": key}, data=data,
                          timeout=10).raise_for_status()

        def keys() -> list[str]:  # the few objects of a test: one page
            listing = requests.get(f"{endpoint}/storage/v1/b/{settings['attach_gcs_bucket']}/o",
                                   timeout=10)
            listing.raise_for_status()
            return sorted(item["name"] for item in listing.json().get("items", ()))
    settings_file = tmp_path / f"settings-{uuid.uuid4().hex[:8]}.yaml"
    settings_file.write_text(yaml.safe_dump(settings))
    return Store(backend.name, settings, settings_file, remove, damage, put, keys,
                 dict(backend.env))


def s3_client(settings: dict[str, Any]) -> Any:
    """A plain boto3 client of the S3 store of these settings."""
    return boto3.session.Session().client(
        "s3", endpoint_url=settings["attach_s3_endpoint"],
        region_name=settings["attach_s3_region"],
        aws_access_key_id=settings["attach_s3_access_key"],
        aws_secret_access_key=settings["attach_s3_secret_key"])



def wait_until(condition: Callable[[], bool], timeout: float = 120) -> None:
    """Waits for `condition` to hold, checking it every 50 ms."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout} s"
        time.sleep(0.05)


def content(code: str) -> bytes:
    """What the upload of a code holds: 128 KiB, known by its code."""
    return hashlib.sha256(code.encode()).digest() * 4096


class Uploads:
    """Uploads to a served demo's /upload, from threads; `results` holds
    each code's status (None: the server died under it)."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.results: dict[str, int | None] = {}
        self.done = threading.Condition()
        self.pool = ThreadPoolExecutor(threads)

    def post(self, code: str) -> None:
        try:
            status: int | None = requests.post(
                self.url + "/upload", data={"code": code, "title": code},
                files={"attachment": (f"{code}.bin", content(code))},
                allow_redirects=False, timeout=120).status_code
        except requests.RequestException:
            status = None
        with self.done:
            self.results[code] = status
            self.done.notify_all()

    def submit(self, code: str) -> None:
        self.pool.submit(self.post, code)

    def wait(self, count: int) -> None:
        """Waits until `count` uploads have their answer (or failed)."""
        with self.done:
            assert self.done.wait_for(lambda: len(self.results) >= count, timeout=120)

    def __enter__(self) -> Uploads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown()


@contextlib.contextmanager
def locked(database: str) -> Iterator[None]:
    """Holds the SQLite database's write lock: uploads store their file, then
    wait for it to insert their record."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.close()
