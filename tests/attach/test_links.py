"""The local backend's signed direct links, through the /attach location."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from helpers import staged
from webob import Request

from rex.attach import LocalStorage, get_storage
from rex.attach.checksum import compute
from rex.attach.signing import sign
from rex.core import ExistsError, Rex, TooLargeError


@pytest.fixture
def app(tmp_path: Path, attach_dir: Path) -> Rex:
    return Rex("rex.attach_demo", attach_dir=str(attach_dir), attach_max_size=1000,
               db=f"sqlite:///{tmp_path}/demo.sqlite")


def storage(app: Rex) -> LocalStorage:
    with app:
        return get_storage()  # type: ignore[return-value]


def put(app: Rex, link, content: bytes = b"data", **headers: str):
    """Sends an upload link as a browser would: its method, URL and headers,
    the content as the body."""
    url = link.url if hasattr(link, "url") else link
    method = getattr(link, "method", "PUT")
    request = Request.blank(url, method=method, body=content,
                            headers={**getattr(link, "headers", {}), **headers})
    return request.get_response(app)


def md5(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content).digest()).decode()


def test_upload_link_stores_once_at_its_handle(app: Rex) -> None:
    handle = storage(app).reserve("a.txt")
    link = storage(app).upload_link(handle, 4)
    assert link.url.startswith("/attach/") and link.method == "PUT" and link.fields == {}
    response = put(app, link)
    assert response.status_int == 201
    assert storage(app).open(handle).read() == b"data"
    assert storage(app).stat(handle).crc32c == compute(io.BytesIO(b"data"))[0]
    again = put(app, link, b"more")  # a replay
    assert again.status_int == 409 and "already exists" in again.text
    assert storage(app).open(handle).read() == b"data"
    with pytest.raises(ExistsError, match="Attachment already exists:"):
        storage(app).upload_link(handle, 4)


def test_removed_handle_is_never_filled_again(app: Rex) -> None:
    handle = storage(app).reserve("a.txt")
    link = storage(app).upload_link(handle, 4)
    assert put(app, link).status_int == 201
    storage(app).remove(handle)
    refill = put(app, link, b"evil")
    assert refill.status_int == 409 and "was removed" in refill.text
    assert handle not in storage(app) and handle not in list(storage(app))
    with pytest.raises(ExistsError, match="was removed"):
        storage(app).write(handle, io.BytesIO(b"evil"))
    with pytest.raises(ExistsError, match="was removed"):
        storage(app).upload_link(handle, 4)


def test_upload_link_pins_size_and_md5(app: Rex) -> None:
    handle = storage(app).reserve("a.txt")
    link = storage(app).upload_link(handle, 4, md5(b"data"))
    assert link.headers == {"Content-MD5": md5(b"data")}
    assert put(app, link, b"dat").status_int == 400  # shorter than signed
    assert put(app, link, b"datum").status_int == 400  # longer
    assert put(app, link, b"DATA").status_int == 400  # another MD5
    forged = link.url.replace("size=4", "size=5")
    assert put(app, forged, b"data!", **{"Content-MD5": md5(b"data!")}).status_int == 403
    assert handle not in storage(app)
    assert put(app, link, b"data").status_int == 201
    with pytest.raises(TooLargeError, match="at most 1000 bytes"):
        storage(app).upload_link(storage(app).reserve("b.txt"), 1001)


def test_download_link_needs_no_session(app: Rex) -> None:
    handle = storage(app).add("a.txt", "secret data")
    plain = Request.blank("/attach" + handle).get_response(app)
    assert plain.status_int == 401
    response = Request.blank(storage(app).download_link(handle).url).get_response(app)
    assert response.status_int == 200 and response.body == b"secret data"
    head = Request.blank(storage(app).download_link(handle).url, method="HEAD").get_response(app)
    assert head.status_int == 200 and head.body == b""


def test_links_are_bound_to_method_handle_and_parameters(app: Rex) -> None:
    handle = storage(app).add("a.txt", "x")
    download = storage(app).download_link(handle).url
    upload_link = storage(app).upload_link(storage(app).reserve("b.txt"), 4)
    assert put(app, download).status_int == 403  # a GET link used to PUT
    assert Request.blank(upload_link.url).get_response(app).status_int == 403  # and the reverse
    assert Request.blank(download[:-1] + ("0" if download[-1] != "0" else "1")
                         ).get_response(app).status_int == 403
    assert Request.blank(download + "&extra=1").get_response(app).status_int == 403
    # A later expiry time written into the link: the signature no longer fits.
    tampered = download.replace("expires=", "expires=1")
    assert Request.blank(tampered).get_response(app).status_int == 403
    assert Request.blank("/attach" + handle + "?signature=x").get_response(app).status_int == 403
    assert put(app, "/attach" + handle).status_int == 405  # unsigned writes never


def test_unsigned_writes_are_405_whoever_asks(tmp_path: Path, attach_dir: Path) -> None:
    opened = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=f"sqlite:///{tmp_path}/d.db",
                 access={"rex.attach": "authenticated"})
    handle = storage(opened).reserve("a.txt")
    for environ in [{"REMOTE_USER": "ann"}, {}]:
        for method in ("PUT", "POST"):
            request = Request.blank("/attach" + handle, method=method, body=b"x",
                                    environ=environ)
            response = request.get_response(opened)
            assert response.status_int == 405
            assert "POST" not in response.headers["Allow"]
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


def signed_url(app: Rex, method: str, handle: str, expires: int, **params: str) -> str:
    """A link as `download_link()` makes it, but expiring at `expires`,
    signed with the storage's own secret."""
    params = {"expires": str(expires), **params}
    params["signature"] = sign(storage(app).secret, method, handle, params)
    return f"/attach{quote(handle)}?" + urlencode(params)


def test_expired_links_are_refused(app: Rex) -> None:
    """Links with a right signature: good until their time, refused after."""
    handle = storage(app).add("a.txt", "x")
    now = int(time.time())
    assert Request.blank(signed_url(app, "GET", handle, now + 60)).get_response(app).body == b"x"
    for expires in (now - 1, now - 3600):
        assert Request.blank(signed_url(app, "GET", handle, expires)).get_response(app).status_int == 403
    reserved = storage(app).reserve("b.txt")
    assert put(app, signed_url(app, "PUT", reserved, now - 1, size="4")).status_int == 403
    assert reserved not in storage(app)
    assert put(app, signed_url(app, "PUT", reserved, now + 60, size="4")).status_int == 201


def test_upload_link_cleans_up_what_it_refused(app: Rex, attach_dir: Path) -> None:
    handle = storage(app).reserve("big.bin")
    link = storage(app).upload_link(handle, 10, md5(b"0123456789"))
    assert put(app, link, b"9876543210").status_int == 400
    assert handle not in storage(app)
    assert staged(attach_dir) == []


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


def test_links_follow_where_the_application_serves_attachments(attach_dir: Path) -> None:
    """With rex.attach as the main package, /attach is the application's root."""
    app = Rex("rex.attach", attach_dir=str(attach_dir))
    with app:
        handle = get_storage().add("a.txt", "served at the root")
        link = get_storage().download_link(handle)
    assert link.url.startswith(quote(handle) + "?expires=")
    assert Request.blank(link.url).get_response(app).body == b"served at the root"
