"""The GCS backend of the contract suite: fake-gcs-server on 127.0.0.1.

fake-gcs-server (1.54) enforces nothing of a link: it serves tampered and
expired signed URLs, and stores form POSTs with a bad signature, after their
expiration, over their content-length-range or with another Content-Type
than their policy names.  So links are checked offline here as Google checks
them: a V4 signed URL (GOOG4-RSA-SHA256, signed over the host header) or a V4
POST policy, signed with the throw-away service account key of rex.attach.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import requests
from backends import Backend
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
        if method == "GET" and not link.fields:
            return self.check_url(link.url, handle)
        if method == "POST" and link.fields:
            return self.check_policy(link.fields, handle)
        return False

    def check_url(self, url: str, handle: str) -> bool:
        """A V4 signed URL: its signature over the canonical request rebuilt
        from the URL, its validity now, and its object."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(query)
        signature = params.pop("X-Goog-Signature", "")
        if params.get("X-Goog-SignedHeaders") != "host" or len(params) != len(query) - 1:
            return False
        canonical_query = "&".join(f"{_encode(name)}={_encode(value)}"
                                   for name, value in sorted(query) if name != "X-Goog-Signature")
        canonical_request = "\n".join([
            "GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host",
            "UNSIGNED-PAYLOAD"])
        if not self._credential_ok(params, expires=params.get("X-Goog-Expires", "")):
            return False
        string_to_sign = "\n".join([
            ALGORITHM, params["X-Goog-Date"], params["X-Goog-Credential"].split("/", 1)[1],
            hashlib.sha256(canonical_request.encode()).hexdigest()])
        return (self._signed(string_to_sign.encode(), signature)
                and unquote(parts.path) == f"/{self.bucket}{handle}")

    def check_policy(self, fields: dict[str, str], handle: str) -> bool:
        """A V4 POST policy: its signature over the base64 policy document,
        its expiration, and conditions that the form meets and that pin the
        bucket and the key to this object."""
        fields = {name.lower(): value for name, value in fields.items()}
        try:
            policy = json.loads(base64.b64decode(fields["policy"], validate=True))
        except (KeyError, ValueError, binascii.Error):
            return False
        params = {"X-Goog-Algorithm": fields.get("x-goog-algorithm"),
                  "X-Goog-Credential": fields.get("x-goog-credential", ""),
                  "X-Goog-Date": fields.get("x-goog-date", "")}
        if not (self._credential_ok(params, expires=None)
                and self._signed(fields["policy"].encode(), fields.get("x-goog-signature", ""))):
            return False
        try:
            expiration = datetime.datetime.fromisoformat(policy["expiration"])
        except (KeyError, TypeError, ValueError):
            return False
        if expiration.tzinfo is None or expiration.timestamp() <= time.time():
            return False
        pinned = {}
        for op, name, value in _conditions(policy):
            if op == "content-length-range":
                continue  # what `allows_size` checks
            have = self.bucket if name == "bucket" else fields.get(name, "")
            if op == "eq" and have == value:
                pinned[name] = value
            elif not (op == "starts-with" and have.startswith(value)):
                return False
        return pinned.get("bucket") == self.bucket and pinned.get("key") == handle[1:]

    def allows_size(self, link: Any, size: int) -> bool:
        """Does the POST policy's content-length-range admit `size` bytes?"""
        policy = json.loads(base64.b64decode(link.fields["policy"]))
        return all(low <= size <= high for op, low, high in _conditions(policy)
                   if op == "content-length-range")

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


def _conditions(policy: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """A POST policy's conditions as (operator, field name or minimum, value
    or maximum): ``{"key": V}`` is ``("eq", "key", V)``."""
    conditions = []
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            [(name, value)] = condition.items()
            conditions.append(("eq", name.lower(), value))
        elif condition[0].lower() == "content-length-range":
            conditions.append(("content-length-range", condition[1], condition[2]))
        else:
            conditions.append((condition[0].lower(), condition[1].lstrip("$").lower(),
                               condition[2]))
    return conditions


def _encode(text: str) -> str:
    """Percent-encoding as in canonical requests: all but unreserved characters."""
    return quote(text, safe="-_.~")


def start_gcs(tmp: Path) -> Backend:
    """A fake-gcs-server with an empty bucket, and a key that signs links."""
    server = start_fake_gcs(tmp)
    try:
        create_bucket(server)
    except BaseException:
        server.stop()
        raise
    key_path = tmp / "service-account.json"
    checker = LinkChecker(write_key(key_path), BUCKET)
    return Backend("gcs", {"attach_gcs_bucket": BUCKET, "attach_gcs_key": str(key_path)},
                   enforces_signatures=False, enforces_size=False,
                   env={"STORAGE_EMULATOR_HOST": server.endpoint}, stop=server.stop,
                   verify=checker, allows_size=checker.allows_size)
