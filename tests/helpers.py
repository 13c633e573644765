"""Helpers shared by the tests: free ports, a real `rex serve` and the
memory of its workers, a real PostgreSQL.  Every process started here is
stopped by its pid, even when the test fails."""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import requests

HOST = "127.0.0.1"
START_TIMEOUT = 30  # seconds a server may take to answer
STOP_TIMEOUT = 10  # seconds a server may take to exit after it is asked to

# Set by `rex serve` unless the test gives its own (or a --settings file).
BACKEND_SETTINGS = ("attach_dir", "attach_s3_bucket", "attach_gcs_bucket")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rex_script() -> str:
    """The ``rex`` console script of the running virtual environment."""
    path = os.path.join(os.path.dirname(sys.executable), "rex")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no `rex` script beside {sys.executable}; is the project installed?")
    return path


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM,
                 timeout: float = STOP_TIMEOUT) -> None:
    """Asks a process (the leader of its own session) to exit, then kills its
    process group if it does not within `timeout` seconds."""
    if process.poll() is None:
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    # Strays (a worker whose master died) share the session's process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def rex_serve_command(tmp_path: Path, settings: tuple[str, ...], package: str,
                      port: int) -> list[str]:
    args = list(settings)
    given = {arg.partition("=")[0] for arg in args if "=" in arg and not arg.startswith("-")}
    if package == "rex.attach_demo" and not any(arg.startswith("--settings") for arg in args):
        if not given & set(BACKEND_SETTINGS):
            attach_dir = tmp_path / "attachments"
            attach_dir.mkdir(exist_ok=True)
            args.append(f"attach_dir={attach_dir}")
        if "db" not in given:
            args.append(f"db=sqlite:///{tmp_path}/demo.sqlite")
    return [rex_script(), "serve", package, *args,
            "--host", HOST, "--port", str(port), "--workers", "2", "--timeout", "60"]


class ServerURL(str):
    """The base URL of a running server, a plain `str` to its users, that
    also knows the pid of the server's process (see `worker_pids()`)."""

    pid: int

    def __new__(cls, url: str, pid: int) -> ServerURL:
        self = super().__new__(cls, url)
        self.pid = pid
        return self


@contextlib.contextmanager
def serve(tmp_path: Path, *settings: str, package: str = "rex.attach_demo") -> Iterator[ServerURL]:
    """Runs ``rex serve PACKAGE SETTINGS...`` on a free port of 127.0.0.1 and
    yields its base URL (``http://127.0.0.1:PORT``, a `ServerURL` whose
    ``.pid`` is the gunicorn master's) once it answers.

    `settings` are command-line arguments: ``name=value`` or
    ``--settings FILE``.  For the demo, unless given, ``attach_dir`` is
    ``tmp_path/attachments`` and ``db`` is ``tmp_path/demo.sqlite``.  The
    server's stderr goes to ``tmp_path/rex-serve-PORT.log`` and is printed
    when the body of the ``with`` fails.
    """
    for attempt in range(3):
        port = free_port()
        log_path = tmp_path / f"rex-serve-{port}.log"
        command = rex_serve_command(tmp_path, settings, package, port)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        url = f"http://{HOST}:{port}"
        try:
            answered = _wait_until_answers(process, url)
        except BaseException:
            stop_process(process)
            raise
        if answered:
            break
        stop_process(process)
        log_text = log_path.read_text(errors="replace")
        # Another process took the port between free_port() and bind: retry.
        if "Address already in use" in log_text and attempt < 2:
            continue
        raise RuntimeError(f"`rex serve` exited with code {process.returncode} before "
                           f"answering:\n{' '.join(command)}\n{log_text}")
    try:
        yield ServerURL(url, process.pid)
    except BaseException:
        print(f"--- stderr of {' '.join(command)}:\n{log_path.read_text(errors='replace')}",
              file=sys.stderr)
        raise
    finally:
        stop_process(process)


