"""The demo end to end on each backend: a real `rex serve` on 127.0.0.1
spoken to over HTTP, its attachments in a directory, in S3 (Ceph's RADOS
Gateway) or in GCS (fake-gcs-server).

Each backend is a context manager in `BACKENDS` that starts its server and
yields a maker of `Store`s (a new, empty directory or bucket for each test);
the tests only use a `Store`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from attach_demo.test_serve import (NON_ASCII, TIMEOUT, MiB, handle_of, raw_request, rows,
                                    stored_files, upload)
from helpers import serve
from servers import start_fake_gcs, start_radosgw

sys.path.insert(0, str(Path(__file__).parent.parent / "attach"))

from backend_gcs import create_bucket, write_key  # noqa: E402
from backend_s3 import admin_client, clear_aws_environment, s3_settings  # noqa: E402


@dataclass
class Store:
    """A store for one test: the `rex serve` settings that choose it, and
    the handles of all it holds (sorted), looked up behind rex.attach's back."""

    settings: list[str]
    stored_handles: Callable[[], list[str]]
    env: dict[str, str] = field(default_factory=dict)  # for `rex serve`


@contextlib.contextmanager
def local_stores(tmp: Path) -> Iterator[Callable[[], Store]]:
    """A directory; each store is a new one."""
    def new_store() -> Store:
        path = tmp / f"attachments-{uuid.uuid4().hex[:12]}"
        path.mkdir()

        def handles() -> list[str]:
            return ["/" + os.path.relpath(file, path) for file in stored_files(path)]

        return Store([f"attach_dir={path}"], handles)

    yield new_store


@contextlib.contextmanager
def s3_stores(tmp: Path) -> Iterator[Callable[[], Store]]:
    """Ceph's RADOS Gateway; each store is a new bucket of it."""
    server = start_radosgw(tmp / "radosgw")
    try:
        admin = admin_client(server)

        def new_store() -> Store:
            bucket = f"demo-{uuid.uuid4().hex[:12]}"
            admin.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]

            def keys() -> list[str]:
                listing = admin.list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
                return sorted("/" + item["Key"] for item in listing.get("Contents", []))

            settings = [f"{name}={value}" for name, value in s3_settings(server, bucket).items()]
            return Store(settings, keys)

        yield new_store
    finally:
        server.stop()


@contextlib.contextmanager
def gcs_stores(tmp: Path) -> Iterator[Callable[[], Store]]:
    """fake-gcs-server, reached through ``STORAGE_EMULATOR_HOST``; each store
    is a new bucket of it."""
    server = start_fake_gcs(tmp)
    key = tmp / "key.json"
    write_key(key)
    try:
        def new_store() -> Store:
            bucket = f"demo-{uuid.uuid4().hex[:12]}"
            create_bucket(server, bucket)

            def keys() -> list[str]:
                listing = requests.get(f"{server.endpoint}/storage/v1/b/{bucket}/o",
                                       timeout=TIMEOUT).json()
                return sorted("/" + item["name"] for item in listing.get("items", []))

            return Store([f"attach_gcs_bucket={bucket}", f"attach_gcs_key={key}"], keys,
                         {"STORAGE_EMULATOR_HOST": server.endpoint})

        yield new_store
    finally:
        server.stop()


BACKENDS: dict[str, Callable[[Path], contextlib.AbstractContextManager[Callable[[], Store]]]] = {
    "local": local_stores,
    "s3": s3_stores,
    "gcs": gcs_stores,
}


MARKS = {"gcs": pytest.mark.gcs, "s3": pytest.mark.s3}  # so that -m "not s3" skips its server


@pytest.fixture(scope="module",
                params=[pytest.param(name, marks=MARKS.get(name, ())) for name in sorted(BACKENDS)])
def new_store(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Store]]:
    with BACKENDS[request.param](tmp_path_factory.mktemp(request.param)) as new_store:
        yield new_store


