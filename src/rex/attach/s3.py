"""Attachments in an Amazon S3 bucket, or on an S3-compatible server.

Layout: the object of handle ``/Y/M/D/UUID/NAME`` has the key
``Y/M/D/UUID/NAME``; its ``Content-Type`` comes from the name and its
metadata ``x-amz-meta-crc32c`` is the CRC32C of its content (objects written
before checksums have a ``x-amz-meta-sha256`` instead, which is not
checked; `record_crc32c()` adds the CRC32C).  An S3 write
(a single PUT, or a multipart upload once completed) becomes visible whole or
not at all; a failed multipart upload is aborted.  The protocol (create-only
writes, tombstones, pinned reads) is `ObjectStorage`'s.

S3-compatible servers (Ceph RADOS Gateway, MinIO) are reached by ``endpoint``
with path-style addressing.  boto3's default checksums (since 1.36:
``x-amz-checksum-*`` headers, ``aws-chunked`` bodies with trailers over HTTPS)
are off: radosgw 16 refuses them over HTTPS (``MissingContentLength``), and
so does GCS's XML API (`rex.attach.gcs_interop`); a single PUT sends the
CRC32C it computed as a plain ``x-amz-checksum-crc32c`` header instead,
which S3 checks (radosgw 16 ignores it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from rex.core import Error

from .handle import handle_name
from .objectstore import CONNECTIONS, CRC32C, REMOVED, TOMBSTONE, Digest, Obj, ObjectStorage, Taken
from .response import content_disposition, content_type
from .storage import PresignedLink
from .stream import Readable

# A tombstone's listing: its size and the ETag of a single PUT (its MD5).
TOMBSTONE_ETAG = f'"{hashlib.md5(TOMBSTONE).hexdigest()}"'

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


class S3Storage(ObjectStorage):
    """Attachments as objects of an S3 bucket.

    Unset ``region``, ``access_key`` and ``secret_key`` come from boto3's own
    chain (``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``...); the two keys are set together
    or not at all.  Nothing touches the network until a method needs it.
    """

    service = "S3"
    failures = (BotoCoreError, ClientError)
    page_size = 1000  # objects per listing request
    signature_version = "s3v4"
    create_only = True  # does the store honour ``If-None-Match: *`` on writes?
    ceph_copy_headers = True  # also send a copy's conditions under radosgw's names
    checksum_header = True  # may a PUT carry ``x-amz-checksum-crc32c``?

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

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.bucket!r}, endpoint={self.endpoint!r}, "
                f"region={self.region!r}, access_key={self.access_key!r})")

    def _where(self) -> str:
        return f"bucket {self.bucket} at {self.endpoint or 'Amazon S3'}"

    def _connect(self) -> Any:
        return self._make_client(**TIMEOUTS)

    def _make_client(self, connect_timeout: float, read_timeout: float, attempts: int) -> Any:
        config = Config(
            signature_version=self.signature_version,
            s3={"addressing_style": "path"} if self.endpoint else {},
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            max_pool_connections=CONNECTIONS,
            retries={"mode": "standard", "total_max_attempts": attempts},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        session = boto3.session.Session(aws_access_key_id=self.access_key,
                                        aws_secret_access_key=self._secret_key,
                                        region_name=self.region)
        client = session.client("s3", endpoint_url=self.endpoint, config=config)
        if self.create_only:
            # Writes create, never replace: S3 answers 412 if the key exists
            # by then.  (radosgw 16 honours this on a single PUT only; on a
            # multipart upload, only the check before the upload guards.)
            for operation in ("PutObject", "CompleteMultipartUpload"):
                client.meta.events.register(f"before-parameter-build.s3.{operation}",
                                            _if_none_match)
        if self.ceph_copy_headers:
            client.meta.events.register("before-sign.s3.CopyObject", _ceph_copy_conditions)
        return client

    def _find(self, key: str) -> Obj | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _status(error) == 404:
                return None
            raise
        metadata = head.get("Metadata", {})
        return Obj(head["ContentLength"], head["LastModified"].timestamp(), head["ETag"],
                   head["ETag"], REMOVED in metadata, metadata.get(CRC32C))

    def _looks_first(self, size: int) -> bool:
        """A store that cannot refuse a taken key, and any multipart upload
        (radosgw 16 ignores ``If-None-Match`` on completing one), must look."""
        return not self.create_only or size >= TRANSFER.multipart_threshold

    def _put(self, key: str, source: BinaryIO, digest: Digest) -> str:
        """One ``PutObject`` below the multipart threshold, which also sends
        the CRC32C as ``x-amz-checksum-crc32c`` where the store takes it: a
        store that checks it refuses other bytes and answers with what it
        computed; one that does not (radosgw 16) keeps the CRC32C recorded
        with this create-only write.  Above, a multipart upload."""
        extra = {"ContentType": content_type(handle_name(key)),
                 "Metadata": {CRC32C: digest.crc32c}}
        try:
            if digest.size < TRANSFER.multipart_threshold:
                if self.checksum_header:
                    extra["ChecksumCRC32C"] = digest.crc32c
                answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=source, **extra)
                return answer.get("ChecksumCRC32C") or digest.crc32c  # type: ignore[no-any-return]
            self.client.upload_fileobj(source, self.bucket, key, Config=TRANSFER, ExtraArgs=extra)
            return digest.crc32c
        except ClientError as error:
            if _status(error) == 412:
                raise Taken(retried=bool(error.response["ResponseMetadata"].get(
                    "RetryAttempts"))) from None
            raise

    def _read(self, key: str, obj: Obj, start: int) -> Readable | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=obj.version,
                                          Range=f"bytes={start}-")["Body"]
        except ClientError as error:
            if _status(error) in (404, 412):
                return None
            raise

    def _record(self, key: str, obj: Obj, crc32c: str) -> None:
        """Copies the object onto itself with the CRC32C added to its metadata,
        only from the version it found (``CopySourceIfMatch``), keeping its
        type and other metadata.  S3 gives the copy a new ETag and
        modification time; one ``CopyObject`` copies at most 5 GiB."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, IfMatch=obj.version)
            extra = {name: head[name] for name in ("ContentDisposition", "ContentEncoding",
                                                   "ContentLanguage", "CacheControl")
                     if head.get(name)}
            self.client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=obj.version.strip('"'), MetadataDirective="REPLACE",
                Metadata={**head.get("Metadata", {}), CRC32C: crc32c},
                ContentType=head.get("ContentType", "application/octet-stream"), **extra)
        except ClientError as error:
            if _status(error) in (404, 412):
                raise Taken() from None
            raise

    def _drop(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def _bury(self, key: str, obj: Obj) -> None:
        """Overwrites the version it found, and only that one (``If-Match``,
        where the server honours it)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=TOMBSTONE,
                                   ContentType="text/plain", Metadata={REMOVED: "1"},
                                   IfMatch=obj.version.strip('"'))  # radosgw: unquoted
        except ClientError as error:
            if _status(error) == 412:
                raise Taken() from None
            raise

    def _list(self) -> Iterator[tuple[str, bool]]:
        """Pages through the bucket, whose keys S3 lists sorted (by UTF-8
        bytes, which is the order of code points)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, PaginationConfig={"PageSize": self.page_size})
        for page in pages:
            for item in page.get("Contents", ()):
                yield item["Key"], (item["Size"] == len(TOMBSTONE)
                                    and item.get("ETag") == TOMBSTONE_ETAG)

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

    def _upload_link(self, handle: str, size: int, md5: str | None) -> PresignedLink:
        """A presigned PUT that signs ``If-None-Match: *`` (so it writes once),
        the exact ``Content-Length``, the content type of the name and, if
        given, ``Content-MD5``: S3 refuses the request if any differs."""
        params = {"Bucket": self.bucket, "Key": self._key(handle), "IfNoneMatch": "*",
                  "ContentLength": size, "ContentType": content_type(handle_name(handle))}
        headers = {"If-None-Match": "*", "Content-Type": params["ContentType"]}
        if md5 is not None:
            params["ContentMD5"] = headers["Content-MD5"] = md5
        url = self.client.generate_presigned_url("put_object", Params=params,
                                                 ExpiresIn=self.link_expiry)
        return PresignedLink(url, method="PUT", headers=headers)

    def download_link(self, handle: str) -> PresignedLink:
        """A presigned GET with the ``Content-Disposition`` of `route()`."""
        url = self.client.generate_presigned_url("get_object", Params={
            "Bucket": self.bucket, "Key": self._key(handle),
            "ResponseContentDisposition": content_disposition(handle_name(handle))},
            ExpiresIn=self.link_expiry)
        return PresignedLink(url)


def _if_none_match(params: dict[str, Any], **kwargs: Any) -> None:
    if "IfMatch" not in params:  # a tombstone replaces the version it names
        params.setdefault("IfNoneMatch", "*")


def _ceph_copy_conditions(request: Any, **kwargs: Any) -> None:
    """radosgw (Ceph 16) reads a copy's source conditions from
    ``x-amz-copy-if-*`` and ignores S3's ``x-amz-copy-source-if-*``: sent
    under both names, each server reads its own."""
    for name in ("match", "none-match"):
        value = request.headers.get(f"x-amz-copy-source-if-{name}")
        if value is not None:
            request.headers[f"x-amz-copy-if-{name}"] = value


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
