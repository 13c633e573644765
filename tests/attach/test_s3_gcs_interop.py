"""GCSInteropStorage, the S3 backend in front of Google Cloud Storage's XML API (HMAC keys, endpoint
https://storage.googleapis.com): the requests and links it makes.

GCS cannot be reached from the tests, so every request is caught on
botocore's ``before-send`` event, recorded and answered there with a canned
response: nothing leaves the machine, and the assertions are about what would
have been sent.  Signatures are recomputed here by GCS's V2 rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from backend_s3 import clear_aws_environment
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from urllib3.response import HTTPResponse

from helpers import crc32c_of
from rex.attach.gcs_interop import GCSInteropStorage
from rex.attach.response import content_disposition
from rex.core import Error

GCS = "https://storage.googleapis.com"
BUCKET = "rex-attachments"
ACCESS = "GOOG1EEXAMPLEACCESSKEYID"
SECRET = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"  # not a real key
MiB = 1 << 20
NAME = "Les Misérables.txt"
UPLOAD_ID = "ABPnzm5-upload-id"

# Headers of boto3's default checksums and of aws-chunked streaming, which
# GCS's XML API refuses.
STREAMING_HEADERS = ("x-amz-content-sha256", "x-amz-decoded-content-length", "x-amz-trailer",
                     "x-amz-sdk-checksum-algorithm", "x-amz-checksum-mode", "content-md5")


class Wire:
    """botocore's ``before-send`` handler: records each prepared request and
    answers it with `answers[operation]` (status, headers, body), so that
    nothing is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, AWSPreparedRequest]] = []
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {
            "HeadObject": (404, {}, b""),
            "PutObject": (200, {"ETag": '"5d41402abc4b2a76b9719d911017c592"'}, b""),
            "CreateMultipartUpload": (200, {}, (
                f"<InitiateMultipartUploadResult><Bucket>{BUCKET}</Bucket><Key>k</Key>"
                f"<UploadId>{UPLOAD_ID}</UploadId></InitiateMultipartUploadResult>").encode()),
            "UploadPart": (200, {"ETag": '"7ac66c0f148de9519b8bd264312c4d64"'}, b""),
            "CompleteMultipartUpload": (200, {}, (
                f"<CompleteMultipartUploadResult><Bucket>{BUCKET}</Bucket><Key>k</Key>"
                '<ETag>"3858f62230ac3c915f300c664312c11f-3"</ETag>'
                "</CompleteMultipartUploadResult>").encode()),
        }

    def __call__(self, request: AWSPreparedRequest, event_name: str, **kwargs: Any) -> AWSResponse:
        operation = event_name.rsplit(".", 1)[-1]
        self.sent.append((operation, request))
        status, headers, body = self.answers.get(operation, (200, {}, b""))
        headers = {"Content-Length": str(len(body)), **headers}
        raw = HTTPResponse(body=io.BytesIO(body), headers=headers, status=status,
                           preload_content=False, request_method=request.method)
        return AWSResponse(request.url, status, headers, raw)

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.sent]

    def request(self, operation: str) -> AWSPreparedRequest:
        (request,) = [request for name, request in self.sent if name == operation]
        return request


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_aws_environment(monkeypatch, tmp_path)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def storage(wire: Wire) -> GCSInteropStorage:
    storage = GCSInteropStorage(BUCKET, endpoint=GCS, access_key=ACCESS, secret_key=SECRET,
                        max_size=MiB, link_expiry=600)
    storage.client.meta.events.register("before-send.s3", wire)
    return storage


def headers(request: AWSPreparedRequest) -> dict[str, str]:
    """The request's headers, names in lower case, values as text."""
    return {name.lower(): value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()}


