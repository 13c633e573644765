"""The settings of rex.attach, and the storage they choose."""

from __future__ import annotations

from urllib.parse import urlsplit

from rex.core import (
    ChoiceVal,
    Error,
    Initialize,
    IntVal,
    MaybeVal,
    PathVal,
    Setting,
    StrVal,
    cached,
    get_rex,
    get_settings,
)

from .local import LocalStorage
from .storage import Storage


class AttachDirSetting(Setting):
    """Directory where attachments are stored (the local backend)."""

    name = "attach_dir"
    validate = MaybeVal(PathVal())
    default = None


class AttachS3BucketSetting(Setting):
    """S3 bucket where attachments are stored (the S3 backend)."""

    name = "attach_s3_bucket"
    validate = MaybeVal(StrVal(r"[a-z0-9][a-z0-9.\-_]{1,254}"))
    default = None


class AttachS3EndpointSetting(Setting):
    """URL of an S3-compatible server; unset for Amazon S3."""

    name = "attach_s3_endpoint"
    validate = MaybeVal(StrVal(r"https?://\S+"))
    default = None


class AttachS3RegionSetting(Setting):
    """AWS region; unset: from the AWS configuration or ``AWS_DEFAULT_REGION``."""

    name = "attach_s3_region"
    validate = MaybeVal(StrVal(r"[\w-]+"))
    default = None


class AttachS3AccessKeySetting(Setting):
    """S3 access key; unset: from the AWS configuration or ``AWS_ACCESS_KEY_ID``."""

    name = "attach_s3_access_key"
    validate = MaybeVal(StrVal(r"\S+"))
    default = None


class AttachS3SecretKeySetting(Setting):
    """S3 secret key; unset: from the AWS configuration or ``AWS_SECRET_ACCESS_KEY``."""

    name = "attach_s3_secret_key"
    validate = MaybeVal(StrVal(r"\S+"))
    default = None
    secret = True


class AttachGCSBucketSetting(Setting):
    """Google Cloud Storage bucket where attachments are stored (native GCS)."""

    name = "attach_gcs_bucket"
    validate = MaybeVal(StrVal(r"[a-z0-9][a-z0-9.\-_]{1,221}"))
    default = None


class AttachGCSKeySetting(Setting):
    """Path of a GCS service account JSON key; unset: default credentials."""

    name = "attach_gcs_key"
    validate = MaybeVal(PathVal())
    default = None


class AttachMaxSizeSetting(Setting):
    """The largest attachment accepted through HTTP, in bytes; unset: no limit."""

    name = "attach_max_size"
    validate = MaybeVal(IntVal(0))
    default = None


class AttachLinkExpirySetting(Setting):
    """How long direct upload and download links are valid, in seconds."""

    name = "attach_link_expiry"
    validate = IntVal(1, 7 * 24 * 3600)
    default = 3600


class AttachSecretSetting(Setting):
    """The key that signs the local backend's direct links; unset: a random
    key generated once and kept in the attachment directory."""

    name = "attach_secret"
    validate = MaybeVal(StrVal(r"\S{16,}"))
    default = None
    secret = True


class AttachServeSetting(Setting):
    """Who sends the bytes of a download, once the application has allowed
    it: ``proxy``, the application itself; ``accel``, nginx, told by an
    ``X-Accel-Redirect`` to `attach_accel_location` (local backend only);
    ``redirect``, the store, to which the client is sent by a redirect to a
    short-lived link (S3 and GCS only)."""

    name = "attach_serve"
    validate = ChoiceVal("proxy", "accel", "redirect")
    default = "proxy"


class AttachAccelLocationSetting(Setting):
    """The internal nginx location that serves `attach_dir` when
    `attach_serve` is ``accel``: ``/_attach/HANDLE`` is the file of HANDLE."""

    name = "attach_accel_location"
    validate = StrVal(r"(/[A-Za-z0-9_~-][A-Za-z0-9_.~-]*)+", max_length=200)
    default = "/_attach"


BACKENDS = ("attach_dir", "attach_gcs_bucket", "attach_s3_bucket")
SAMPLE = "/2000/01/01/00000000-0000-4000-8000-000000000000/sample.dat"  # a handle to sign


@cached
def get_storage() -> Storage:
    """The attachment storage of the active application."""
    settings = get_settings()
    links = {"max_size": settings.attach_max_size, "link_expiry": settings.attach_link_expiry}
    if settings.attach_s3_bucket is not None:
        from .gcs_interop import GCS_HOST, GCSInteropStorage
        from .s3 import S3Storage

        endpoint = settings.attach_s3_endpoint
        gcs = endpoint is not None and urlsplit(endpoint).hostname == GCS_HOST
        return (GCSInteropStorage if gcs else S3Storage)(
            settings.attach_s3_bucket, endpoint=endpoint, region=settings.attach_s3_region,
            access_key=settings.attach_s3_access_key, secret_key=settings.attach_s3_secret_key,
            **links)
    if settings.attach_gcs_bucket is not None:
        from .gcs import GCSStorage

        return GCSStorage(settings.attach_gcs_bucket, key=settings.attach_gcs_key, **links)
    if settings.attach_dir is not None:
        package = get_rex().packages.get("rex.attach")
        return LocalStorage(settings.attach_dir, secret=settings.attach_secret,
                            url_prefix=(package.prefix if package else "/attach"), **links)
    raise Error("No attachment storage is configured")


class CheckStorage(Initialize):
    """Exactly one backend must be chosen, `attach_serve` must fit it, and
    it must be usable."""

    def __call__(self) -> None:
        settings = get_settings()
        chosen = [name for name in BACKENDS if getattr(settings, name) is not None]
        if not chosen:
            raise Error("At least one of the parameters must be set:", ", ".join(BACKENDS))
        if len(chosen) > 1:
            raise Error("Only one of the parameters must be set:", ", ".join(chosen))
        _check_serve(settings.attach_serve, chosen[0], settings.trusted_proxies)
        get_storage().verify()
        if settings.attach_serve == "redirect":
            get_storage().download_link(SAMPLE)  # signed offline: fails now if it cannot sign


def _check_serve(serve: str, backend: str, trusted_proxies: list[str]) -> None:
    """``accel`` needs the local backend and a proxy to act on it;
    ``redirect`` needs S3 or GCS, which serve the links it redirects to."""
    if serve == "accel" and backend != "attach_dir":
        raise Error("attach_serve: accel needs the local backend (attach_dir), whose files "
                    "nginx sends; got:", backend).wrap("With S3 or GCS, use:",
                                                        "attach_serve: redirect")
    if serve == "accel" and not trusted_proxies:
        raise Error("attach_serve: accel needs the address of nginx in:", "trusted_proxies").wrap(
            "Because:", "only requests that come through nginx are answered with "
                        "X-Accel-Redirect")
    if serve == "redirect" and backend == "attach_dir":
        raise Error("attach_serve: redirect needs S3 or GCS, which serve the links it "
                    "redirects to; got:", backend).wrap("With the local backend, use:",
                                                        "attach_serve: accel")
