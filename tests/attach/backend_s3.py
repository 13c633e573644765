"""The S3 backend of the contract suite: Ceph's RADOS Gateway on 127.0.0.1,
which checks signatures, expiry and POST policies as Amazon S3 does."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from backends import Backend
from servers import S3Server, start_radosgw

BUCKET = "attachments"


def s3_settings(server: S3Server, bucket: str = BUCKET) -> dict[str, str]:
    """The rex.attach settings for a bucket of this server."""
    return {"attach_s3_bucket": bucket, "attach_s3_endpoint": server.endpoint,
            "attach_s3_region": server.region, "attach_s3_access_key": server.access_key,
            "attach_s3_secret_key": server.secret_key}


def admin_client(server: S3Server) -> object:
    """A plain boto3 client of the server, for what rex.attach does not do."""
    return boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, region_name=server.region,
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)


def clear_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """No AWS settings from the environment or ~/.aws, and no instance
    metadata lookups (nothing may leave 127.0.0.1): the test says it all."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-such-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-such-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def rewrite(admin: Any, bucket: str, key: str, change: Callable[[bytes], bytes],
            metadata: Callable[[dict[str, str]], dict[str, str]] = dict) -> None:
    """Rewrites an object with boto3: its content and metadata changed, its
    content type kept."""
    got = admin.get_object(Bucket=bucket, Key=key)
    admin.put_object(Bucket=bucket, Key=key, Body=change(got["Body"].read()),
                     ContentType=got["ContentType"], Metadata=metadata(got["Metadata"]))


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1:]


def legacy(metadata: dict[str, str]) -> dict[str, str]:
    """The metadata of an object written before CRC32C: a SHA-256 instead
    (which rex.attach no longer checks, so any value does)."""
    return {"sha256": "0" * 64, **{name: value for name, value in metadata.items()
                                   if name != "crc32c"}}


def start_s3(tmp: Path) -> Backend:
    """A radosgw with an empty bucket; damage is an object rewritten with
    boto3, one bit flipped and its metadata (with the CRC32C) copied."""
    server = start_radosgw(tmp / "radosgw")
    try:
        admin = admin_client(server)
        admin.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
    except BaseException:
        server.stop()
        raise
    return Backend(
        "s3", s3_settings(server), enforces_signatures=True, enforces_size=True,
        stop=server.stop,
        damage=lambda handle, offset: rewrite(admin, BUCKET, handle[1:],
                                              lambda data: flip(data, offset)),
        forget_checksum=lambda handle: rewrite(admin, BUCKET, handle[1:], bytes, legacy))
