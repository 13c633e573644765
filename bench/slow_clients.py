"""The load of the ``slow-clients`` measure: many slow uploads and idle
keep-alive connections against one server on 127.0.0.1.

    python bench/slow_clients.py http://127.0.0.1:PORT [--uploads 200] [--idle 200]
        [--rate 65536] [--max-seconds 300]

Each slow client POSTs a multipart form to ``/upload`` at `--rate` bytes per
second (8 KiB every 125 ms at 64 KiB/s, each client at its own phase, seeded)
behind a Content-Length it never reaches; each idle client sends ``GET /``,
reads the answer, then keeps the connection open and silent (it connects
again if the server closes it, and counts that).  Once every client is under
way it prints ``ready``; it stops at a line (or the end) of standard input,
or after `--max-seconds`, closes every connection and prints one JSON line
of what happened.  Bounded: the counts are capped and it always ends.

`under_load()` runs it from bench/run.py, and `Prober` measures the latency
of ``GET /`` meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import random
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

CHUNK = 8 << 10
MAX_CLIENTS = 1000  # of each kind
MAX_SECONDS = 600
READY_TIMEOUT = 60  # seconds the load may take to get under way


@dataclass
class Stats:
    uploads: int = 0  # slow uploads under way at "ready"
    upload_bytes: int = 0  # bytes the slow uploads sent while loaded
    upload_failures: int = 0  # slow uploads the server cut or refused
    idle: int = 0  # idle connections open at "ready"
    idle_reopened: int = 0  # idle connections the server closed (then opened again)
    seconds: float = 0.0  # from "ready" to stop


class Load:
    def __init__(self, host: str, port: int, rate: int) -> None:
        self.host, self.port, self.rate = host, port, rate
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.loaded = False  # counting starts at "ready"
        self.random = random.Random(64)

    async def slow_upload(self, number: int, started: asyncio.Queue) -> None:
        boundary = f"slow{number:04d}"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n"
                f"S{number}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"title\""
                f"\r\n\r\nslow\r\n--{boundary}\r\nContent-Disposition: form-data; "
                f"name=\"attachment\"; filename=\"slow.bin\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode()
        length = len(head) + self.rate * MAX_SECONDS * 2  # never reached
        interval = CHUNK / self.rate
        phase = self.random.random() * interval
        chunk = self.random.randbytes(CHUNK)
        announced = False
        writer = None
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.write(f"POST /upload HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                         f"Content-Length: {length}\r\n\r\n".encode() + head)
            await writer.drain()
            await started.put("upload")
            announced = True
            deadline = asyncio.get_running_loop().time() + phase
            while not self.stop.is_set():
                delay = deadline - asyncio.get_running_loop().time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self.stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                writer.write(chunk)
                await writer.drain()  # waits while the server does not read
                if self.loaded:
                    self.stats.upload_bytes += CHUNK
                deadline += interval
        except OSError:
            self.stats.upload_failures += 1
        finally:
            if not announced:
                await started.put(None)
            if writer is not None:
                writer.transport.abort()

    async def idle(self, started: asyncio.Queue) -> None:
        announced = False
        try:
            while not self.stop.is_set():
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n"
                                 .encode())
                    await writer.drain()
                    headers = await reader.readuntil(b"\r\n\r\n")
                    length = next(int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:"))
                    await reader.readexactly(length)
                    if not announced:
                        await started.put("idle")
                        announced = True
                    closed = asyncio.ensure_future(reader.read(1))
                    stopped = asyncio.ensure_future(self.stop.wait())
                    await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
                    closed.cancel()
                    stopped.cancel()
                    if not self.stop.is_set():
                        self.stats.idle_reopened += 1
                finally:
                    writer.transport.abort()
        except (OSError, asyncio.IncompleteReadError, StopIteration):
            if announced:
                self.stats.idle_reopened += 1
        finally:
            if not announced:
                await started.put(None)

    async def run(self, uploads: int, idle: int, max_seconds: float) -> Stats:
        started: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.ensure_future(self.slow_upload(n, started)) for n in range(uploads)]
        tasks += [asyncio.ensure_future(self.idle(started)) for _ in range(idle)]
        under_way = [await started.get() for _ in range(uploads + idle)]
        self.stats.uploads = under_way.count("upload")
        self.stats.idle = under_way.count("idle")
        self.loaded = True
        began = time.monotonic()
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        stdin = loop.run_in_executor(None, sys.stdin.readline)
        await asyncio.wait([stdin, asyncio.ensure_future(asyncio.sleep(max_seconds))],
                           return_when=asyncio.FIRST_COMPLETED)
        self.stats.seconds = time.monotonic() - began
        self.loaded = False
        self.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats


# -- the side of bench/run.py ---------------------------------------------------------------

@contextlib.contextmanager
def under_load(url: str, uploads: int = 200, idle: int = 200,
               rate: int = 64 << 10) -> Iterator[Stats]:
    """Runs this script against `url`; the block runs once the load is under
    way, and the `Stats` it yields are filled in after the block."""
    process = subprocess.Popen(
        [sys.executable, __file__, url, "--uploads", str(uploads), "--idle", str(idle),
         "--rate", str(rate)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        # A server that starves some clients never lets the load get ready.
        if not select.select([process.stdout], [], [], READY_TIMEOUT)[0]:
            raise RuntimeError(f"the load was not under way within {READY_TIMEOUT} s: "
                               "the server does not answer every client")
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"slow_clients.py: expected 'ready', got {line!r}")
        stats = Stats()
        yield stats
        process.stdin.close()
        vars(stats).update(json.loads(process.stdout.readline()))
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class Prober:
    """``with Prober(url):`` GETs `url` on a new connection every `interval`
    seconds in a thread, keeping each latency in `latencies` (seconds);
    an answer other than 200 is an error."""

    def __init__(self, url: str, interval: float = 0.02) -> None:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", f"loopback only, got {url}"
        self.address = (parts.hostname, parts.port or 80)
        self.path = parts.path or "/"
        self.interval = interval
        self.latencies: list[float] = []
        self.error: Exception | None = None
        self._done = threading.Event()
        self._count = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(*self.address, timeout=60)
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status != 200:
                    raise RuntimeError(f"GET {self.path}: {response.status}")
            except Exception as error:
                with self._count:
                    self.error = error
                    self._count.notify_all()
                return
            with self._count:
                self.latencies.append(time.perf_counter() - started)
                self._count.notify_all()

    def wait_for(self, count: int, timeout: float = 120) -> None:
        """Returns once `count` latencies are in."""
        with self._count:
            if not self._count.wait_for(lambda: len(self.latencies) >= count or self.error,
                                        timeout):
                raise RuntimeError(f"only {len(self.latencies)} probes in {timeout} s")
        if self.error is not None:
            raise self.error

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--uploads", type=int, default=200, choices=range(MAX_CLIENTS + 1),
                        metavar="N")
    parser.add_argument("--idle", type=int, default=200, choices=range(MAX_CLIENTS + 1),
                        metavar="N")
    parser.add_argument("--rate", type=int, default=64 << 10, help="bytes/s of each slow upload")
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    assert parts.hostname == "127.0.0.1", f"loopback only, got {args.url}"
    load = Load(parts.hostname, parts.port or 80, args.rate)
    stats = asyncio.run(load.run(args.uploads, args.idle, min(args.max_seconds, MAX_SECONDS)))
    print(json.dumps(asdict(stats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