def sign_v2(string_to_sign: str) -> str:
    """The V2 signature: base64 of HMAC-SHA1 with the secret key."""
    digest = hmac.new(SECRET.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def assert_gcs_compatible(request: AWSPreparedRequest) -> None:
    """V2 signed, path-style, no checksum or aws-chunked headers."""
    parts = urlsplit(request.url)
    assert (parts.scheme, parts.netloc) == ("https", "storage.googleapis.com"), request.url
    assert parts.path == f"/{BUCKET}" or parts.path.startswith(f"/{BUCKET}/"), request.url
    sent = headers(request)
    assert re.fullmatch(rf"AWS {ACCESS}:[A-Za-z0-9+/]{{27}}=", sent["authorization"])
    assert not [name for name in sent if name.startswith("x-amz-checksum-")], sent
    assert not set(sent) & set(STREAMING_HEADERS), sent
    assert "aws-chunked" not in sent.get("content-encoding", "")
    assert "transfer-encoding" not in sent


def signs(request: AWSPreparedRequest, string_to_sign: str) -> bool:
    """Is the request's Authorization the V2 signature of this string?"""
    return headers(request)["authorization"] == f"AWS {ACCESS}:{sign_v2(string_to_sign)}"


def test_add_sends_v2_signed_path_style_requests(storage: GCSInteropStorage, wire: Wire) -> None:
    content = b"Fantine, Cosette, Jean Valjean.\n"
    handle = storage.add(NAME, content)
    key = handle[1:]
    assert key.endswith("/Les_Misérables.txt")
    assert wire.operations() == ["HeadObject", "PutObject"]
    path = f"/{BUCKET}/{quote(key)}"
    head, put = wire.request("HeadObject"), wire.request("PutObject")
    for request in (head, put):
        assert_gcs_compatible(request)
        assert urlsplit(request.url).path == path
    assert signs(head, f"HEAD\n\n\n{headers(head)['date']}\n{path}")

    crc32c = crc32c_of(content)
    sent = headers(put)
    assert sent["content-type"] == "text/plain; charset=UTF-8"
    assert sent["x-amz-meta-crc32c"] == crc32c
    assert sent["content-length"] == str(len(content))
    assert "if-none-match" not in sent  # S3's create-only PUT; not sent to GCS
    assert signs(put, f"PUT\n\ntext/plain; charset=UTF-8\n{sent['date']}\n"
                      f"x-amz-meta-crc32c:{crc32c}\n{path}")


def test_multipart_upload_requests(storage: GCSInteropStorage, wire: Wire) -> None:
    storage.add("scan.pdf", io.BytesIO(b"x" * (17 * MiB)))
    assert wire.operations() == ["HeadObject", "CreateMultipartUpload", "UploadPart",
                                 "UploadPart", "UploadPart", "CompleteMultipartUpload"]
    for _, request in wire.sent:
        assert_gcs_compatible(request)
        assert "if-none-match" not in headers(request)
    create = headers(wire.request("CreateMultipartUpload"))
    assert create["content-type"] == "application/pdf"
    assert create["x-amz-meta-crc32c"] == crc32c_of(b"x" * (17 * MiB))
    parts = [request for name, request in wire.sent if name == "UploadPart"]
    assert sorted(headers(request)["content-length"] for request in parts) == sorted(
        [str(8 * MiB), str(8 * MiB), str(MiB)])
    assert all(parse_qs(urlsplit(request.url).query)["uploadId"] == [UPLOAD_ID]
               for request in parts)


def test_open_pins_the_etag(storage: GCSInteropStorage, wire: Wire) -> None:
    handle = storage.reserve("memo.txt")
    wire.answers["HeadObject"] = (200, {"ETag": '"abc"', "Content-Length": "5",
                                        "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, b"")
    wire.answers["GetObject"] = (206, {"ETag": '"abc"', "Content-Range": "bytes 0-4/5"}, b"hello")
    with storage.open(handle) as stream:
        assert stream.read() == b"hello"
    get = wire.request("GetObject")
    assert_gcs_compatible(get)
    assert (headers(get)["if-match"], headers(get)["range"]) == ('"abc"', "bytes=0-")
    wire.answers["GetObject"] = (412, {}, b"")
    with storage.open(handle) as stream, pytest.raises(Error) as info:
        stream.read()
    assert str(info.value) == f"Attachment was removed or replaced while it was read:\n    {handle}"


def test_download_link(storage: GCSInteropStorage, wire: Wire) -> None:
    handle = storage.reserve(NAME)
    before = int(time.time())
    link = storage.download_link(handle)
    after = int(time.time())
    assert wire.sent == []  # made here, not asked for
    assert link.fields == {}
    parts = urlsplit(link.url)
    path = f"/{BUCKET}/{quote(handle[1:])}"
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GCS + path
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert all(len(values) == 1 for values in parse_qs(parts.query).values())
    assert set(query) == {"GoogleAccessId", "Expires", "Signature",
                          "response-content-disposition"}
    assert query["GoogleAccessId"] == ACCESS
    assert query["response-content-disposition"] == content_disposition("Les_Misérables.txt")
    assert query["response-content-disposition"].startswith(
        "attachment; filename=Les_Miserables.txt; filename*=UTF-8''Les_Mis%C3%A9rables.txt")
    assert before + 600 <= int(query["Expires"]) <= after + 600
    # GCS's V2 string-to-sign of a signed URL: verb, MD5, type, expiry and
    # the path alone (response-* parameters are not part of it).
    assert query["Signature"] == sign_v2(f"GET\n\n\n{query['Expires']}\n{path}")


def test_upload_link(storage: GCSInteropStorage, wire: Wire) -> None:
    """A V2 signed PUT over the verb, MD5, type, expiry, the x-goog- headers
    that make it create-only and pin its size, and the path."""
    handle = storage.reserve("Visit 2.pdf")
    md5 = base64.b64encode(hashlib.md5(b"%PDF").digest()).decode()
    before = int(time.time())
    link = storage.upload_link(handle, 4, md5)
    after = int(time.time())
    assert wire.operations() == ["HeadObject"]  # is the handle free?
    assert link.method == "PUT" and link.fields == {}
    assert link.headers == {"Content-Type": "application/pdf", "Content-MD5": md5,
                            "x-goog-content-length-range": "4,4",
                            "x-goog-if-generation-match": "0"}
    parts = urlsplit(link.url)
    path = f"/{BUCKET}/{quote(handle[1:])}"
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == GCS + path
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert set(query) == {"GoogleAccessId", "Expires", "Signature"}
    assert query["GoogleAccessId"] == ACCESS
    assert before + 600 <= int(query["Expires"]) <= after + 600
    assert query["Signature"] == sign_v2(
        f"PUT\n{md5}\napplication/pdf\n{query['Expires']}\n"
        f"x-goog-content-length-range:4,4\nx-goog-if-generation-match:0\n{path}")
