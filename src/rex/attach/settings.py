"""The settings of rex.attach, and the storage they choose."""

from __future__ import annotations

from rex.core import (Error, Initialize, IntVal, MaybeVal, PathVal, Setting, StrVal, cached,
                      get_settings)

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


BACKENDS = ("attach_dir", "attach_gcs_bucket", "attach_s3_bucket")


@cached
def get_storage() -> Storage:
    """The attachment storage of the active application."""
    settings = get_settings()
    if settings.attach_dir is not None:
        return LocalStorage(settings.attach_dir)
    raise Error("No attachment storage is configured")


class CheckStorage(Initialize):
    """Exactly one backend must be chosen, and it must be usable."""

    def __call__(self) -> None:
        settings = get_settings()
        chosen = [name for name in BACKENDS if getattr(settings, name) is not None]
        if not chosen:
            raise Error("At least one of the parameters must be set:", ", ".join(BACKENDS))
        if len(chosen) > 1:
            raise Error("Only one of the parameters must be set:", ", ".join(chosen))
        get_storage().verify()