def _wait_until_answers(process: subprocess.Popen, url: str) -> bool:
    """True once the server answers any HTTP request; False if it exited."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            requests.get(url + "/", timeout=5)
        except requests.RequestException:
            time.sleep(0.1)
            continue
        return True
    raise RuntimeError(f"`rex serve` did not answer at {url} within {START_TIMEOUT} s")


# Memory of server processes -------------------------------------------------

def worker_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid`: a gunicorn master's workers."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    # "PID (COMM) STATE PPID ...": COMM may hold spaces, so split after ")".
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return sorted(found)


def memory_status(pid: int, field: str = "VmRSS") -> int:
    """A size of ``/proc/PID/status`` (``VmRSS``: resident now, ``VmHWM``:
    the peak resident size), in bytes; 0 once the process is gone."""
    prefix = field.encode() + b":"
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(prefix):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class RssSampler:
    """``with RssSampler(pids) as sampler: ...``, then ``sampler.growth``:
    the largest rise of one process's resident memory during the block, in
    bytes, against its ``VmRSS`` just before.

    A thread reads ``VmRSS`` every few milliseconds; where the peak can be
    reset (``/proc/PID/clear_refs``, writable by root), the kernel's own peak
    ``VmHWM`` is counted too, so that no short spike escapes.
    """

    def __init__(self, pids: list[int], interval: float = 0.005) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.base: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.exact = False  # True once every VmHWM was reset to VmRSS
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in self.pids:
            self.peak[pid] = max(self.peak[pid], memory_status(pid))

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        try:
            for pid in self.pids:
                with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
                    clear_refs.write("5")  # VmHWM := VmRSS
            self.exact = True
        except OSError:
            pass
        self.base = {pid: memory_status(pid) for pid in self.pids}
        self.peak = dict(self.base)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._sample()
        if self.exact:
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], memory_status(pid, "VmHWM"))

    @property
    def growth(self) -> int:
        return max((self.peak[pid] - self.base[pid] for pid in self.pids), default=0)


# PostgreSQL -----------------------------------------------------------------

PG_USER = "rex"
PG_PASSWORD = "Pg-test-passw0rd"  # the tests check that errors never show it
PG_DATABASE = "rex"


def find_pg_binary(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's
    ``/usr/lib/postgresql/VERSION/bin`` (newest version first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
                        reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(
        f"PostgreSQL's `{name}` is not installed (neither on PATH nor in "
        f"/usr/lib/postgresql/*/bin); install the Debian package `postgresql`")


def _run_as_kwargs() -> dict:
    """Popen arguments that drop root to `nobody`: PostgreSQL refuses to run
    as root.  Nothing when the tests do not run as root."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def start_postgres(tmp_path: Path | None = None) -> Iterator[str]:
    """A throw-away PostgreSQL cluster listening on a free port of 127.0.0.1;
    yields the SQLAlchemy URL (``postgresql+psycopg://rex:PASSWORD@...``).

    The cluster lives in a fresh directory of the system's temporary
    directory (when the tests run as root, it belongs to `nobody`, who runs
    the server, and `tmp_path` is not reachable by `nobody`); the server log
    is copied to `tmp_path` (if given) and the directory removed at the end.
    """
    initdb, postgres = find_pg_binary("initdb"), find_pg_binary("postgres")
    run_as = _run_as_kwargs()
    base = Path(tempfile.mkdtemp(prefix="rex-pg-"))
    process = None
    try:
        if run_as:
            os.chown(base, run_as["user"], run_as["group"])
        data = base / "data"
        password_file = base / "password"
        password_file.write_text(PG_PASSWORD + "\n")
        if run_as:
            os.chown(password_file, run_as["user"], run_as["group"])
        subprocess.run(
            [initdb, "-D", str(data), "-U", PG_USER, f"--pwfile={password_file}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            cwd=base, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=120,
            **run_as)
        password_file.unlink()
        log_path = base / "postgres.log"
        for attempt in range(3):
            port = free_port()
            with open(log_path, "wb") as log:
                if run_as:
                    os.fchown(log.fileno(), run_as["user"], run_as["group"])
                process = subprocess.Popen(
                    [postgres, "-D", str(data), "-p", str(port), "-h", HOST,
                     "-k", str(data), "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off", "-c", "max_connections=50"],
                    cwd=base, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, **run_as)
            url = (f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@{HOST}:{port}/postgres")
            if _wait_for_postgres(process, port):
                break
            text = log_path.read_text(errors="replace")
            if "could not bind" in text and attempt < 2:
                continue
            raise RuntimeError(f"PostgreSQL did not start (exit code {process.returncode}):\n{text}")
        _create_database(port)
        yield url.rsplit("/", 1)[0] + "/" + PG_DATABASE
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"initdb failed:\n{exc.stdout.decode(errors='replace')}"
                           f"{exc.stderr.decode(errors='replace')}") from None
    finally:
        if process is not None:
            # SIGINT: PostgreSQL's "fast" shutdown, which does not wait for clients.
            stop_process(process, signal.SIGINT)
        log = base / "postgres.log"
        if tmp_path is not None and log.exists():
            shutil.copy(log, tmp_path / "postgres.log")
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_postgres(process: subprocess.Popen, port: int) -> bool:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            psycopg.connect(host=HOST, port=port, user=PG_USER, password=PG_PASSWORD,
                            dbname="postgres", connect_timeout=5).close()
            return True
        except psycopg.OperationalError:
            time.sleep(0.1)
    stop_process(process, signal.SIGINT)
    raise RuntimeError(f"PostgreSQL did not accept connections within {START_TIMEOUT} s")


def _create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(host=HOST, port=port, user=PG_USER, password=PG_PASSWORD,
                         dbname="postgres", autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')


def staged(attach_dir: str | Path) -> list[str]:
    """What a local store's staging area holds besides the writers' own
    locked directories: the leftovers of unfinished writes."""
    tmp = Path(attach_dir) / ".tmp"
    return sorted(str(path.relative_to(tmp)) for path in tmp.rglob("*")
                  if not (path.name.startswith("writer-") or path.name == "lock"))


MISSING = "/2024/01/01/6f1c6ed5-3b5e-4b8e-9a53-2b2d2b6d1a2e/memo.txt"  # well-formed, never stored


def crc32c_of(data: bytes) -> str:
    """The CRC32C of `data` as the stores record it (the base64 of its four
    bytes, big-endian), by google-crc32c: not the project's own code."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()
