"""Servers under test and their memory: start a gunicorn on 127.0.0.1, find
its workers, sample their resident memory while a transfer runs, stop it.

Memory is read from ``/proc/PID/status``: ``VmRSS`` (resident now) and
``VmHWM`` (the peak resident size over the process's life).  The growth of a
transfer is the largest rise of ``VmRSS`` over any one process, sampled every
few milliseconds by a thread, against its value just before the transfer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

MIB = 1 << 20


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of a process in bytes, ``(0, 0)`` once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, hwm


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a gunicorn master's workers)."""
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


class RssSampler:
    """``with RssSampler(pids) as sampler: ...`` then ``sampler.growth``: the
    largest rise of one process's VmRSS during the block, in bytes."""

    def __init__(self, pids: Sequence[int], interval: float = 0.005) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.base = {pid: memory(pid)[0] for pid in self.pids}
        self.peak = dict(self.base)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in self.pids:
            self.peak[pid] = max(self.peak[pid], memory(pid)[0])

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        self._sample()

    @property
    def growth(self) -> int:
        return max((self.peak[pid] - self.base[pid] for pid in self.pids), default=0)


@dataclass
class Server:
    """A gunicorn (``gunicorn`` or ``rex serve``) running on 127.0.0.1."""

    name: str
    proc: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log: Path
    start_rss: dict[int, int] = field(default_factory=dict)  # worker pid -> VmRSS once ready
    max_growth: int = 0  # the largest growth any measured transfer caused

    @property
    def pid(self) -> int:
        return self.proc.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def sampler(self) -> RssSampler:
        """Samples the workers' memory; its growth counts toward `max_growth`."""
        server = self

        class Sampler(RssSampler):
            def __exit__(self, *exc: object) -> None:
                super().__exit__(*exc)  # type: ignore[arg-type]
                server.max_growth = max(server.max_growth, self.growth)

        return Sampler(self.workers())

    def stop(self) -> None:
        """SIGTERM to the master (a graceful stop), SIGKILL to it and its
        workers, by pid, if it is still there after 30 s."""
        workers = self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                for pid in [self.pid, *workers]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait()


def start(name: str, argv: Sequence[str], *, port: int, workers: int, env: dict[str, str],
          workdir: Path, timeout: float = 60) -> Server:
    """Runs a server command that listens on 127.0.0.1:`port` (its argv says
    so; pick the port with `free_port()`), and returns once it answers HTTP
    (any status) and all its `workers` are up.  Its output goes to
    ``workdir/NAME.log``; each server gets its own ``XDG_RUNTIME_DIR`` so that
    the gunicorn control sockets of several servers do not collide."""
    url = f"http://127.0.0.1:{port}"
    runtime = workdir / f"{name}.run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT,
                            env={**os.environ, **env, "XDG_RUNTIME_DIR": str(runtime)})
    server = Server(name, proc, url, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not get ready in {timeout} s:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url + "/", timeout=5).close()
            answered = True
        except urllib.error.HTTPError:
            answered = True  # an error status is an answer
        except OSError:
            answered = False  # not listening yet
        if answered and len(server.workers()) >= workers:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # let the workers finish booting before taking their memory
    server.start_rss = {pid: memory(pid)[0] for pid in server.workers()}
    return server
