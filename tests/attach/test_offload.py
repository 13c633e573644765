"""attach_serve: the bytes of a download sent by nginx (accel, through a
real nginx on 127.0.0.1) or by the store (redirect, on radosgw and
fake-gcs-server), once the application has allowed it."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml
from helpers import HOST, serve
from nginx import Nginx, rex_nginx, start_nginx
from webob import Request

from rex.attach import get_storage
from rex.attach.response import content_disposition
from rex.core import Error, NotFoundError, Rex

NAME = "Les Misérables.txt"
STORED = "Les_Misérables.txt"  # the name as sanitized
BODY = bytes(range(256)) * 400
NGINX_ETAG = re.compile(r'"[0-9a-f]+-[0-9a-f]+"')  # nginx's: mtime and size in hex


def write_settings(path: Path, **settings: object) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def upload(url: str, code: str, name: str = NAME, body: bytes = BODY) -> None:
    response = requests.post(url + "/upload", data={"code": code, "title": code},
                             files={"attachment": (name, body)}, allow_redirects=False,
                             timeout=30)
    assert response.status_code == 303, response.text


def handle_of(db: Path, code: str) -> str:
    with sqlite3.connect(db) as connection:
        return connection.execute("select handle from file where code = ?", (code,)).fetchone()[0]


# -- accel, in the application -------------------------------------------------------------

@pytest.fixture
def accel_app(tmp_path: Path, attach_dir: Path) -> Iterator[Rex]:
    app = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/d.sqlite",
              attach_serve="accel", trusted_proxies="10.0.0.0/8",
              access={"rex.attach": "anybody"}, attach_accel_location="/internal/files")
    with app:
        yield app


def get(app: Rex, handle: str, peer: str, **kwargs) -> object:
    return Request.blank("/attach" + quote(handle), remote_addr=peer, **kwargs).get_response(app)


def test_accel_answers_the_proxy_with_x_accel_redirect(accel_app: Rex) -> None:
    handle = get_storage().add(NAME, BODY)
    for method in ("GET", "HEAD"):
        response = get(accel_app, handle, "10.0.0.5", method=method)
        assert response.status_int == 200 and response.body == b""
        assert response.headers["X-Accel-Redirect"] == "/internal/files" + quote(handle)
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert response.headers["Content-Disposition"] == content_disposition(STORED)
        assert response.headers["Cache-Control"] == "private, no-cache"


def test_accel_sends_the_bytes_itself_to_anybody_else(accel_app: Rex) -> None:
    handle = get_storage().add(NAME, BODY)
    response = get(accel_app, handle, "192.0.2.1")  # not a trusted proxy: nothing would act on it
    assert "X-Accel-Redirect" not in response.headers
    assert response.body == BODY


def test_accel_checks_the_attachment_first(accel_app: Rex) -> None:
    handle = get_storage().add(NAME, BODY)
    get_storage().remove(handle)
    assert get(accel_app, handle, "10.0.0.5").status_int == 404


def test_a_combination_that_cannot_work_is_refused_at_startup(attach_dir: Path) -> None:
    with pytest.raises(Error) as caught:
        Rex("rex.attach_demo", attach_dir=str(attach_dir), attach_serve="redirect")
    assert str(caught.value).startswith(
        "attach_serve: redirect needs S3 or GCS, which serve the links it redirects to; got:\n"
        "    attach_dir\nWith the local backend, use:\n    attach_serve: accel\n")
    with pytest.raises(Error) as caught:
        Rex("rex.attach_demo", attach_dir=str(attach_dir), attach_serve="accel")
    assert "accel needs the address of nginx in:\n    trusted_proxies" in str(caught.value)
    with pytest.raises(Error) as caught:  # refused before the bucket is asked anything
        Rex("rex.attach_demo", attach_s3_bucket="files", attach_s3_endpoint="http://127.0.0.1:1",
            attach_serve="accel", trusted_proxies="127.0.0.1")
    assert str(caught.value).startswith("attach_serve: accel needs the local backend (attach_dir), "
                                        "whose files nginx sends; got:\n    attach_s3_bucket\n")


# -- accel, through nginx ------------------------------------------------------------------

@pytest.fixture
def accel_site(tmp_path: Path, attach_dir: Path) -> Iterator[tuple[Nginx, str, str]]:
    """The demo behind nginx with attach_serve: accel, one file stored:
    nginx, the application's URL and the file's handle."""
    settings = write_settings(tmp_path / "settings.yaml", attach_dir=str(attach_dir),
                              db=f"sqlite:///{tmp_path}/demo.sqlite", attach_serve="accel",
                              trusted_proxies=[HOST])
    with serve(tmp_path, "--settings", str(settings)) as app, start_nginx(
            tmp_path / "nginx", rex_nginx("rex.attach_demo", "--settings", str(settings),
                                          "--upstream", app.removeprefix("http://"))) as nginx:
        upload(nginx.url, "c1")
        yield nginx, app, handle_of(tmp_path / "demo.sqlite", "c1")


@pytest.mark.nginx
def test_nginx_sends_the_file(accel_site) -> None:
    nginx, app, handle = accel_site
    response = requests.get(nginx.url + "/download?code=c1", timeout=30)
    assert response.status_code == 200 and response.content == BODY
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.headers["Content-Disposition"] == content_disposition(STORED)
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Accel-Redirect" not in response.headers
    assert NGINX_ETAG.fullmatch(response.headers["ETag"])  # nginx sent it, not the application
    # What nginx gets from the application (which takes 127.0.0.1 for nginx).
    internal = requests.get(app + "/download?code=c1", timeout=30)
    assert internal.content == b"" and "ETag" not in internal.headers
    assert internal.headers["X-Accel-Redirect"] == "/_attach" + quote(handle)


@pytest.mark.nginx
def test_nginx_answers_ranges_conditions_and_head(accel_site) -> None:
    nginx, _, _ = accel_site
    url = nginx.url + "/download?code=c1"
    ranged = requests.get(url, headers={"Range": "bytes=256-511"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == BODY[256:512]
    assert ranged.headers["Content-Range"] == f"bytes 256-511/{len(BODY)}"
    etag = ranged.headers["ETag"]
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(BODY))
    assert head.headers["Content-Disposition"] == content_disposition(STORED)


@pytest.mark.nginx
def test_the_internal_location_is_not_reachable_from_outside(accel_site) -> None:
    nginx, _, handle = accel_site
    for path in ("/_attach" + quote(handle), "/_attach/", "/_attach/.secret"):
        assert requests.get(nginx.url + path, timeout=30).status_code == 404


@pytest.mark.nginx
def test_a_signed_link_is_sent_by_nginx_too(accel_site, tmp_path: Path, attach_dir: Path) -> None:
    nginx, _, handle = accel_site
    with Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/demo.sqlite"):
        link = get_storage().download_link(handle)
    response = requests.get(nginx.url + link.url, timeout=30)
    assert response.content == BODY and NGINX_ETAG.fullmatch(response.headers["ETag"])
    assert requests.get(nginx.url + "/attach" + quote(handle), timeout=30).status_code == 401


# -- redirect, on S3 and GCS ---------------------------------------------------------------

@pytest.mark.parametrize("backend", [pytest.param("s3", marks=pytest.mark.s3),
                                     pytest.param("gcs", marks=pytest.mark.gcs)], indirect=True)
def test_redirect_sends_the_client_to_the_store(backend, tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "settings.yaml", **backend.settings,
                              db=f"sqlite:///{tmp_path}/demo.sqlite", attach_serve="redirect")
    with serve(tmp_path, "--settings", str(settings)) as app:
        upload(app, "c1")
        url = app + "/download?code=c1"
        response = requests.get(url, allow_redirects=False, timeout=30)
        assert response.status_code == 302 and response.content == b""
        assert response.headers["Cache-Control"] == "no-store"
        store = backend.settings.get("attach_s3_endpoint") or backend.env["STORAGE_EMULATOR_HOST"]
        assert response.headers["Location"].startswith(store + "/")
        followed = requests.get(url, timeout=30)
        assert followed.status_code == 200 and followed.content == BODY
        assert followed.history[0].status_code == 302
        assert followed.headers["Content-Disposition"] == content_disposition(STORED)
        head = requests.head(url, timeout=30)  # no bytes to send: the application answers
        assert head.status_code == 200 and "Location" not in head.headers
        assert head.headers["Content-Length"] == str(len(BODY))
        assert requests.get(app + "/download?code=nope", timeout=30).status_code == 404


@pytest.mark.s3
@pytest.mark.parametrize("backend", ["s3"], indirect=True)
def test_redirect_checks_the_attachment_first(backend, tmp_path: Path) -> None:
    app = Rex("rex.attach_demo", **backend.settings, db=f"sqlite:///{tmp_path}/d.sqlite",
              attach_serve="redirect", access={"rex.attach": "anybody"})
    with app:
        handle = get_storage().add(NAME, BODY)
        get_storage().remove(handle)
        with pytest.raises(NotFoundError):
            Request.blank("/").get_response(get_storage().route(handle))
        assert Request.blank("/attach" + quote(handle)).get_response(app).status_int == 404
