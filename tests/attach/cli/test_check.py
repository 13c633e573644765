"""``rex attach check`` as a subprocess, on every backend."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from cli_store import Store, s3_client


def names_and_results(lines: list[str]) -> list[tuple[str, str]]:
    return [(name, result) for name, result in (re.match(r"(\w+): +(.*)", line).groups()
                                                for line in lines)]


def test_check_passes_on_a_working_store(store: Store) -> None:
    result = store.run("check")
    assert result.status == 0, result.out
    checks = names_and_results(result.lines)
    last = "secret" if store.backend == "local" else "clock"
    assert [name for name, _ in checks] == ["settings", "storage", "write", "read", "links",
                                            "remove", last]
    assert all(outcome.startswith("ok") for _, outcome in checks)
    probe = dict(checks)["write"]
    assert re.fullmatch(r"ok \((/0000/00/00/[0-9a-f-]{36}/rex-attach-check\.txt)\)", probe)
    handle = probe[4:-1]
    storage = store.storage
    assert handle not in storage and list(storage) == []  # removed
    assert store.keys() == []  # for good: no tombstone
    assert store.run("check").status == 0
    assert store.keys() == []  # every run leaves nothing
    if store.backend == "local":
        assert dict(checks)["links"] == "ok (a signed link served, a tampered one refused)"
    else:
        assert dict(checks)["links"] == "ok (a signed link served by the store)"
        assert re.fullmatch(r"ok \(\d+ s (ahead of|behind) the store's\)", dict(checks)["clock"])


def test_check_says_why_it_fails(store: Store, tmp_path: Path) -> None:
    """A failing check says why on its line, the others still run, exit 1."""
    if store.backend == "local":
        store.storage.secret  # made on first use
        secret = Path(store.settings["attach_dir"]) / ".secret"
        os.chmod(secret, 0o644)
        failing = ("secret", f"{secret} may be read by other users (mode 0644): "
                             f"chmod 600 {secret}")
    elif store.backend == "gcs":
        settings = {name: value for name, value in store.settings.items()
                    if name != "attach_gcs_key"}  # no key: links cannot be signed
        store.settings_file.write_text(yaml.safe_dump(settings))
        failing = ("links", "GCS links need a service account key; set: attach_gcs_key")
    else:  # a bucket that answers, but where nothing may be written
        bucket = store.settings["attach_s3_bucket"]
        s3_client(store.settings).put_bucket_policy(Bucket=bucket, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
        failing = ("write", f"S3 storage is unavailable or failing: bucket {bucket} at "
                            f"{store.settings['attach_s3_endpoint']} Because: An error occurred "
                            "(AccessDenied) when calling the PutObject operation")
    result = store.run("check")
    assert result.status == 1
    checks = dict(names_and_results(result.lines))
    assert checks.pop(failing[0]).startswith(failing[1])
    if failing[0] == "write":
        for name in ("read", "links", "remove"):
            assert checks.pop(name) == "not run: no probe was written"
    assert all(outcome.startswith("ok") for outcome in checks.values()), result.out


def test_check_of_a_bad_setting_is_a_usage_error(store: Store) -> None:
    result = store.run("check", "attach_link_expiry=never")
    assert result.status == 2 and result.out == ""
    assert result.err.startswith("rex: Expected an integer")
