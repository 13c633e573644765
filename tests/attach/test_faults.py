"""Faults and hostile states of the stores: errors that say what they are,
links planted inside a local store, a full disk."""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from backend_gcs import write_key
from helpers import MISSING, free_port, staged
from webob import Request

from rex.attach import LocalStorage, get_storage
from rex.attach.gcs import EMULATOR, GCSStorage
from rex.attach.s3 import S3Storage
from rex.core import (Error, ExistsError, InsufficientStorageError, NotFoundError, Rex,
                      UnavailableError)


@pytest.fixture
def storage(attach_dir: Path) -> LocalStorage:
    storage = LocalStorage(str(attach_dir))
    storage.verify()
    return storage


# Errors that say what they are.

def test_contains_is_false_only_when_not_there(storage: LocalStorage) -> None:
    assert MISSING not in storage
    with pytest.raises(Error, match="Ill-formed attachment handle:"):
        "/../etc/passwd" in storage  # noqa: B015
    assert not isinstance(_raised(lambda: storage.open(MISSING)), UnavailableError)


def test_a_failing_local_store_is_not_an_existing_attachment(storage: LocalStorage) -> None:
    """A date directory that cannot be made (a file is in the way) is a
    failing store, not "Attachment already exists"."""
    handle = storage.reserve("memo.txt")
    (Path(storage.path) / handle.split("/")[1]).write_text("in the way")
    error = _raised(lambda: storage.write(handle, io.BytesIO(b"x")))
    assert isinstance(error, UnavailableError) and not isinstance(error, ExistsError)
    assert str(error).startswith(f"Attachment storage is failing:\n    {storage.path}\n")
    assert staged(storage.path) == []


