"""Attachments in a Google Cloud Storage bucket, through its JSON API.

The object of handle ``/Y/M/D/UUID/NAME`` is ``Y/M/D/UUID/NAME``.  Objects are
written once (``ifGenerationMatch=0``), streamed in 8 MiB chunks, with a
CRC32C that GCS checks and keeps; they are read through ranged downloads of
one generation, whose CRC32C is checked when read from start to end.  Direct
links are V4 signed URLs.  The protocol is `ObjectStorage`'s.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.auth.credentials import AnonymousCredentials, Credentials, Signing
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account
from requests.adapters import HTTPAdapter

from rex.core import Error, UnavailableError

from .handle import handle_name
from .objectstore import CONNECTIONS, REMOVED, TOMBSTONE, Digest, Obj, ObjectStorage, Taken
from .response import content_disposition, content_type
from .storage import PresignedLink
from .stream import Readable

EMULATOR = "STORAGE_EMULATOR_HOST"  # the library's convention, scheme included
GOOGLE = "https://storage.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
UPLOAD_CHUNK_SIZE = 8 << 20  # what an upload holds in memory
TIMEOUT = (10, 60)  # seconds to connect, and to wait for each read
# Transient failures are tried again for 20 s at most (the library's default
# is 2 minutes, which would hold a request that long before a 503).
RETRY = DEFAULT_RETRY.with_timeout(20)


class GCSStorage(ObjectStorage):
    """Attachments as objects of a Google Cloud Storage bucket.

    `key` is the path of a service account JSON key, else the library finds
    default credentials.  `endpoint` is the URL of another JSON API server
    (requests carry the credentials); unset, ``$STORAGE_EMULATOR_HOST`` names
    an emulator, whose requests go without credentials (the key then only
    signs links), else Google's own.  Nothing touches the network, nor reads
    the key, before the first use.
    """

    service = "GCS"
    failures = (api.GoogleAPIError, auth.GoogleAuthError, requests.RequestException)
    page_size = 1000  # objects per listing request
    verify_timeout: float = 10  # seconds `verify()` waits for each answer
    retry = RETRY

    def __init__(self, bucket: str, *, key: str | None = None, max_size: int | None = None,
                 link_expiry: int = 3600, endpoint: str | None = None) -> None:
        super().__init__(max_size=max_size, link_expiry=link_expiry)
        self.bucket = bucket
        self.key = key
        self.emulator = endpoint is None and bool(os.environ.get(EMULATOR))
        self.endpoint = (endpoint or os.environ.get(EMULATOR) or GOOGLE).rstrip("/")
        self._key_credentials: Credentials | None = None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.bucket!r}, key={self.key!r})"

    def _where(self) -> str:
        return f"bucket {self.bucket} at {self.endpoint}"

    def _connect(self) -> storage.Client:
        credentials = None if self.key is None else self._credentials()
        if self.emulator:
            credentials = AnonymousCredentials()
        options = None if self.endpoint == GOOGLE else {"api_endpoint": self.endpoint}
        try:
            client = storage.Client(project=None, credentials=credentials, client_options=options)
        except auth.DefaultCredentialsError:
            raise Error("Cannot find Google Cloud credentials; set:", "attach_gcs_key") from None
        pool = HTTPAdapter(pool_maxsize=CONNECTIONS)
        for scheme in ("https://", "http://"):
            client._http.mount(scheme, pool)
        return client

    def _credentials(self) -> Credentials:
        """The service account of the key file."""
        if self._key_credentials is None:
            try:
                self._key_credentials = service_account.Credentials.from_service_account_file(
                    self.key, scopes=SCOPES)
            except (OSError, ValueError) as exc:
                raise Error("Cannot read the GCS service account key:", self.key).wrap(
                    "Because:", str(exc)) from None
        return self._key_credentials

    def _blob(self, key: str) -> storage.Blob:
        return self.client.bucket(self.bucket).blob(key)

    def _find(self, key: str) -> Obj | None:
        blob = self.client.bucket(self.bucket).get_blob(key, timeout=TIMEOUT, retry=self.retry)
        if blob is None:
            return None
        metadata = blob.metadata or {}
        return Obj(blob.size, blob.updated.timestamp(), f'"{blob.generation}"',
                   str(blob.generation), REMOVED in metadata, blob.crc32c)

    def _looks_first(self, size: int) -> bool:
        """Always: the library does not tell whether a refusal answered a
        retry."""
        return True

    def _put(self, key: str, source: BinaryIO, digest: Digest) -> str:
        """Uploads in one request up to 8 MiB, else in resumable 8 MiB chunks,
        with the CRC32C that GCS must find in what it stores; returns the
        one GCS computed."""
        blob = self._blob(key)
        name = handle_name(key)
        blob.content_disposition = content_disposition(name)
        blob.chunk_size = UPLOAD_CHUNK_SIZE
        try:
            blob.upload_from_file(source, size=digest.size, content_type=content_type(name),
                                  if_generation_match=0, checksum="crc32c",
                                  crc32c_checksum_value=digest.crc32c, timeout=TIMEOUT,
                                  retry=self.retry)
        except api.PreconditionFailed:
            raise Taken() from None
        if blob.crc32c != digest.crc32c:  # the file changed after it was hashed
            blob.delete(if_generation_match=blob.generation, timeout=TIMEOUT)
            raise Error("Attachment changed while being stored:", "/" + key)
        return blob.crc32c  # type: ignore[no-any-return]

    def _read(self, key: str, obj: Obj, start: int) -> Readable | None:
        url = (f"{self.client.api_endpoint}/download/storage/v1/b/{quote(self.bucket, safe='')}"
               f"/o/{quote(key, safe='')}?alt=media&generation={obj.version}")
        headers = {"Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        response = self.client._http.get(url, headers=headers, stream=True, timeout=TIMEOUT)
        if response.status_code != (206 if start else 200):
            response.close()
            if response.status_code in (404, 412):
                return None
            raise api.from_http_response(response)
        return _Download(response)

    def _record(self, key: str, obj: Obj, crc32c: str) -> None:
        """Never needed: GCS has the CRC32C of every object."""
        raise UnavailableError("GCS gave no CRC32C for object:", key).wrap("In:", self._where())

    def _drop(self, key: str) -> None:
        with contextlib.suppress(api.NotFound):
            self._blob(key).delete(timeout=TIMEOUT, retry=self.retry)

    def _bury(self, key: str, obj: Obj) -> None:
        blob = self._blob(key)
        blob.metadata = {REMOVED: "1"}
        try:
            blob.upload_from_string(TOMBSTONE, content_type="text/plain",
                                    if_generation_match=int(obj.version), timeout=TIMEOUT,
                                    retry=self.retry)
        except api.PreconditionFailed:
            raise Taken() from None

    def _list(self) -> Iterator[tuple[str, bool]]:
        """Pages through the bucket in GCS's order, which is sorted."""
        blobs = self.client.list_blobs(self.bucket, page_size=self.page_size, timeout=TIMEOUT,
                                       retry=self.retry,
                                       fields="items(name,metadata),nextPageToken")
        for blob in blobs:
            yield blob.name, REMOVED in (blob.metadata or {})

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

    def _upload_link(self, handle: str, size: int, md5: str | None) -> PresignedLink:
        """A V4 signed PUT that signs ``x-goog-if-generation-match: 0`` (so it
        writes once), the exact size as ``x-goog-content-length-range``, the
        content type of the name and, if given, ``Content-MD5``."""
        headers = {"Content-Type": content_type(handle_name(handle)),
                   "x-goog-content-length-range": f"{size},{size}",
                   "x-goog-if-generation-match": "0"}
        if md5 is not None:
            headers["Content-MD5"] = md5
        url = self._blob(self._key(handle)).generate_signed_url(
            version="v4", method="PUT", expiration=datetime.timedelta(seconds=self.link_expiry),
            headers=dict(headers), credentials=self._signer())  # it adds Host to what it gets
        return PresignedLink(url, method="PUT", headers=headers)

    def download_link(self, handle: str) -> PresignedLink:
        """A V4 signed GET URL that overrides the ``Content-Disposition``."""
        url = self._blob(self._key(handle)).generate_signed_url(
            version="v4", method="GET", expiration=datetime.timedelta(seconds=self.link_expiry),
            response_disposition=content_disposition(handle_name(handle)),
            credentials=self._signer())
        return PresignedLink(url)

    def _signer(self) -> Signing:
        """Credentials with a private key, which links need."""
        credentials = self._credentials() if self.key is not None else self.client._credentials
        if not isinstance(credentials, Signing):
            raise Error("GCS links need a service account key; set:", "attach_gcs_key")
        return credentials


class _Download:
    """A streamed download."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response

    def read(self, size: int = -1) -> bytes:
        return self.response.raw.read(size if size >= 0 else None)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.response.close()
