"""Attachments in a Google Cloud Storage bucket, through its JSON API.

The object of handle ``/Y/M/D/UUID/NAME`` is ``Y/M/D/UUID/NAME``.  Objects are
written once (``ifGenerationMatch=0``), streamed in 8 MiB chunks, with their
SHA-256 in the metadata and a CRC32C that GCS checks; they are read through
ranged downloads whose CRC32C is checked when read from start to end.  Direct
links are V4 signed URLs and POST policies.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

import google_crc32c
import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.auth.credentials import AnonymousCredentials, Credentials, Signing
from google.cloud import storage
from google.oauth2 import service_account

from rex.core import Error

from .handle import check_handle, handle_name, is_handle
from .response import AttachmentApp, content_disposition, content_type
from .storage import CHUNK_SIZE, PresignedLink, Stat, Storage
from .stream import open_ranges

EMULATOR = "STORAGE_EMULATOR_HOST"  # the library's convention, scheme included
GOOGLE = "https://storage.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
UPLOAD_CHUNK_SIZE = 8 << 20  # what an upload holds in memory
TIMEOUT = (10, 60)  # seconds to connect, and to wait for each read


class GCSStorage(Storage):
    """Attachments as objects of a Google Cloud Storage bucket.

    `key` is the path of a service account JSON key, else the library finds
    default credentials.  `endpoint` is the URL of another JSON API server
    (requests carry the credentials); unset, ``$STORAGE_EMULATOR_HOST`` names
    an emulator, whose requests go without credentials (the key then only
    signs links), else Google's own.  Nothing touches the network, nor reads
    the key, before the first use.
    """

    page_size = 1000  # objects per listing request
    verify_timeout: float = 10  # seconds `verify()` waits for each answer

    def __init__(self, bucket: str, *, key: str | None = None, max_size: int | None = None,
                 link_expiry: int = 3600, endpoint: str | None = None) -> None:
        super().__init__(max_size=max_size, link_expiry=link_expiry)
        self.bucket = bucket
        self.key = key
        self.emulator = endpoint is None and bool(os.environ.get(EMULATOR))
        self.endpoint = (endpoint or os.environ.get(EMULATOR) or GOOGLE).rstrip("/")
        self._client: storage.Client | None = None
        self._key_credentials: Credentials | None = None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.bucket!r}, key={self.key!r})"

    @property
    def client(self) -> storage.Client:
        """The client, made on first use."""
        if self._client is None:
            credentials = None if self.key is None else self._key()
            if self.emulator:
                credentials = AnonymousCredentials()
            options = None if self.endpoint == GOOGLE else {"api_endpoint": self.endpoint}
            try:
                self._client = storage.Client(project=None, credentials=credentials,
                                              client_options=options)
            except auth.DefaultCredentialsError:
                raise Error("Cannot find Google Cloud credentials; set:", "attach_gcs_key") from None
        return self._client

    def _key(self) -> Credentials:
        """The service account of the key file."""
        if self._key_credentials is None:
            try:
                self._key_credentials = service_account.Credentials.from_service_account_file(
                    self.key, scopes=SCOPES)
            except (OSError, ValueError) as exc:
                raise Error("Cannot read the GCS service account key:", self.key).wrap(
                    "Because:", str(exc)) from None
        return self._key_credentials

    def _blob(self, handle: str) -> storage.Blob:
        name = check_handle(handle)[1:]
        return self.client.bucket(self.bucket).blob(name)

    def _reload(self, handle: str) -> storage.Blob:
        blob = self._blob(handle)
        try:
            blob.reload(timeout=TIMEOUT)
        except api.NotFound:
            raise Error("Attachment does not exist:", handle) from None
        return blob

    def write(self, handle: str, file: BinaryIO) -> None:
        """Uploads in one request up to 8 MiB, else in resumable 8 MiB chunks.

        A first pass computes the SHA-256 (kept in the metadata, which must be
        set before the upload) and the CRC32C, which GCS must find in what it
        stores, so the metadata describes the content; a file that cannot seek
        is spooled to a temporary file in that pass.  An existing object is
        never replaced: `exists()` spares uploading what GCS would refuse at
        the end, and ``ifGenerationMatch=0`` closes the race.
        """
        blob = self._blob(handle)
        if blob.exists(timeout=TIMEOUT):
            raise Error("Attachment already exists:", handle)
        with contextlib.ExitStack() as stack:
            source = _seekable(file)
            if source is None:
                source = stack.enter_context(tempfile.TemporaryFile())
                sha256, crc32c, size = _digest(file, copy=source)
                source.seek(0)
            else:
                start = source.tell()
                sha256, crc32c, size = _digest(source)
                source.seek(start)
            name = handle_name(handle)
            blob.metadata = {"sha256": sha256}
            blob.content_disposition = content_disposition(name)
            blob.chunk_size = UPLOAD_CHUNK_SIZE
            try:
                blob.upload_from_file(source, size=size, content_type=content_type(name),
                                      if_generation_match=0, checksum="crc32c",
                                      crc32c_checksum_value=crc32c, timeout=TIMEOUT)
            except api.PreconditionFailed:
                # Someone else's object, unless a retry met what our first attempt stored.
                blob.reload(timeout=TIMEOUT)
                if (blob.metadata or {}).get("sha256") != sha256:
                    raise Error("Attachment already exists:", handle) from None
        if blob.crc32c != crc32c:  # the file changed after the first pass
            blob.delete(if_generation_match=blob.generation, timeout=TIMEOUT)
            raise Error("Attachment changed while being stored:", handle)

    def open(self, handle: str) -> BinaryIO:
        """The generation found now, through ranged streaming downloads."""
        return self._open(handle, self._reload(handle))

    def _open(self, handle: str, blob: storage.Blob) -> BinaryIO:
        """Reads the generation that `blob` describes."""
        url = (f"{self.client.api_endpoint}/download/storage/v1/b/{quote(self.bucket, safe='')}"
               f"/o/{quote(blob.name, safe='')}?alt=media&generation={blob.generation}")
        session = self.client._http
        crc32c = base64.b64decode(blob.crc32c) if blob.crc32c else None
        size: int = blob.size

        def fetch(start: int) -> _Download:
            headers = {"Accept-Encoding": "identity"}
            if start:
                headers["Range"] = f"bytes={start}-"
            response = session.get(url, headers=headers, stream=True, timeout=TIMEOUT)
            if response.status_code != (206 if start else 200):
                response.close()
                if response.status_code == 404:
                    raise Error("Attachment does not exist:", handle)
                raise OSError(f"GCS answered {response.status_code} reading {handle}")
            return _Download(response, handle, size - start, crc32c if start == 0 else None)

        return open_ranges(size, fetch)

    def stat(self, handle: str) -> Stat:
        return _stat(self._reload(handle))

    def route(self, handle: str) -> AttachmentApp:
        """One lookup for the headers and the body: both are of one generation."""
        blob = self._reload(handle)
        return self._route(handle, _stat(blob), lambda: self._open(handle, blob))

    def remove(self, handle: str) -> None:
        """Checks that the object exists first: a retried delete may find it
        gone, deleted by its own first attempt."""
        blob = self._reload(handle)
        with contextlib.suppress(api.NotFound):
            blob.delete(timeout=TIMEOUT)

    def __iter__(self) -> Iterator[str]:
        """Pages through the bucket in GCS's order, which is sorted."""
        blobs = self.client.list_blobs(self.bucket, page_size=self.page_size, timeout=TIMEOUT,
                                       fields="items(name),nextPageToken")
        for blob in blobs:
            if is_handle("/" + blob.name):
                yield "/" + blob.name

    def verify(self) -> None:
        """Lists one object (what attachments need, unlike reading the
        bucket's metadata), without retries, within `verify_timeout`."""
        where = f"{self.endpoint}, bucket {self.bucket}"
        try:
            list(self.client.list_blobs(self.bucket, max_results=1, retry=None,
                                        timeout=self.verify_timeout))
        except Error as error:
            raise error.wrap("While checking GCS at:", where) from None
        except api.NotFound:
            raise Error("GCS bucket does not exist:", self.bucket).wrap(
                "At:", self.endpoint) from None
        except (api.Unauthorized, api.Forbidden, auth.GoogleAuthError) as exc:
            raise Error("Cannot authenticate to GCS with:", self.key or "default credentials").wrap(
                "Because:", str(exc)).wrap("While checking GCS at:", where) from None
        except api.GoogleAPICallError as exc:
            raise Error("GCS cannot use bucket:", self.bucket).wrap(
                "GCS answered:", str(exc).splitlines()[0]).wrap(
                "While checking GCS at:", self.endpoint) from None
        except requests.RequestException as exc:
            raise Error("Cannot reach GCS at:", self.endpoint).wrap("Because:", str(exc)).wrap(
                "While checking GCS bucket:", self.bucket) from None

    def upload_link(self, handle: str) -> PresignedLink:
        """A V4 POST policy for exactly this object, its type and size range."""
        name = handle_name(check_handle(handle))
        conditions = [] if self.max_size is None else [["content-length-range", 0, self.max_size]]
        policy = self.client.generate_signed_post_policy_v4(
            self.bucket, handle[1:], expiration=datetime.timedelta(seconds=self.link_expiry),
            conditions=conditions, credentials=self._signer(),
            fields={"Content-Type": content_type(name),
                    "Content-Disposition": content_disposition(name)})
        # GCS documents the form's action as .../BUCKET (fake-gcs needs that).
        return PresignedLink(policy["url"].rstrip("/"), policy["fields"])

    def download_link(self, handle: str) -> PresignedLink:
        """A V4 signed GET URL that overrides the ``Content-Disposition``."""
        blob = self._blob(handle)
        url = blob.generate_signed_url(
            version="v4", method="GET", expiration=datetime.timedelta(seconds=self.link_expiry),
            response_disposition=content_disposition(handle_name(handle)),
            credentials=self._signer())
        return PresignedLink(url)

    def _signer(self) -> Signing:
        """Credentials with a private key, which links need."""
        credentials = self._key() if self.key is not None else self.client._credentials
        if not isinstance(credentials, Signing):
            raise Error("GCS links need a service account key; set:", "attach_gcs_key")
        return credentials