def test_unreachable_s3_is_an_outage(tmp_path: Path, monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    storage = S3Storage("attachments", endpoint=endpoint, region="us-east-1",
                        access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG")
    for operation in (lambda: MISSING in storage, lambda: storage.open(MISSING),
                      lambda: storage.add("memo.txt", "x"), lambda: list(storage)):
        error = _raised(operation)
        assert isinstance(error, UnavailableError), error
        assert str(error).startswith(
            f"S3 storage is unavailable or failing:\n    bucket attachments at {endpoint}\n")
        assert "wJalrXUtnFEMI" not in str(error)


def test_unreachable_gcs_is_an_outage(monkeypatch) -> None:
    monkeypatch.setenv(EMULATOR, f"http://127.0.0.1:{free_port()}")
    storage = GCSStorage("attachments")
    storage.retry = storage.retry.with_timeout(1)
    for operation in (lambda: MISSING in storage, lambda: storage.open(MISSING),
                      lambda: storage.add("memo.txt", "x")):
        error = _raised(operation)
        assert isinstance(error, UnavailableError), error
        assert str(error).startswith("GCS storage is unavailable or failing:\n")


def test_gcs_without_its_key_is_not_an_empty_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(EMULATOR, raising=False)
    storage = GCSStorage("attachments", key=str(tmp_path / "missing.json"),
                         endpoint=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Error, match="Cannot read the GCS service account key:"):
        MISSING in storage  # noqa: B015
    write_key(tmp_path / "key.json")  # a key, but a store that does not answer
    storage = GCSStorage("attachments", key=str(tmp_path / "key.json"),
                         endpoint=f"http://127.0.0.1:{free_port()}")
    storage.retry = storage.retry.with_timeout(1)
    with pytest.raises(UnavailableError):
        MISSING in storage  # noqa: B015


def _raised(operation) -> BaseException:
    try:
        operation()
    except Exception as error:  # the test looks at its type
        return error
    raise AssertionError("nothing was raised")


# Links planted inside the store are never followed.

@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the store with a file worth stealing."""
    path = tmp_path / "outside"
    (path / "dir").mkdir(parents=True)
    (path / "passwd").write_text("root:x:0:0")
    (path / "dir" / "memo.txt").write_text("root:x:0:0")
    (path / "day" / "0a6c2d5e-3b5e-4b8e-9a53-2b2d2b6d1a2e").mkdir(parents=True)
    (path / "day" / "0a6c2d5e-3b5e-4b8e-9a53-2b2d2b6d1a2e" / "memo.txt").write_text("root:x:0:0")
    return path


def plant(storage: LocalStorage, outside: Path) -> list[str]:
    """Three handles whose path crosses a symbolic link out of the store:
    at the file, at the UUID directory, at the date directory."""
    root = Path(storage.path)
    at_file = f"/2026/01/01/{uuid.uuid4()}/memo.txt"
    (root / at_file[1:]).parent.mkdir(parents=True)
    (root / at_file[1:]).symlink_to(outside / "passwd")
    at_uuid = f"/2026/01/02/{uuid.uuid4()}/memo.txt"
    (root / "2026/01/02").mkdir(parents=True)
    (root / at_uuid[1:]).parent.symlink_to(outside / "dir")
    at_date = "/2026/01/03/0a6c2d5e-3b5e-4b8e-9a53-2b2d2b6d1a2e/memo.txt"
    (root / "2026/01/03").symlink_to(outside / "day")
    return [at_file, at_uuid, at_date]


def test_planted_links_are_not_attachments(storage: LocalStorage, outside: Path,
                                           tmp_path: Path) -> None:
    handles = plant(storage, outside)
    app = Rex("rex.attach", attach_dir=storage.path, access={"rex.attach": "anybody"})
    for handle in handles:
        for method in (storage.open, storage.stat, storage.route, storage.remove):
            with pytest.raises(NotFoundError, match="Attachment does not exist:"):
                method(handle)
        assert handle not in storage
        assert Request.blank(quote(handle)).get_response(app).status_int == 404
    assert list(storage) == []
    assert sorted(path.read_text() for path in outside.rglob("*") if path.is_file()) == [
        "root:x:0:0"] * 3  # nothing outside was removed or changed


def test_writes_never_go_through_a_planted_link(storage: LocalStorage, outside: Path) -> None:
    at_date = plant(storage, outside)[2].replace("0a6c2d5e", "1b6c2d5e")
    with pytest.raises(UnavailableError, match="Attachment storage is failing:"):
        storage.write(at_date, io.BytesIO(b"planted"))
    assert not list((outside / "day").glob("1b6c2d5e*"))


# A full disk.

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, mounted for the test (as root, or with sudo)."""
    path = tmp_path / "small"
    path.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", "size=4m,mode=0777", "tmpfs",
                    str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run([*sudo, "umount", "-l", str(path)], check=True)


def test_full_disk_is_507_and_leaves_nothing(small_disk: Path) -> None:
    storage = LocalStorage(str(small_disk))
    storage.verify()
    error = _raised(lambda: storage.add("big.bin", io.BytesIO(b"x" * (6 << 20))))
    assert isinstance(error, InsufficientStorageError)
    assert str(error) == f"No space left in the attachment storage:\n    {small_disk}"
    assert error.status == "507 Insufficient Storage"
    assert staged(small_disk) == [] and list(storage) == []
    handle = storage.add("small.txt", "it fits")  # the space came back
    assert storage.open(handle).read() == b"it fits"


def test_full_disk_through_http(small_disk: Path, tmp_path: Path) -> None:
    """An upload larger than the free space: 507 with a message, no spool
    left behind, and the next upload works."""
    app = Rex("rex.attach_demo", attach_dir=str(small_disk),
              db=f"sqlite:///{tmp_path}/demo.sqlite")
    big = Request.blank("/upload", POST={"code": "big", "title": "Big",
                                         "attachment": ("big.bin", b"x" * (6 << 20))})
    response = big.get_response(app)
    assert response.status_int == 507, response.text
    assert "No space left" in response.text
    assert staged(small_disk) == []
    small = Request.blank("/upload", POST={"code": "small", "title": "Small",
                                           "attachment": ("small.txt", b"fits")})
    assert small.get_response(app).status_int == 303
    with app:
        assert [get_storage().open(h).read() for h in get_storage()] == [b"fits"]


def test_a_store_that_goes_down_is_503_not_404(tmp_path: Path, monkeypatch) -> None:
    """The demo's /download and the /attach location, when the store stops
    answering: an outage, not a missing file."""
    from backend_gcs import create_bucket
    from servers import start_fake_gcs

    server = start_fake_gcs(tmp_path / "gcs")
    try:
        create_bucket(server)
        monkeypatch.setenv(EMULATOR, server.endpoint)
        app = Rex("rex.attach_demo", attach_gcs_bucket="attachments",
                  db=f"sqlite:///{tmp_path}/demo.sqlite", access={"rex.attach": "anybody"})
        upload = Request.blank("/upload", POST={"code": "a1", "title": "A",
                                                "attachment": ("a.txt", b"stored")})
        assert upload.get_response(app).status_int == 303
        assert Request.blank("/download?code=a1").get_response(app).body == b"stored"
        with app:
            get_storage().retry = get_storage().retry.with_timeout(1)
            (handle,) = list(get_storage())
    finally:
        server.stop()
    for url in ("/download?code=a1", "/attach" + quote(handle)):
        response = Request.blank(url).get_response(app)
        assert response.status_int == 503, response.text
        assert "GCS storage is unavailable or failing:" in response.text
