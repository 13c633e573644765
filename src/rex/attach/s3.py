"""Attachments in an Amazon S3 bucket, or on an S3-compatible server.

Layout: the object of handle ``/Y/M/D/UUID/NAME`` has the key
``Y/M/D/UUID/NAME``; its ``Content-Type`` comes from the name and its
metadata ``x-amz-meta-sha256`` is the SHA-256 of its content.  An S3 write
(a single PUT, or a multipart upload once completed) becomes visible whole or
not at all; a failed multipart upload is aborted.

S3-compatible servers (Ceph RADOS Gateway, MinIO) are reached by ``endpoint``
with path-style addressing.  ``https://storage.googleapis.com`` is Google
Cloud Storage's XML API with HMAC keys: it gets V2 signatures, and its links
name the key ``GoogleAccessId`` and sign the path alone.  Everywhere boto3's
default checksums (since 1.36: ``x-amz-checksum-*`` headers, ``aws-chunked``
bodies with trailers over HTTPS) are off: GCS refuses them, and so does
radosgw 16 over HTTPS (``MissingContentLength``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, NoCredentialsError,
                                 PartialCredentialsError)

from rex.core import Error

from .handle import check_handle, handle_name, is_handle
from .response import AttachmentApp, content_disposition, content_type
from .storage import CHUNK_SIZE, PresignedLink, Stat, Storage
from .stream import open_ranges

GCS_HOST = "storage.googleapis.com"
SHA256 = "sha256"  # the metadata key: x-amz-meta-sha256

# Multipart above 16 MiB in parts of 8 MiB, at most 4 parts in memory at once:
# 3 queued or uploading, and the one being read (s3transfer holds that one
# besides `max_in_memory_upload_chunks`).
TRANSFER = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=8 << 20,
                          max_concurrency=4, preferred_transfer_client="classic")
TRANSFER.max_in_memory_upload_chunks = 3

# Requests wait up to a minute for an answer and are tried 3 times; the check
# at startup must fail fast instead (a silent endpoint would hold it 3 minutes).
TIMEOUTS = {"connect_timeout": 5, "read_timeout": 60, "attempts": 3}
CHECK_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 5, "attempts": 2}


class S3Storage(Storage):
    """Attachments as objects of an S3 bucket.

    Unset ``region``, ``access_key`` and ``secret_key`` come from boto3's own
    chain (``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``...); the two keys are set together
    or not at all.  Nothing touches the network until a method needs it: the
    client is made then, once per process.
    """

    page_size = 1000  # objects per listing request

    def __init__(self, bucket: str, *, endpoint: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None,
                 max_size: int | None = None, link_expiry: int = 3600) -> None:
        super().__init__(max_size=max_size, link_expiry=link_expiry)
        if (access_key is None) != (secret_key is None):
            raise Error("S3 access key and secret key must be set together, or neither:",
                        f"access key {'unset' if access_key is None else repr(access_key)}, "
                        f"secret key {'unset' if secret_key is None else 'set'}")
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.access_key = access_key
        self._secret_key = secret_key
        self.is_gcs = endpoint is not None and urlsplit(endpoint).hostname == GCS_HOST
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid = 0

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.bucket!r}, endpoint={self.endpoint!r}, "
                f"region={self.region!r}, access_key={self.access_key!r})")

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use in each process (a client's
        pooled connections must not be shared with a forked child)."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._make_client(**TIMEOUTS)
                self._pid = os.getpid()
            return self._client

    def _make_client(self, connect_timeout: float, read_timeout: float, attempts: int) -> Any:
        config = Config(
            signature_version="s3" if self.is_gcs else "s3v4",
            s3={"addressing_style": "path"} if self.endpoint else {},
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": attempts},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        session = boto3.session.Session(aws_access_key_id=self.access_key,
                                        aws_secret_access_key=self._secret_key,
                                        region_name=self.region)
        client = session.client("s3", endpoint_url=self.endpoint, config=config)
        if not self.is_gcs:
            # Writes create, never replace: S3 answers 412 if the key exists
            # by then.  (radosgw 16 honours this on a single PUT only; on a
            # multipart upload, only the check before the upload guards.)
            for operation in ("PutObject", "CompleteMultipartUpload"):
                client.meta.events.register(f"before-parameter-build.s3.{operation}",
                                            _if_none_match)
        return client

    def _key(self, handle: str) -> str:
        return check_handle(handle)[1:]

    def write(self, handle: str, file: BinaryIO) -> None:
        key = self._key(handle)
        if handle in self:
            raise Error("Attachment already exists:", handle)
        source, digest = _hashed(file)
        try:
            self.client.upload_fileobj(
                source, self.bucket, key, Config=TRANSFER,
                ExtraArgs={"ContentType": content_type(handle_name(handle)),
                           "Metadata": {SHA256: digest}})
        except ClientError as error:
            if _status(error) != 412:
                raise
            # Someone else's object, unless a retry of ours met our own.
            if self._head(handle).get("Metadata", {}).get(SHA256) != digest:
                raise Error("Attachment already exists:", handle) from None
        finally:
            if source is not file:
                source.close()

    def _head(self, handle: str) -> dict[str, Any]:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(handle))
        except ClientError as error:
            if _status(error) == 404:
                raise Error("Attachment does not exist:", handle) from None
            raise

    def open(self, handle: str) -> BinaryIO:
        """Reads through ranged GETs of the object as it was when opened."""
        return self._open(handle, self._head(handle))

    def _open(self, handle: str, head: dict[str, Any]) -> BinaryIO:
        """Reads the object that `head` describes, or fails if it changed."""
        key, etag = self._key(handle), head["ETag"]

        def fetch(start: int) -> Any:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=etag,
                                              Range=f"bytes={start}-")["Body"]
            except ClientError as error:
                if _status(error) == 404:
                    raise Error("Attachment does not exist:", handle) from None
                if _status(error) == 412:
                    raise Error("Attachment changed while it was read:", handle) from None
                raise

        return open_ranges(head["ContentLength"], fetch)

    def stat(self, handle: str) -> Stat:
        return _stat(self._head(handle))

    def route(self, handle: str) -> AttachmentApp:
        """One HEAD for the headers and the body: both are of one version."""
        head = self._head(handle)
        return self._route(handle, _stat(head), lambda: self._open(handle, head))

    def remove(self, handle: str) -> None:
        self._head(handle)  # S3 deletes a missing key without a word
        self.client.delete_object(Bucket=self.bucket, Key=self._key(handle))

    def __iter__(self) -> Iterator[str]:
        """Pages through the bucket, whose keys S3 lists sorted (by UTF-8
        bytes, which is the order of code points)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, PaginationConfig={"PageSize": self.page_size})
        for page in pages:
            for item in page.get("Contents", ()):
                handle = "/" + item["Key"]
                if is_handle(handle):
                    yield handle

    def verify(self) -> None:
        """The bucket must exist and let these credentials in (HEAD bucket),
        which is found out within seconds (a client of its own, short timeouts)."""
        where = f"{self.bucket} at {self.endpoint or 'Amazon S3'}"
        try:
            client = self._make_client(**CHECK_TIMEOUTS)
            where = f"{self.bucket} at {self.endpoint or client.meta.endpoint_url}"
            client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise Error("No S3 credentials are configured for bucket:", where) from None
        except PartialCredentialsError as error:
            raise Error("Incomplete S3 credentials for bucket:", where).wrap(
                "Because:", error) from None
        except ClientError as error:
            status = _status(error)
            if status == 404:
                raise Error("S3 bucket does not exist:", where) from None
            if status in (400, 401, 403):
                raise Error("S3 refused the credentials for bucket:", where) from None
            raise Error("S3 cannot use bucket:", where).wrap(
                "S3 answered:", f"{status} {error.response.get('Error', {}).get('Code')}") from None
        except BotoCoreError as error:
            raise Error("Cannot reach S3 endpoint:", where).wrap("Because:", error) from None

    def upload_link(self, handle: str) -> PresignedLink:
        """A form POST straight to the bucket: the exact key, the content type
        of the name, at most `max_size` bytes."""
        key = self._key(handle)
        mime = content_type(handle_name(handle))
        conditions: list[Any] = [{"Content-Type": mime}]
        if self.max_size is not None:
            conditions.append(["content-length-range", 0, self.max_size])
        post = self.client.generate_presigned_post(
            self.bucket, key, Fields={"Content-Type": mime}, Conditions=conditions,
            ExpiresIn=self.link_expiry)
        fields = post["fields"]
        if self.is_gcs:
            fields = {("GoogleAccessId" if name == "AWSAccessKeyId" else name): value
                      for name, value in fields.items()}
        return PresignedLink(post["url"], fields)

    def download_link(self, handle: str) -> PresignedLink:
        """A presigned GET with the ``Content-Disposition`` of `route()`.

        GCS signs a V2 link over ``/BUCKET/KEY`` alone: unlike S3, its
        canonical resource has no ``response-*`` parameters (see Google's own
        V2 signers), so there the disposition is added after signing.
        """
        params = {"Bucket": self.bucket, "Key": self._key(handle)}
        disposition = content_disposition(handle_name(handle))
        if not self.is_gcs:
            params["ResponseContentDisposition"] = disposition
        url = self.client.generate_presigned_url("get_object", Params=params,
                                                 ExpiresIn=self.link_expiry)
        if self.is_gcs:
            parts = urlsplit(url)
            query = [("GoogleAccessId" if name == "AWSAccessKeyId" else name, value)
                     for name, value in parse_qsl(parts.query, keep_blank_values=True)]
            query.append(("response-content-disposition", disposition))
            url = urlunsplit(parts._replace(query=urlencode(query, safe="", quote_via=quote)))
        return PresignedLink(url)


def _stat(head: dict[str, Any]) -> Stat:
    return Stat(head["ContentLength"], head["LastModified"].timestamp(), head["ETag"])


def _if_none_match(params: dict[str, Any], **kwargs: Any) -> None:
    params.setdefault("IfNoneMatch", "*")


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _hashed(file: BinaryIO) -> tuple[BinaryIO, str]:
    """A seekable file of the content at its start, and its SHA-256: the
    metadata must be known before the upload starts.  A seekable file is read
    twice (the second time from the page cache); any other is spooled to a
    temporary file while it is hashed."""
    digest = hashlib.sha256()
    try:
        seekable = bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        start = file.tell()
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
        file.seek(start)
        return file, digest.hexdigest()
    spool = tempfile.TemporaryFile()
    try:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, digest.hexdigest()  # type: ignore[return-value]