def _stat(blob: storage.Blob) -> Stat:
    return Stat(blob.size, blob.updated.timestamp(), f'"{blob.generation}"')


class _Download:
    """A streamed download of `size` bytes; checks their CRC32C if given one."""

    def __init__(self, response: requests.Response, handle: str, size: int,
                 crc32c: bytes | None) -> None:
        self.response = response
        self.handle = handle
        self.remaining = size
        self.crc32c = crc32c
        self.checksum = google_crc32c.Checksum()

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.response.raw.read(size if size >= 0 else None)
        if self.crc32c is not None:
            self.checksum.update(data)
            self.remaining -= len(data)
            if self.remaining == 0 and self.checksum.digest() != self.crc32c:
                raise Error("Attachment is damaged: its CRC32C does not match:", self.handle)
        return data

    def close(self) -> None:
        self.response.close()


def _seekable(file: Any) -> BinaryIO | None:
    """The file if it can seek, or the seekable file it reads from (a spooled
    form field), else None."""
    for candidate in (file, getattr(file, "file", None)):
        try:
            if candidate is not None and candidate.seekable():
                return candidate  # type: ignore[no-any-return]
        except (AttributeError, OSError, ValueError):
            pass
    return None


def _digest(source: BinaryIO, copy: BinaryIO | None = None) -> tuple[str, str, int]:
    """Reads to the end: SHA-256 (hex), CRC32C (base64, as GCS has it) and
    size, copying what it reads to `copy` if given."""
    sha256, crc32c, size = hashlib.sha256(), google_crc32c.Checksum(), 0
    while chunk := source.read(CHUNK_SIZE):
        sha256.update(chunk)
        crc32c.update(chunk)
        size += len(chunk)
        if copy is not None:
            copy.write(chunk)
    return sha256.hexdigest(), base64.b64encode(crc32c.digest()).decode(), size
