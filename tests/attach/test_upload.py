"""upload(), download(), AttachmentVal and get_storage() in an application."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import pytest
from webob import Request

from rex.attach import Attachment, AttachmentVal, LocalStorage, download, get_storage, upload
from rex.attach.checksum import compute
from rex.core import Error, Rex
from rex.web import Upload


def test_get_storage_is_cached_per_application(demo: Rex, attach_dir: Path) -> None:
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    assert storage.path == str(attach_dir)
    assert get_storage() is storage


def test_upload_takes_a_webob_form_field(demo: Rex) -> None:
    request = Request.blank("/upload", POST={"attachment": ("memo.txt", "Feed the cats!")})
    handle = upload(request.params["attachment"])
    assert handle.endswith("/memo.txt")
    assert get_storage().open(handle).read() == b"Feed the cats!"
    response = download(handle)(Request.blank("/download"))
    assert response.status_int == 200 and response.body == b"Feed the cats!"


def test_upload_takes_a_name_and_file_pair(demo: Rex) -> None:
    handle = upload(("notes.md", io.BytesIO(b"# notes")))
    assert get_storage().open(handle).read() == b"# notes"


def test_upload_of_a_spooled_file_moves_it_into_place(demo: Rex) -> None:
    file, path = get_storage().spool()
    file.write(b"spooled")
    file.flush()
    file.seek(0)
    spooled = Upload("a.txt", "text/plain", file, path)
    handle = upload(spooled)
    spooled.discard()
    assert get_storage().open(handle).read() == b"spooled"
    assert not Path(path).exists()
    # No parser computed its CRC32C: the storage read it once to record it.
    assert get_storage().stat(handle).crc32c == compute(io.BytesIO(b"spooled"))[0]


def test_attachment_val() -> None:
    validate = AttachmentVal()
    file = io.BytesIO(b"x")
    assert validate(("a.txt", file)) == Attachment("a.txt", file)
    field = Request.blank("/", POST={"f": ("b.txt", b"y")}).POST["f"]
    assert validate(field).name == "b.txt" and validate(field).content.read() == b"y"
    for bad in ["text", None, ("a.txt", "not a file"), (1, file), Upload("", "", file, None)]:
        with pytest.raises(Error) as info:
            validate(bad)
        assert str(info.value) == f"Expected an uploaded file\nGot:\n    {bad!r}"


@pytest.mark.parametrize("settings, message", [
    ({}, "At least one of the parameters must be set:\n    attach_dir, attach_gcs_bucket, attach_s3_bucket"),
    ({"attach_dir": "{cwd}", "attach_s3_bucket": "bucket"},
     "Only one of the parameters must be set:\n    attach_dir, attach_s3_bucket"),
])
def test_exactly_one_backend(tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(Error) as info:
        Rex("rex.attach", **settings)
    assert str(info.value).startswith(message + "\nWhile initializing RexDB application:\n    rex.attach")


def test_attach_location(tmp_path: Path, attach_dir: Path) -> None:
    db = f"sqlite:///{tmp_path}/demo.sqlite"
    closed = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=db)
    opened = Rex("rex.attach_demo", attach_dir=str(attach_dir), db=db,
                 access={"rex.attach": "anybody"})
    with opened:
        handle = get_storage().add("Les Misérables.txt", "Fantine")
    url = "/attach" + quote(handle)
    assert Request.blank(url).get_response(closed).status_int == 401
    response = Request.blank(url).get_response(opened)
    assert response.status_int == 200 and response.body == b"Fantine"
    assert Request.blank(url, method="HEAD").get_response(opened).body == b""
    assert Request.blank(url, method="PUT").get_response(opened).status_int == 405  # unsigned
    assert Request.blank(url, method="POST").get_response(opened).status_int == 405
    assert Request.blank(url + "x").get_response(opened).status_int == 404
    assert Request.blank("/attach/../../etc/passwd").get_response(opened).status_int == 404
    assert Request.blank("/attach/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/x.txt"
                         ).get_response(opened).status_int == 404
