"""Attachments in Google Cloud Storage through its XML API with HMAC keys
(``attach_s3_endpoint: https://storage.googleapis.com``): the S3 backend
with GCS's differences.

GCS takes V2 signatures there, and honours neither ``If-None-Match`` nor
``If-Match``: writes are check-then-put.  Links name the key
``GoogleAccessId`` and sign the path alone; an upload link signs
``x-goog-if-generation-match: 0`` (so it writes once) and the exact size as
``x-goog-content-length-range``, which botocore's V2 signer cannot, so it is
signed here by GCS's V2 rules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .handle import handle_name
from .objectstore import REMOVED, TOMBSTONE, Obj
from .response import content_disposition, content_type
from .s3 import S3Storage
from .storage import PresignedLink

GCS_HOST = "storage.googleapis.com"


class GCSInteropStorage(S3Storage):
    """Attachments as objects of a GCS bucket, through the XML API."""

    service = "GCS"
    signature_version = "s3"
    create_only = False
    ceph_copy_headers = False
    checksum_header = False

    def _bury(self, key: str, obj: Obj) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=TOMBSTONE,
                               ContentType="text/plain", Metadata={REMOVED: "1"})

    def _upload_link(self, handle: str, size: int, md5: str | None) -> PresignedLink:
        key = self._key(handle)
        expires = int(time.time()) + self.link_expiry
        headers = {"Content-Type": content_type(handle_name(handle)),
                   "x-goog-content-length-range": f"{size},{size}",
                   "x-goog-if-generation-match": "0"}
        if md5 is not None:
            headers["Content-MD5"] = md5
        extension = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items())
                            if name.startswith("x-goog-"))
        string_to_sign = (f"PUT\n{md5 or ''}\n{headers['Content-Type']}\n{expires}\n"
                          f"{extension}/{self.bucket}/{key}")
        credentials = self.client._request_signer._credentials.get_frozen_credentials()
        signature = base64.b64encode(hmac.new(credentials.secret_key.encode(),
                                              string_to_sign.encode(), hashlib.sha1).digest())
        query = urlencode({"GoogleAccessId": credentials.access_key, "Expires": expires,
                           "Signature": signature.decode()}, quote_via=quote, safe="")
        url = f"{self.client.meta.endpoint_url}/{self.bucket}/{quote(key)}?{query}"
        return PresignedLink(url, method="PUT", headers=headers)

    def download_link(self, handle: str) -> PresignedLink:
        """GCS signs a V2 link over ``/BUCKET/KEY`` alone: unlike S3, its
        canonical resource has no ``response-*`` parameters (see Google's own
        V2 signers), so the disposition is added after signing."""
        url = self.client.generate_presigned_url("get_object", Params={
            "Bucket": self.bucket, "Key": self._key(handle)}, ExpiresIn=self.link_expiry)
        parts = urlsplit(url)
        query = [("GoogleAccessId" if name == "AWSAccessKeyId" else name, value)
                 for name, value in parse_qsl(parts.query, keep_blank_values=True)]
        query.append(("response-content-disposition", content_disposition(handle_name(handle))))
        return PresignedLink(urlunsplit(parts._replace(query=urlencode(query, safe="",
                                                                       quote_via=quote))))
