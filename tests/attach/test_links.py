"""The local backend's signed direct links, through the /attach location."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from webob import Request

from rex.attach import LocalStorage, get_storage
from rex.core import Rex


@pytest.fixture
def app(tmp_path: Path, attach_dir: Path) -> Rex:
    return Rex("rex.attach_demo", attach_dir=str(attach_dir), attach_max_size=1000,
               db=f"sqlite:///{tmp_path}/demo.sqlite")


def storage(app: Rex) -> LocalStorage:
    with app:
        return get_storage()  # type: ignore[return-value]


def upload(app: Rex, url: str, content: bytes = b"data", name: str = "a.txt"):
    return Request.blank(url, POST={"file": (name, content)}).get_response(app)


def test_upload_link_stores_once_at_its_handle(app: Rex) -> None:
    handle = storage(app).reserve("a.txt")
    link = storage(app).upload_link(handle)
    assert link.url.startswith("/attach/") and link.fields == {}
    response = upload(app, link.url)
    assert response.status_int == 201
    assert storage(app).open(handle).read() == b"data"
    assert upload(app, link.url, b"again").status_int == 409
    assert storage(app).open(handle).read() == b"data"


def test_download_link_needs_no_session(app: Rex) -> None:
    handle = storage(app).add("a.txt", "secret data")
    plain = Request.blank("/attach" + handle).get_response(app)
    assert plain.status_int == 401
    response = Request.blank(storage(app).download_link(handle).url).get_response(app)
    assert response.status_int == 200 and response.body == b"secret data"
    head = Request.blank(storage(app).download_link(handle).url, method="HEAD").get_response(app)
    assert head.status_int == 200 and head.body == b""


def test_links_are_bound_to_method_handle_and_time(app: Rex) -> None:
    handle = storage(app).add("a.txt", "x")
    download = storage(app).download_link(handle).url
    upload_url = storage(app).upload_link(storage(app).reserve("b.txt")).url
    assert upload(app, download).status_int == 403  # a GET link used to POST
    assert Request.blank(upload_url).get_response(app).status_int == 403  # and the reverse
    assert Request.blank(download[:-1] + ("0" if download[-1] != "0" else "1")
                         ).get_response(app).status_int == 403
    expired = download.replace("expires=", "expires=1").split("&")[0] + "&" + download.split("&")[1]
    assert Request.blank(expired).get_response(app).status_int == 403
    assert Request.blank("/attach" + handle + "?signature=x").get_response(app).status_int == 403
    assert upload(app, "/attach" + handle).status_int == 405  # unsigned writes never


def test_unsigned_writes_are_405_whoever_asks(tmp_path: Path, attach_dir: Path) -> None:
    opened = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/d.db",
                 access={"rex.attach": "authenticated"})
    handle = storage(opened).reserve("a.txt")
    for environ in [{"REMOTE_USER": "ann"}, {}]:
        request = Request.blank("/attach" + handle, POST={"file": ("a.txt", b"x")}, environ=environ)
        response = request.get_response(opened)
        assert response.status_int == 405
        assert response.headers["Allow"] == "GET, HEAD"
    assert handle not in storage(opened)


@pytest.mark.parametrize("expires, signature", [
    ("%C2%B2", "0" * 64),  # '²' passes str.isdigit() but not int()
    ("1%E2%80%AF000", "0" * 64),
    ("99999999999999999999", "0" * 64),
    ("4102444800", "%C3%A9"),  # compare_digest() refuses non-ASCII str
    ("4102444800", ""),
])
def test_malformed_links_are_403(app: Rex, expires: str, signature: str) -> None:
    handle = storage(app).add("a.txt", "x")
    url = f"/attach{handle}?expires={expires}&signature={signature}"
    assert Request.blank(url).get_response(app).status_int == 403


def test_upload_link_honours_max_size_and_cleans_up(app: Rex, attach_dir: Path) -> None:
    handle = storage(app).reserve("big.bin")
    assert upload(app, storage(app).upload_link(handle).url, b"x" * 1001).status_int == 413
    assert handle not in storage(app)
    assert os.listdir(attach_dir / ".tmp") == []


def test_link_expiry_setting(tmp_path: Path, attach_dir: Path) -> None:
    app = Rex("rex.attach", attach_dir=str(attach_dir), attach_link_expiry=1)
    handle = storage(app).add("a.txt", "x")
    url = storage(app).download_link(handle).url
    expires = int(url.split("expires=")[1].split("&")[0])
    assert 0 < expires - time.time() <= 1


def test_secret_is_generated_once_and_kept_private(attach_dir: Path) -> None:
    one, two = LocalStorage(str(attach_dir)), LocalStorage(str(attach_dir))
    one.verify()
    assert one.secret == two.secret and len(one.secret) == 64
    mode = os.stat(attach_dir / ".secret").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert LocalStorage(str(attach_dir), secret="x" * 32).secret == b"x" * 32
    assert ".secret" not in "".join(one)  # never listed as an attachment
