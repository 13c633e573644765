"""Growing past one machine: two `rex serve` hosts (each its own working
directory and port) behind nginx, round robin, sharing their state: the
database (PostgreSQL) and the attachments (S3 on radosgw), or a directory
that both mount, with the same attach_secret.  All on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import yaml
from attach_demo.test_serve import TIMEOUT, rows, upload
from helpers import HOST, ServerURL, serve, start_postgres
from nginx import Nginx, rex_nginx, start_nginx
from servers import start_radosgw

sys.path.insert(0, str(Path(__file__).parent.parent / "attach"))

from backend_s3 import admin_client, s3_settings  # noqa: E402

from rex.attach.handle import new_handle  # noqa: E402

pytestmark = [pytest.mark.nginx, pytest.mark.slow]
PROBE = str(Path(__file__).parent.parent / "attach" / "pkgs")  # rexlinkprobe


@contextlib.contextmanager
def two_hosts(tmp_path: Path, package: str, settings: dict
              ) -> Iterator[tuple[ServerURL, ServerURL, Nginx, contextlib.ExitStack]]:
    """Hosts A and B, each with its own working directory and a copy of
    `settings`, behind nginx; yields them, nginx, and what stops host A."""
    hosts = []
    with contextlib.ExitStack() as stack:
        host_a = stack.enter_context(contextlib.ExitStack())
        for name, exit_stack in (("a", host_a), ("b", stack)):
            workdir = tmp_path / f"host-{name}"
            workdir.mkdir()
            (workdir / "settings.yaml").write_text(yaml.safe_dump(settings))
            hosts.append(exit_stack.enter_context(
                serve(workdir, "--settings", str(workdir / "settings.yaml"), package=package)))
        upstreams = [arg for host in hosts for arg in ("--upstream", host.removeprefix("http://"))]
        nginx = stack.enter_context(start_nginx(tmp_path / "nginx", rex_nginx(
            package, "--settings", str(tmp_path / "host-a" / "settings.yaml"), *upstreams)))
        yield hosts[0], hosts[1], nginx, host_a


def upstreams_used(nginx: Nginx, path: str) -> set[str]:
    return {line.rsplit("upstream=", 1)[1] for line in nginx.access_log() if f" {path}" in line}


@pytest.mark.s3
@pytest.mark.postgres
def test_hosts_share_postgresql_and_s3(tmp_path: Path) -> None:
    server = start_radosgw(tmp_path / "radosgw")
    try:
        admin_client(server).create_bucket(Bucket="shared")  # type: ignore[attr-defined]
        with start_postgres(tmp_path) as db:
            settings = {**s3_settings(server, "shared"), "db": db, "trusted_proxies": [HOST]}
            with two_hosts(tmp_path, "rex.attach_demo", settings) as (a, b, nginx, host_a):
                check_shared_demo(a, b, nginx, host_a)
    finally:
        server.stop()


def check_shared_demo(a: str, b: str, nginx: Nginx, host_a: contextlib.ExitStack) -> None:
    contents = {f"c{i}": os.urandom(50_000 + i) for i in range(6)}
    assert upload(a, "c0", "Through A", "a.bin", contents["c0"]).status_code == 303
    assert upload(b, "c1", "Through B", "b.bin", contents["c1"]).status_code == 303
    for host in (a, b):
        assert [row["code"] for row in rows(host)] == ["c1", "c0"]  # newest first
        for code in ("c0", "c1"):
            fetched = requests.get(f"{host}/download?code={code}", timeout=TIMEOUT)
            assert fetched.content == contents[code]
    for code in ("c2", "c3", "c4", "c5"):  # round robin
        assert upload(nginx.url, code, "Through nginx", "n.bin", contents[code]).status_code == 303
    assert upstreams_used(nginx, "/upload") == {a.removeprefix("http://"),
                                                b.removeprefix("http://")}
    host_a.close()  # host A is gone: nothing of what it stored was its own
    assert [row["code"] for row in rows(nginx.url)] == sorted(contents, reverse=True)
    for code, content in contents.items():
        fetched = requests.get(f"{nginx.url}/download?code={code}", timeout=TIMEOUT)
        assert fetched.status_code == 200 and fetched.content == content


def test_hosts_share_a_directory_and_attach_secret(tmp_path: Path, monkeypatch) -> None:
    """A link that one host signs, another accepts: they sign with the
    same attach_secret (each would make its own key in a directory of its
    own; here they share the directory, as an NFS mount, which holds the files)."""
    monkeypatch.setenv("PYTHONPATH", PROBE)
    shared = tmp_path / "shared-attachments"
    shared.mkdir()
    settings = {"attach_dir": str(shared), "attach_secret": "s3cret-0f-the-study-hosts",
                "trusted_proxies": [HOST]}
    content = os.urandom(70_000)
    handle = new_handle("Consent form.pdf")
    with two_hosts(tmp_path, "rexlinkprobe", settings) as (a, b, nginx, host_a):
        put = requests.get(f"{a}/link", params={"handle": handle, "size": len(content)},
                           timeout=TIMEOUT).json()  # signed by host A
        stored = requests.put(urljoin(b, put["url"]), data=content, headers=put["headers"],
                              timeout=TIMEOUT)  # accepted by host B
        assert stored.status_code == 201
        get = requests.get(f"{b}/link", params={"handle": handle}, timeout=TIMEOUT).json()
        assert requests.get(urljoin(a, get["url"]), timeout=TIMEOUT).content == content
        for _ in range(4):  # round robin
            assert requests.get(urljoin(nginx.url, get["url"]), timeout=TIMEOUT).content == content
        assert len(upstreams_used(nginx, "/attach/")) == 2
        other = tmp_path / "other"
        other.mkdir()
        with serve(other, f"attach_dir={shared}", "attach_secret=another-secret-entirely",
                   package="rexlinkprobe") as stranger:  # another secret: refused
            assert requests.get(urljoin(stranger, get["url"]), timeout=TIMEOUT).status_code == 403