@pytest.fixture
def store(new_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Store:
    clear_aws_environment(monkeypatch, tmp_path)  # `rex serve` gets only the settings
    store = new_store()
    for name, value in store.env.items():
        monkeypatch.setenv(name, value)
    return store


def test_upload_list_and_download(store: Store, tmp_path: Path) -> None:
    big = os.urandom(5 * MiB)
    text = "Fantine, Cosette, Jean Valjean.\n".encode() * 100
    with serve(tmp_path, *store.settings) as url:
        assert rows(url) == []
        for code, title, name, content in [("empty", "Nothing at all", "empty.txt", b""),
                                           ("big", "Five MiB of noise", "noise.bin", big),
                                           ("novel", "  Victor Hugo  ", NON_ASCII, text)]:
            response = upload(url, code, title, name, content)
            assert response.status_code == 303, response.text
            assert urlsplit(urljoin(url + "/upload", response.headers["Location"])).path == "/"

        assert rows(url) == [  # newest first
            {"code": "novel", "title": "Victor Hugo", "size": f"{len(text):,} bytes",
             "href": "download?code=novel"},
            {"code": "big", "title": "Five MiB of noise", "size": "5,242,880 bytes",
             "href": "download?code=big"},
            {"code": "empty", "title": "Nothing at all", "size": "0 bytes",
             "href": "download?code=empty"},
        ]

        for code, content in [("empty", b""), ("big", big), ("novel", text)]:
            # The page's relative link, resolved against the page's URL.
            response = requests.get(f"{url}/download?code={code}", timeout=TIMEOUT)
            assert response.status_code == 200
            assert response.content == content, code
            assert response.headers["Content-Length"] == str(len(content))
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert requests.get(f"{url}/download?code=big", timeout=TIMEOUT).headers[
            "Content-Type"] == "application/octet-stream"

        disposition = requests.get(f"{url}/download?code=novel", timeout=TIMEOUT).headers[
            "Content-Disposition"]
        assert disposition.startswith("attachment; filename=Les_Miserables.epub;")
        assert "filename*=UTF-8''Les_Mis%C3%A9rables.epub" in disposition
        assert requests.get(f"{url}/download?code=big", timeout=TIMEOUT).headers[
            "Content-Disposition"] == "attachment; filename=noise.bin"

        # Byte ranges.
        response = requests.get(f"{url}/download?code=big", headers={"Range": "bytes=1000-1999"},
                                timeout=TIMEOUT)
        assert response.status_code == 206
        assert response.headers["Content-Range"] == f"bytes 1000-1999/{5 * MiB}"
        assert response.content == big[1000:2000]
        response = requests.get(f"{url}/download?code=big", headers={"Range": "bytes=-10"},
                                timeout=TIMEOUT)
        assert response.status_code == 206 and response.content == big[-10:]
        response = requests.get(f"{url}/download?code=big",
                                headers={"Range": f"bytes={4 * MiB}-"}, timeout=TIMEOUT)
        assert response.status_code == 206 and response.content == big[4 * MiB:]
        response = requests.get(f"{url}/download?code=big",
                                headers={"Range": f"bytes={6 * MiB}-"}, timeout=TIMEOUT)
        assert response.status_code == 416

        # HEAD: the headers of GET, no body on the wire.
        answer = raw_request(url, f"HEAD /download?code=big HTTP/1.1\nHost: {urlsplit(url).netloc}\n"
                                  "Connection: close\n\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert f"content-length: {5 * MiB}".encode() in head.lower()
        assert body == b""

        # Conditional requests.
        etag = requests.get(f"{url}/download?code=novel", timeout=TIMEOUT).headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
        response = requests.get(f"{url}/download?code=novel", headers={"If-None-Match": etag},
                                timeout=TIMEOUT)
        assert response.status_code == 304 and response.content == b""
        response = requests.get(f"{url}/download?code=novel",
                                headers={"If-None-Match": '"something-else"'}, timeout=TIMEOUT)
        assert response.status_code == 200 and response.content == text

    # One stored file for each upload, at its handle.
    handles = sorted(handle_of(tmp_path, code) for code in ("empty", "big", "novel"))
    assert store.stored_handles() == handles
    assert handle_of(tmp_path, "novel").endswith("/Les_Misérables.epub")


def test_duplicate_code_is_refused_and_stores_nothing(store: Store, tmp_path: Path) -> None:
    with serve(tmp_path, *store.settings) as url:
        assert upload(url, "V1", "First", "a.txt", b"first").status_code == 303
        before = store.stored_handles()
        assert len(before) == 1

        response = upload(url, "V1", "Again", "b.txt", os.urandom(MiB))
        assert response.status_code == 409, response.text
        assert "A file with this code already exists:\n    V1" in response.text

        assert store.stored_handles() == before
        assert rows(url) == [{"code": "V1", "title": "First", "size": "5 bytes",
                              "href": "download?code=V1"}]
        assert requests.get(f"{url}/download?code=V1", timeout=TIMEOUT).content == b"first"
