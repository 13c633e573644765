"""The local backend's signed direct links, through the /attach location."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from webob import Request

from rex.attach import LocalStorage, get_storage
from rex.attach.signing import sign
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


def test_links_are_bound_to_method_handle_and_signature(app: Rex) -> None:
    handle = storage(app).add("a.txt", "x")
    download = storage(app).download_link(handle).url
    upload_url = storage(app).upload_link(storage(app).reserve("b.txt")).url
    assert upload(app, download).status_int == 403  # a GET link used to POST
    assert Request.blank(upload_url).get_response(app).status_int == 403  # and the reverse
    assert Request.blank(download[:-1] + ("0" if download[-1] != "0" else "1")
                         ).get_response(app).status_int == 403
    # A later expiry time written into the link: the signature no longer fits.
    tampered = download.replace("expires=", "expires=1")
    assert Request.blank(tampered).get_response(app).status_int == 403
    assert Request.blank("/attach" + handle + "?signature=x").get_response(app).status_int == 403
    assert upload(app, "/attach" + handle).status_int == 401  # unsigned writes never


def signed_url(app: Rex, method: str, handle: str, expires: int) -> str:
    """A link as `download_link()` makes it, but expiring at `expires`,
    signed with the storage's own secret."""
    signature = sign(storage(app).secret, method, handle, expires)
    return f"/attach{quote(handle)}?" + urlencode({"expires": expires, "signature": signature})


def test_expired_links_are_refused(app: Rex) -> None:
    """Links with a right signature: good until their time, refused after."""
    handle = storage(app).add("a.txt", "x")
    now = int(time.time())
    assert Request.blank(signed_url(app, "GET", handle, now + 60)).get_response(app).body == b"x"
    for expires in (now - 1, now - 3600):
        assert Request.blank(signed_url(app, "GET", handle, expires)).get_response(app).status_int == 403
    reserved = storage(app).reserve("b.txt")
    assert upload(app, signed_url(app, "POST", reserved, now - 1)).status_int == 403
    assert reserved not in storage(app)
    assert upload(app, signed_url(app, "POST", reserved, now + 60)).status_int == 201


def test_upload_link_honours_max_size_and_cleans_up(app: Rex, attach_dir: Path) -> None:
    handle = storage(app).reserve("big.bin")
    assert upload(app, storage(app).upload_link(handle).url, b"x" * 1001).status_int == 413
    assert handle not in storage(app)
    assert os.listdir(attach_dir / ".tmp") == []


def test_link_expiry_setting(tmp_path: Path, attach_dir: Path) -> None:
    app = Rex("rex.attach", attach_dir=str(attach_dir), attach_link_expiry=7)
    handle = storage(app).add("a.txt", "x")
    before = int(time.time())
    url = storage(app).download_link(handle).url
    after = int(time.time())
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert before + 7 <= expires <= after + 7


def test_secret_is_generated_once_and_kept_private(attach_dir: Path) -> None:
    one, two = LocalStorage(str(attach_dir)), LocalStorage(str(attach_dir))
    one.verify()
    assert one.secret == two.secret and len(one.secret) == 64
    mode = os.stat(attach_dir / ".secret").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert LocalStorage(str(attach_dir), secret="x" * 32).secret == b"x" * 32
    assert ".secret" not in "".join(one)  # never listed as an attachment
