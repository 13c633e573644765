"""The GCS backend of the contract suite: fake-gcs-server on 127.0.0.1.

fake-gcs-server (1.54) enforces nothing of a link: it serves tampered and
expired signed URLs, and stores signed PUTs with a bad signature, after their
expiration, over their x-goog-content-length-range, with another MD5 or
Content-Type than they sign, and replaces an object despite
``x-goog-if-generation-match: 0``.  So links are checked offline here as
Google checks them: a V4 signed URL (GOOG4-RSA-SHA256) over the headers it
signs, signed with the throw-away service account key of rex.attach.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests
from backends import Backend, flip
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from servers import HOST, GCSServer, start_fake_gcs

BUCKET = "attachments"
PROJECT = "rex-test"
ALGORITHM = "GOOG4-RSA-SHA256"
MAX_EXPIRES = 7 * 24 * 3600  # the longest validity Google accepts


def create_bucket(server: GCSServer, bucket: str = BUCKET) -> None:
    """Creates a bucket through the server's JSON API."""
    response = requests.post(f"{server.endpoint}/storage/v1/b", params={"project": PROJECT},
                             json={"name": bucket}, timeout=10)
    response.raise_for_status()


def write_key(path: Path) -> dict[str, str]:
    """Writes a new service account JSON key (its RSA key made here) and returns it.

    Its token URI is port 1 of 127.0.0.1, closed: nothing may ask Google for a token.
    """
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key = {"type": "service_account", "project_id": PROJECT,
           "private_key_id": secrets.token_hex(20), "private_key": pem.decode(),
           "client_email": f"attach@{PROJECT}.iam.gserviceaccount.com",
           "client_id": str(secrets.randbelow(10**20)),
           "token_uri": f"http://{HOST}:1/token"}
    path.write_text(json.dumps(key))
    return key


class LinkChecker:
    """Checks links offline as Google would, against one service account."""

    def __init__(self, key: dict[str, str], bucket: str) -> None:
        private = serialization.load_pem_private_key(key["private_key"].encode(), None)
        self.public_key: Any = private.public_key()
        self.email = key["client_email"]
        self.bucket = bucket

    def __call__(self, link: Any, method: str, handle: str) -> bool:
        """Would Google accept this link for `method` on the object of `handle`?"""
        return (not link.fields and link.method == method
                and self.check_url(link.url, handle, method, link.headers))

    def check_url(self, url: str, handle: str, method: str = "GET",
                  headers: dict[str, str] | None = None) -> bool:
        """A V4 signed URL sent with `headers`: its signature over the
        canonical request rebuilt from the URL and the headers it signs, its
        validity now, and its object."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(query)
        signature = params.pop("X-Goog-Signature", "")
        sent = {name.lower(): " ".join(value.split()) for name, value in (headers or {}).items()}
        sent["host"] = parts.netloc
        signed = params.get("X-Goog-SignedHeaders", "").split(";")
        if "host" not in signed or len(params) != len(query) - 1 or set(sent) - set(signed):
            return False  # every header sent must be signed (as Google requires of x-goog-*)
        if any(name not in sent for name in signed):
            return False
        canonical_query = "&".join(f"{_encode(name)}={_encode(value)}"
                                   for name, value in sorted(query) if name != "X-Goog-Signature")
        canonical_headers = "".join(f"{name}:{sent[name]}\n" for name in signed)
        canonical_request = "\n".join([
            method, parts.path, canonical_query, canonical_headers, ";".join(signed),
            "UNSIGNED-PAYLOAD"])
        if not self._credential_ok(params, expires=params.get("X-Goog-Expires", "")):
            return False
        string_to_sign = "\n".join([
            ALGORITHM, params["X-Goog-Date"], params["X-Goog-Credential"].split("/", 1)[1],
            hashlib.sha256(canonical_request.encode()).hexdigest()])
        return (self._signed(string_to_sign.encode(), signature)
                and unquote(parts.path) == f"/{self.bucket}{handle}")

    def create_only(self, link: Any, handle: str) -> bool:
        """Does the link sign ``x-goog-if-generation-match: 0``, which makes
        Google refuse it once the object exists?"""
        return (self(link, "PUT", handle)
                and link.headers.get("x-goog-if-generation-match") == "0")

    def allows_size(self, link: Any, size: int) -> bool:
        """Does the link's signed ``x-goog-content-length-range`` admit `size` bytes?"""
        low, high = link.headers["x-goog-content-length-range"].split(",")
        return int(low) <= size <= int(high)

    def _credential_ok(self, params: dict[str, Any], expires: str | None) -> bool:
        """The algorithm, the credential (this account, the scope of the
        date) and, for a URL, a validity that has not run out."""
        try:
            email, day, region, service, request = params["X-Goog-Credential"].split("/")
            date = datetime.datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except (KeyError, ValueError):
            return False
        if (params.get("X-Goog-Algorithm") != ALGORITHM or email != self.email
                or day != params["X-Goog-Date"][:8] or service != "storage"
                or request != "goog4_request" or not region):
            return False
        if expires is None:
            return True
        if not expires.isdigit() or not 1 <= int(expires) <= MAX_EXPIRES:
            return False
        return date.timestamp() <= time.time() < date.timestamp() + int(expires)

    def _signed(self, message: bytes, signature: str) -> bool:
        """Is `signature` (hex) this account's RSA-SHA256 signature of `message`?"""
        try:
            self.public_key.verify(bytes.fromhex(signature), message, padding.PKCS1v15(),
                                   hashes.SHA256())
        except (ValueError, InvalidSignature):
            return False
        return True


def _encode(text: str) -> str:
    """Percent-encoding as in canonical requests: all but unreserved characters."""
    return quote(text, safe="-_.~")


def start_gcs(tmp: Path) -> Backend:
    """A fake-gcs-server with an empty bucket, and a key that signs links;
    its objects are files, which damage changes on disk (over the JSON API
    the server would compute the new content's CRC32C)."""
    objects = tmp / "objects"
    server = start_fake_gcs(tmp, data_dir=objects)
    try:
        create_bucket(server)
    except BaseException:
        server.stop()
        raise
    key_path = tmp / "service-account.json"
    checker = LinkChecker(write_key(key_path), BUCKET)
    return Backend("gcs", {"attach_gcs_bucket": BUCKET, "attach_gcs_key": str(key_path)},
                   enforces_signatures=False, enforces_size=False, enforces_preconditions=False,
                   env={"STORAGE_EMULATOR_HOST": server.endpoint}, stop=server.stop,
                   verify=checker, allows_size=checker.allows_size,
                   create_only=checker.create_only,
                   damage=lambda handle, offset: flip(objects / BUCKET / handle[1:], offset))
