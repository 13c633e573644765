"""Servers under test and their memory: start a gunicorn on 127.0.0.1, find
its workers, sample their resident memory while a transfer runs, stop it.

The growth of a transfer is the largest rise of one worker's resident memory
against its value just before the transfer (`tests.helpers.RssSampler`: the
tests assert the same bounds with the same code).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import RssSampler, free_port, memory_status, worker_pids

__all__ = ["RssSampler", "Server", "free_port", "memory_status", "on_client_cpus", "start"]

# Servers run on one half of the CPUs and HTTP clients on the other, so that
# where the scheduler puts a client does not change a server's figure.
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = set(_CPUS[len(_CPUS) // 2:])
CLIENT_CPUS = set(_CPUS[:len(_CPUS) // 2]) or SERVER_CPUS


@contextlib.contextmanager
def on_client_cpus() -> Iterator[None]:
    """Runs the block, and the processes it starts, on the clients' CPUs."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CLIENT_CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)



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
        return worker_pids(self.pid)

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
                            env={**os.environ, **env, "XDG_RUNTIME_DIR": str(runtime)},
                            preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPUS))
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
    server.start_rss = {pid: memory_status(pid) for pid in server.workers()}
    return server
