"""Benchmarks of rex.attach against reference implementations, in one run.

    python bench/run.py [--rounds 5] [--quick] [--only NAME ...] [--project rex|ref]

Every measure runs its sides interleaved, round by round, in an order that
alternates (odd rounds: the project, then the references; even rounds: the
references, then the project), each after an ``os.sync()`` so that none pays
for another's writeback, so that the machine's drift and whatever running
first or second costs (a warm page cache, a store's compaction) hit all
sides alike, and reports the project's figure as a ratio to each
reference: the ratio of the medians, and the range of the per-round ratios.
Servers run under gunicorn with 2 workers (the references' sync workers,
the project's `rex serve` with its own, threaded), on half of the CPUs (the
HTTP clients run on the other half), on free ports of
127.0.0.1; their workers' memory is sampled during each transfer.  A missed
target is reported, not an error: the exit status is 0 unless the harness
itself breaks.  ``--project ref`` puts the first reference in the project's
place, to check the harness (ratios ~1).
See bench/README.md for what each measure is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
if VENV.is_dir() and Path(sys.prefix).resolve() != VENV.resolve():
    os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), *sys.argv])
sys.path.insert(0, str(ROOT))  # for tests.servers (the S3 server)

import http_client  # noqa: E402  (bench/ is sys.path[0])
import library  # noqa: E402
import nginx_sites  # noqa: E402
import operations  # noqa: E402
import procs  # noqa: E402
import slow_clients  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
WORKERS = 2  # gunicorn workers of every server: one per core


@dataclass(frozen=True)
class Sizes:
    upload: int  # the upload MB/s measure
    upload_big: int  # the upload memory measure
    download: int
    small: int  # size of each small file
    small_files: int  # how many distinct small files wrk cycles through
    wrk_seconds: int
    adds: int
    handles: int
    s3: int


FULL = Sizes(upload=256 * MIB, upload_big=GIB, download=GIB, small=64 << 10, small_files=100,
             wrk_seconds=3, adds=10_000, handles=100_000, s3=256 * MIB)
QUICK = Sizes(upload=16 * MIB, upload_big=64 * MIB, download=64 * MIB, small=64 << 10,
              small_files=100, wrk_seconds=1, adds=500, handles=10_000, s3=16 * MIB)


def mib(size: int) -> str:
    return f"{size / GIB:g} GiB" if size >= GIB else f"{size / MIB:g} MiB"


# -- what a measure is ---------------------------------------------------------------------

@dataclass
class Sample:
    value: float  # the figure, higher is better
    growth: int = 0  # bytes of memory growth during the run


Trial = Callable[[], Sample]  # one timed run of one side


@dataclass
class Side:
    label: str
    trial: Trial | None  # None: not available (`missing` says why)
    target: float | None = None  # the least ratio project / this side (references only)
    missing: str = ""
    samples: list[Sample] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(sample.value for sample in self.samples)

    def max_growth(self) -> int:
        return max(sample.growth for sample in self.samples)


@dataclass
class Measure:
    name: str  # what --only selects
    title: str
    unit: str
    refs: list[Side]
    project: Side
    max_growth: int | None = None  # the project's memory target, bytes
    growth_of: str = "server"  # whose memory: the server workers', or this "process"'s
    show_growth: bool = False  # report the memory growth even without a target
    more_rows: Callable[[], list[Row]] | None = None  # figures of other kinds (latencies)


class Unavailable(Exception):
    """A side that cannot run here (the project's part not written yet, no S3 server)."""


# -- the servers and fixtures that measures share ------------------------------------------

class RefTarget:
    """A reference gunicorn app of bench/refs serving or storing files in its
    directory, or elsewhere (`env` tells it where, `cleanup` removes what an
    upload stored)."""

    def __init__(self, ctx: Context, module: str, env: dict[str, str] | None = None,
                 cleanup: Callable[[], None] | None = None) -> None:
        self.directory = ctx.workdir / module
        self.directory.mkdir()
        self.cleanup = cleanup
        port = procs.free_port()
        self.server = procs.start(module, [
            sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "sync",
            "--timeout", "300", "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench/refs"),
            f"{module}:app"], port=port, workers=WORKERS,
            env={"BENCH_DIR": str(self.directory), **(env or {})}, workdir=ctx.workdir)
        self.label = module

    def place(self, name: str, size: int) -> str:
        """Stores a file of generated content; returns its URL path."""
        path = self.directory / name
        http_client.write_file(str(path), size)
        return "/" + name

    def upload(self, size: int) -> float:
        seconds = http_client.upload(self.server.url + "/upload", {"code": "x", "title": "x"},
                                     "attachment", "upload.bin", size)
        if self.cleanup is not None:
            self.cleanup()
        for stored in self.directory.glob("upload-*"):
            stored.unlink()
        return seconds


class ProjectTarget:
    """``rex serve rex.attach_demo`` on a local attachment directory (its
    own, or `extra`'s ``attach_dir``), or on an S3 bucket (`s3`), with
    ``/attach/...`` open to anybody; `extra` holds more settings."""

    def __init__(self, ctx: Context, name: str = "project", s3: S3 | None = None,
                 **extra: Any) -> None:
        import yaml

        base = ctx.workdir / name
        base.mkdir()
        self.s3 = s3
        self.db = base / "demo.sqlite"
        settings: dict[str, Any] = {"access": {"rex.attach": "anybody"}}
        if s3 is None:
            self.attach_dir = Path(extra.get("attach_dir") or base / "attachments")
            self.attach_dir.mkdir(exist_ok=True)
            settings["attach_dir"] = str(self.attach_dir)
        else:
            settings.update(s3.settings)  # in the file, not on the command line: the keys
        settings.update(extra)
        settings_file = self.settings_file = base / "settings.yaml"
        settings_file.write_text(yaml.safe_dump(settings))
        rex = Path(sys.executable).parent / "rex"
        if not rex.exists():
            raise Unavailable(f"{rex} is missing")
        port = procs.free_port()
        self.server = procs.start(name, [
            str(rex), "serve", "rex.attach_demo", f"db=sqlite:///{self.db}",
            "--settings", str(settings_file), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(WORKERS)],
            port=port, workers=WORKERS, env={}, workdir=ctx.workdir)
        self.label = name
        self.codes = 0  # each upload gets a new code

    def _post(self, size: int, name: str) -> tuple[str, float]:
        self.codes += 1
        code = f"c{self.codes}"
        seconds = http_client.upload(self.server.url + "/upload", {"code": code, "title": code},
                                     "attachment", name, size)
        return code, seconds

    def handle(self, code: str) -> str:
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            row = db.execute("select handle from file where code = ?", (code,)).fetchone()
        if row is None:
            raise RuntimeError(f"no file of code {code} in {self.db}")
        return row[0]

    def place(self, name: str, size: int) -> str:
        """Uploads a file through the demo; returns its ``/attach/...`` URL path."""
        code, _ = self._post(size, name)
        return "/attach" + quote(self.handle(code))

    @staticmethod
    def handle_of(path: str) -> str:
        """The handle of an ``/attach/...`` URL path that `place()` gave."""
        return unquote(path[len("/attach"):])

    def place_code(self, name: str, size: int) -> str:
        """Uploads a file through the demo; returns its ``/download?code=`` URL path."""
        code, _ = self._post(size, name)
        return f"/download?code={code}"

    def upload(self, size: int) -> float:
        code, seconds = self._post(size, "upload.bin")
        key = self.handle(code).lstrip("/")
        if self.s3 is None:
            shutil.rmtree(self.attach_dir / key.rsplit("/", 1)[0])
        else:  # the object itself, not a tombstone: the store keeps no data
            self.s3.client.delete_object(Bucket=self.s3.bucket, Key=key)
        return seconds


class Context:
    """What the measures share: a scratch directory, the servers (started on
    first use, stopped at the end) and the fixture files in them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.stack = contextlib.ExitStack()
        self.workdir = Path(self.stack.enter_context(
            tempfile.TemporaryDirectory(prefix="rex-bench-", dir=args.workdir)))
        self.targets: dict[str, Any] = {}
        self.fixtures: dict[str, Any] = {}

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def target(self, name: str, make: Callable[[], Any] | None = None) -> Any:
        """A server by name, started by `make()` on first use; by default a
        reference server of that module name, or "project" (the local one)."""
        if name not in self.targets:
            if name.startswith("project") and self.args.project != "rex":
                raise Unavailable("--project ref")
            if make is not None:
                target = make()
            elif name == "project":
                target = ProjectTarget(self)
            else:
                target = RefTarget(self, name)
            self.stack.callback(target.server.stop)
            self.targets[name] = target
        return self.targets[name]

    def fixture(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per key (files to download, trees to list)."""
        if key not in self.fixtures:
            print(f"  preparing {key} ...", flush=True)
            self.fixtures[key] = make()
        return self.fixtures[key]

    def project_app(self, **settings: Any) -> Any:
        """The demo application in this process, for the library measures."""
        if self.args.project != "rex":
            raise Unavailable("--project ref")
        try:
            from rex.core import Rex

            return Rex("rex.attach_demo", db=f"sqlite:///{self.workdir}/library.sqlite",
                       **settings)
        except Exception as error:
            raise Unavailable(f"Rex('rex.attach_demo', ...): {error}") from None


def side(label: str, make: Callable[[], Trial], target: float | None = None) -> Side:
    """A side whose trial `make()` builds; a side that cannot be built is missing."""
    try:
        return Side(label, make(), target)
    except Unavailable as error:
        missing = str(error)
    except Exception as error:
        missing = f"{type(error).__name__}: {error}"
    print(f"  {label}: not measured: {missing}", flush=True)
    return Side(label, None, target, missing=missing[:200])


def project_side(ctx: Context, make: Callable[[], Trial], ref: Side) -> Side:
    """The project's side; with ``--project ref``, the first reference again."""
    if ctx.args.project == "ref":
        return Side(f"{ref.label} (again)", ref.trial)
    return side("project", make)


# -- the HTTP measures ---------------------------------------------------------------------

def upload_trial(target: Any, size: int) -> Trial:
    def trial() -> Sample:
        with procs.on_client_cpus(), target.server.sampler() as sampler:
            seconds = target.upload(size)
        return Sample(size / seconds / 1e6, sampler.growth)
    return trial


def download_trial(target: Any, path: str, size: int) -> Trial:
    def trial() -> Sample:
        with procs.on_client_cpus(), target.server.sampler() as sampler:
            seconds = http_client.download(target.server.url + path, size)
        return Sample(size / seconds / 1e6, sampler.growth)
    return trial


def warm_up(ctx: Context, target: Any, count: int = 4) -> None:
    """A few small uploads, untimed, so that the first measured one does not
    pay what a worker makes once (a store's client, a database engine)."""
    ctx.fixture(f"{target.label}: {count} warm-up uploads",
                lambda: [target.upload(64 << 10) for _ in range(count)])


def warm_upload_trial(ctx: Context, name: str, size: int) -> Trial:
    target = ctx.target(name)
    warm_up(ctx, target)
    return upload_trial(target, size)


def upload_measure(ctx: Context) -> Measure:
    size = ctx.sizes.upload
    multipart = side("python-multipart", lambda: warm_upload_trial(ctx, "multipart_disk", size), 0.9)
    webob = side("WebOb req.POST", lambda: warm_upload_trial(ctx, "webob_post", size), 4.0)
    project = project_side(ctx, lambda: warm_upload_trial(ctx, "project", size), multipart)
    return Measure("upload", f"upload {mib(size)} to /upload", "MB/s", [multipart, webob], project)


def upload_memory_measure(ctx: Context) -> Measure:
    size = ctx.sizes.upload_big
    multipart = side("python-multipart", lambda: warm_upload_trial(ctx, "multipart_disk", size))
    project = project_side(ctx, lambda: warm_upload_trial(ctx, "project", size), multipart)
    return Measure("upload-memory", f"upload {mib(size)} to /upload", "MB/s", [multipart], project,
                   max_growth=32 * MIB)


def fileapp_download(ctx: Context, size: int) -> Trial:
    fileapp = ctx.target("fileapp")
    path = ctx.fixture(f"fileapp: a {mib(size)} file", lambda: fileapp.place("big.bin", size))
    return download_trial(fileapp, path, size)


def download_measure(ctx: Context) -> Measure:
    size = ctx.sizes.download
    ref = side("gunicorn+FileApp", lambda: fileapp_download(ctx, size), 0.9)

    def project() -> Trial:
        target = ctx.target("project")
        path = ctx.fixture(f"project: a {mib(size)} file", lambda: target.place("big.bin", size))
        return download_trial(target, path, size)

    return Measure("download", f"download {mib(size)} from /attach/...", "MB/s", [ref],
                   project_side(ctx, project, ref), max_growth=16 * MIB)


def download_unchecked_measure(ctx: Context) -> Measure:
    """`download` of an attachment with no CRC32C recorded (as one stored
    before checksums): what the serving path costs without the check."""
    size = ctx.sizes.download
    ref = side("gunicorn+FileApp", lambda: fileapp_download(ctx, size), 0.9)

    def project() -> Trial:
        target = ctx.target("project")

        def place() -> str:
            path = target.place("unchecked.bin", size)
            os.removexattr(f"{target.attach_dir}{target.handle_of(path)}", "user.rex.attach.crc32c")
            return path

        path = ctx.fixture(f"project: a {mib(size)} file without a CRC32C", place)
        return download_trial(target, path, size)

    return Measure("download-unchecked", f"download {mib(size)} (no CRC32C) from /attach/...",
                   "MB/s", [ref], project_side(ctx, project, ref), max_growth=16 * MIB)


def download_demo_measure(ctx: Context) -> Measure:
    size = ctx.sizes.download
    ref = side("gunicorn+FileApp", lambda: fileapp_download(ctx, size), 0.9)

    def project() -> Trial:
        target = ctx.target("project")
        path = ctx.fixture(f"project: a {mib(size)} file of a code",
                           lambda: target.place_code("big.bin", size))
        return download_trial(target, path, size)

    return Measure("download-demo", f"download {mib(size)} from /download?code=", "MB/s", [ref],
                   project_side(ctx, project, ref), max_growth=16 * MIB)


def small_files_measure(ctx: Context) -> Measure:
    sizes = ctx.sizes
    http_client.ensure_wrk()

    def trial(name: str) -> Trial:
        target = ctx.target(name)
        paths = ctx.fixture(f"{name}: {sizes.small_files} files of {sizes.small >> 10} KiB", lambda: [
            target.place(f"small-{i}.bin", sizes.small) for i in range(sizes.small_files)])

        def run() -> Sample:
            with procs.on_client_cpus(), target.server.sampler() as sampler:
                rate = http_client.requests_per_second(target.server.url, paths, sizes.wrk_seconds)
            return Sample(rate, sampler.growth)
        return run

    ref = side("gunicorn+FileApp", lambda: trial("fileapp"), 0.8)
    return Measure("small", f"{sizes.small >> 10} KiB downloads, 16 connections", "req/s", [ref],
                   project_side(ctx, lambda: trial("project"), ref))


# -- download offload through nginx --------------------------------------------------------

def offload_sites(ctx: Context) -> dict[str, Any]:
    """Sites on one attachment directory, each behind an nginx that ``rex
    nginx`` configures: the demo with ``attach_serve: accel`` ("accel"),
    with ``proxy`` ("proxy", today's), `refs/accel_only.py` ("floor"); and
    an nginx serving the directory straight ("static"); "project" is the
    accel one's `ProjectTarget`."""
    accel = ctx.target("project-accel", lambda: ProjectTarget(
        ctx, "project-accel", attach_serve="accel", trusted_proxies=["127.0.0.1"]))
    proxy = ctx.target("project-proxy", lambda: ProjectTarget(
        ctx, "project-proxy", attach_dir=str(accel.attach_dir)))
    floor = ctx.target("accel_only")
    return {"project": accel,
            "accel": ctx.target("nginx-accel", lambda: nginx_sites.in_front_of(
                ctx.workdir, "nginx-accel", accel)),
            "proxy": ctx.target("nginx-proxy", lambda: nginx_sites.in_front_of(
                ctx.workdir, "nginx-proxy", proxy)),
            "floor": ctx.target("nginx-floor", lambda: nginx_sites.in_front_of(
                ctx.workdir, "nginx-floor", accel, upstream=floor.server.url)),
            "static": ctx.target("nginx-static", lambda: nginx_sites.serving(
                ctx.workdir, "nginx-static", accel.attach_dir))}


def offload_measure(ctx: Context, name: str, title: str, unit: str,
                    make: Callable[[dict[str, Any]], Callable[[str, bool], Trial]]) -> Measure:
    """The project (``accel``) against nginx serving the files straight
    (>= 0.7x), against an application that only answers X-Accel-Redirect
    (the floor of a request through any application), and against today's
    proxying; `make(sites)` gives the trial of a site, of paths under
    ``/attach`` or (static) not."""
    def trial(site: str) -> Trial:
        return make(offload_sites(ctx))(site, site == "static")

    static = side("nginx, the file straight", lambda: trial("static"), 0.7)
    floor = side("nginx, accel_only.py", lambda: trial("floor"))
    proxy = side("nginx, proxy (today)", lambda: trial("proxy"))
    return Measure(name, title, unit, [static, floor, proxy],
                   project_side(ctx, lambda: trial("accel"), static))


def accel_small_measure(ctx: Context) -> Measure:
    sizes = ctx.sizes
    http_client.ensure_wrk()

    def make(sites: dict[str, Any]) -> Callable[[str, bool], Trial]:
        project, count = sites["project"], sizes.small_files
        paths = ctx.fixture(f"accel: {count} files of {sizes.small >> 10} KiB", lambda: [
            project.place(f"small-{i}.bin", sizes.small) for i in range(count)])

        def trial(site: str, static: bool) -> Trial:
            site_paths = [path.removeprefix("/attach") if static else path for path in paths]

            def run() -> Sample:
                with procs.on_client_cpus():
                    return Sample(http_client.requests_per_second(
                        sites[site].server.url, site_paths, sizes.wrk_seconds))
            return run
        return trial

    return offload_measure(ctx, "accel-small", f"{sizes.small >> 10} KiB downloads through "
                           "nginx, accel, 16 connections", "req/s", make)


def accel_large_measure(ctx: Context) -> Measure:
    size = ctx.sizes.download

    def make(sites: dict[str, Any]) -> Callable[[str, bool], Trial]:
        path = ctx.fixture(f"accel: a {mib(size)} file",
                           lambda: sites["project"].place("big.bin", size))

        def trial(site: str, static: bool) -> Trial:
            url = sites[site].server.url + (path.removeprefix("/attach") if static else path)

            def run() -> Sample:
                with procs.on_client_cpus():
                    return Sample(size / http_client.download(url, size) / 1e6)
            return run
        return trial

    return offload_measure(ctx, "accel-large", f"download {mib(size)} through nginx, accel",
                           "MB/s", make)


SLOW_UPLOADS, IDLE_CONNECTIONS, SLOW_RATE = 200, 200, 64 << 10
PROBES = 100  # GET / latencies per round, at least
LOADED_SECONDS = 10  # the load lasts at least this long: past what socket buffers hide
MAX_P99 = 0.1  # seconds


def slow_clients_measure(ctx: Context) -> Measure:
    """The fast upload of `upload_measure` on the project's server (its
    defaults), alone (the reference) and amid slow uploads and idle
    connections (`slow_clients.py`) for `LOADED_SECONDS` at least, while
    ``GET /`` is timed, during and after the fast upload.  The slow
    uploads' rate as sent shows the server read them: past what the socket
    buffers hold (some 100 KiB), a client that is not read cannot send."""
    size = ctx.sizes.upload
    latencies: list[float] = []
    loads: list[slow_clients.Stats] = []

    def loaded() -> Trial:
        target = ctx.target("project")
        warm_up(ctx, target)

        def trial() -> Sample:
            with procs.on_client_cpus():
                with slow_clients.under_load(target.server.url, SLOW_UPLOADS, IDLE_CONNECTIONS,
                                             SLOW_RATE) as load:
                    loaded_at = time.monotonic()
                    with slow_clients.Prober(target.server.url + "/") as prober:
                        with target.server.sampler() as sampler:
                            seconds = target.upload(size)
                        prober.wait_for(PROBES)
                        time.sleep(max(0.0, loaded_at + LOADED_SECONDS - time.monotonic()))
                    latencies.extend(prober.latencies)
            loads.append(load)
            return Sample(size / seconds / 1e6, sampler.growth)
        return trial

    def more_rows() -> list[Row]:
        if not latencies:
            return []
        ordered = sorted(latencies)
        p50, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99))
        sent = sum(stats.upload_bytes for stats in loads)
        seconds = sum(stats.seconds for stats in loads)
        rate = sent / seconds / SLOW_UPLOADS / 1024 if seconds else 0
        return [
            (f"slow-clients: GET / under load, ms p50 / p99 of {len(ordered)}", f"{p50 * 1e3:.1f} / "
             f"{p99 * 1e3:.1f}", "-", "-", "-", f"p99 < {MAX_P99 * 1e3:g} ms",
             "PASS" if p99 < MAX_P99 else "FAIL"),
            ("slow-clients: slow uploads: KiB/s each (sent while loaded), under way, failed",
             f"{rate:.1f}, {min(s.uploads for s in loads)}, {sum(s.upload_failures for s in loads)}",
             f"{SLOW_RATE >> 10}, {SLOW_UPLOADS}, 0", "-", "-", "-", "-"),
            ("slow-clients: idle keep-alive connections: open, closed by the server",
             f"{min(s.idle for s in loads)}, {sum(s.idle_reopened for s in loads)}",
             f"{IDLE_CONNECTIONS}, 0", "-", "-", "-", "-"),
        ]

    alone = side("no load", lambda: warm_upload_trial(ctx, "project", size), 0.8)
    return Measure("slow-clients", f"upload {mib(size)} amid {SLOW_UPLOADS} slow uploads and "
                   f"{IDLE_CONNECTIONS} idle connections", "MB/s", [alone],
                   project_side(ctx, loaded, alone), show_growth=True, more_rows=more_rows)


# -- the library measures ------------------------------------------------------------------

def process_trial(run: Callable[[], library.Run], amount: float,
                  cleanup: Callable[[], None] = lambda: None) -> Trial:
    """A trial of an in-process run: `amount` (bytes, items) per second."""
    def trial() -> Sample:
        seconds, growth = run()
        cleanup()
        return Sample(amount / seconds, growth)
    return trial


def clear(directory: Path) -> None:
    """Removes what a round stored, keeping the storage's hidden files."""
    for entry in directory.iterdir():
        if not entry.name.startswith("."):
            shutil.rmtree(entry)


def adds_measure(ctx: Context) -> Measure:
    count = ctx.sizes.adds
    data = http_client.BLOCK[:1024]
    raw_dir = ctx.workdir / "raw-adds"
    ref = side("raw durable atomic loop", lambda: process_trial(
        lambda: library.raw_durable_adds(str(raw_dir), count, data), count,
        lambda: shutil.rmtree(raw_dir)), 0.8)

    def project() -> Trial:
        directory = ctx.workdir / "adds"
        directory.mkdir()
        app = ctx.project_app(attach_dir=str(directory))

        def run() -> library.Run:
            from rex.attach import get_storage

            with app:
                return library.storage_adds(get_storage(), count, data)
        return process_trial(run, count, lambda: clear(directory))

    return Measure("adds", f"{count:,} local add() of 1 KiB", "adds/s", [ref],
                   project_side(ctx, project, ref), growth_of="process")


def iterate_measure(ctx: Context) -> Measure:
    count = ctx.sizes.handles
    tree = ctx.workdir / "tree"

    def make_tree() -> None:
        if not tree.exists():
            print(f"  laying out {count:,} attachments ...", flush=True)
            library.make_tree(str(tree), count)

    def ref_trial() -> Trial:
        make_tree()
        return process_trial(lambda: library.count_all(library.scandir_walk(str(tree)), count),
                             count)

    def project() -> Trial:
        make_tree()
        app = ctx.project_app(attach_dir=str(tree))

        def run() -> library.Run:
            from rex.attach import get_storage

            with app:
                return library.count_all(iter(get_storage()), count)
        return process_trial(run, count)

    ref = side("raw os.scandir walk", ref_trial, 0.5)
    return Measure("iterate", f"iterate {count:,} local handles", "handles/s", [ref],
                   project_side(ctx, project, ref), max_growth=4 * MIB, growth_of="process")


@dataclass
class S3:
    client: Any  # a plain boto3 client, for fixtures and cleaning up
    bucket: str
    settings: dict[str, str]  # the project's settings for this bucket

    def project_client(self) -> Any:
        """A client made the project's way (`S3Storage._connect`: its
        timeouts, retries, checksum and create-only settings), for the
        references, so that they differ from the project only in what it
        does, not in how it talks to the store."""
        from rex.attach.s3 import S3Storage

        return S3Storage(self.settings["attach_s3_bucket"],
                         endpoint=self.settings["attach_s3_endpoint"],
                         region=self.settings["attach_s3_region"],
                         access_key=self.settings["attach_s3_access_key"],
                         secret_key=self.settings["attach_s3_secret_key"]).client

    def env(self, prefix: str) -> dict[str, str]:
        """What a reference server of bench/refs needs to store under `prefix`."""
        return {"BENCH_S3_ENDPOINT": self.settings["attach_s3_endpoint"],
                "BENCH_S3_REGION": self.settings["attach_s3_region"],
                "BENCH_S3_ACCESS_KEY": self.settings["attach_s3_access_key"],
                "BENCH_S3_SECRET_KEY": self.settings["attach_s3_secret_key"],
                "BENCH_S3_BUCKET": self.bucket, "BENCH_S3_PREFIX": prefix}

    def delete(self, prefix: str) -> None:
        """Deletes every object whose key starts with `prefix` (untimed)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", ()):
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])


def s3_key(name: str) -> str:
    """A fresh key shaped like the project's (``Y/M/D/UUID/NAME``), under
    ``ref/``: the references' clients write create-only, as the project's do."""
    return f"ref/{time.strftime('%Y/%m/%d')}/{uuid.uuid4()}/{name}"


def s3(ctx: Context) -> S3:
    """A radosgw from tests/servers.py (started once), a bucket, a client."""
    if "s3" not in ctx.targets:
        try:
            from tests.servers import start_radosgw
        except ImportError as error:
            raise Unavailable(f"no S3 server: tests/servers.py: {error}") from None
        import boto3

        print("  starting radosgw ...", flush=True)
        server = start_radosgw(ctx.workdir / "radosgw", memstore_mib=8192)
        ctx.stack.callback(server.stop)
        client = boto3.client("s3", endpoint_url=server.endpoint, region_name=server.region,
                              aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key)
        bucket = "rex-bench"
        client.create_bucket(Bucket=bucket)
        ctx.targets["s3"] = S3(client, bucket, {
            "attach_s3_bucket": bucket, "attach_s3_endpoint": server.endpoint,
            "attach_s3_region": server.region, "attach_s3_access_key": server.access_key,
            "attach_s3_secret_key": server.secret_key})
    return ctx.targets["s3"]


def s3_file(ctx: Context) -> str:
    path = ctx.workdir / "s3-upload.bin"
    if not path.exists():
        http_client.write_file(str(path), ctx.sizes.s3)
    return str(path)


def s3_add_measure(ctx: Context) -> Measure:
    size = ctx.sizes.s3

    def ref() -> Trial:
        from rex.attach.objectstore import CRC32C
        from rex.attach.response import content_type
        from rex.attach.s3 import TRANSFER

        store, path = s3(ctx), s3_file(ctx)
        client = store.project_client()
        extra_args = {"ContentType": content_type("big.bin"),
                      "Metadata": {CRC32C: ctx.fixture("S3: the file's CRC32C",
                                                       lambda: library.file_crc32c(path))}}
        return process_trial(
            lambda: library.boto3_upload(client, store.bucket, s3_key("big.bin"), path,
                                         TRANSFER, extra_args),
            size / 1e6, lambda: store.delete("ref/"))

    def project() -> Trial:
        from rex.attach import get_storage

        store, path = s3(ctx), s3_file(ctx)
        app = ctx.project_app(**store.settings)
        with app:
            get_storage().client  # made once per process, as the reference's is: not timed

        def run() -> library.Run:
            with app:
                storage = get_storage()
                result, handle = library.storage_add_file(storage, "big.bin", path)
                storage.remove(handle)
            return result
        return process_trial(run, size / 1e6)

    raw = side("boto3 upload_fileobj, same config", ref, 0.9)
    return Measure("s3-add", f"S3 add() of {mib(size)}", "MB/s", [raw],
                   project_side(ctx, project, raw), growth_of="process")


def s3_upload_measure(ctx: Context) -> Measure:
    size = ctx.sizes.upload

    def ref() -> Trial:
        store = s3(ctx)
        ctx.target("multipart_s3", lambda: RefTarget(ctx, "multipart_s3",
                                                      env=store.env("ref-upload"),
                                                      cleanup=lambda: store.delete("ref-upload/")))
        return warm_upload_trial(ctx, "multipart_s3", size)

    def project() -> Trial:
        store = s3(ctx)
        ctx.target("project-s3", lambda: ProjectTarget(ctx, "project-s3", s3=store))
        return warm_upload_trial(ctx, "project-s3", size)

    raw = side("python-multipart+boto3", ref, 0.9)
    return Measure("s3-upload", f"upload {mib(size)} to /upload on S3", "MB/s", [raw],
                   project_side(ctx, project, raw), show_growth=True)


def s3_route_measure(ctx: Context) -> Measure:
    size = ctx.sizes.s3

    def ref() -> Trial:
        store = s3(ctx)
        ctx.fixture("S3: an object", lambda: store.client.upload_file(
            s3_file(ctx), store.bucket, "download.bin"))
        return process_trial(lambda: library.boto3_stream(store.client, store.bucket,
                                                          "download.bin", size), size / 1e6)

    def project() -> Trial:
        store = s3(ctx)
        app = ctx.project_app(**store.settings)
        from rex.attach import get_storage

        def add() -> str:
            with app, open(s3_file(ctx), "rb") as file:
                return get_storage().add("big.bin", file)

        handle = ctx.fixture("S3: an attachment", add)

        def run() -> library.Run:
            with app:
                return library.route_stream(get_storage(), handle, size)
        return process_trial(run, size / 1e6)

    raw = side("boto3 get_object stream", ref, 0.8)
    return Measure("s3-route", f"S3 route() of {mib(size)}", "MB/s", [raw],
                   project_side(ctx, project, raw), max_growth=32 * MIB, growth_of="process")


# -- rex attach ----------------------------------------------------------------------------

def attach_sizes(ctx: Context) -> operations.Sizes:
    return operations.QUICK if ctx.args.quick else operations.FULL


def warm_command(ctx: Context, settings: str) -> None:
    """One untimed ``rex attach ls``: what a process loads once is not timed."""
    if ctx.args.project == "rex":
        ctx.fixture("rex attach: a warm-up run", lambda: operations.ls(settings))


def verify_measure(ctx: Context) -> Measure:
    sizes = attach_sizes(ctx)
    total = sizes.verify_files * sizes.verify_size
    root = ctx.workdir / "verify"
    paths = ctx.fixture(f"verify: {sizes.verify_files} files of {mib(sizes.verify_size)}",
                        lambda: operations.make_store(root / "attachments", sizes.verify_files,
                                                      sizes.verify_size))
    ref = side("plain CRC32C loop", lambda: process_trial(
        lambda: operations.crc32c_files(paths), total / 1e6), 0.8)

    def project() -> Trial:
        settings = operations.settings_file(root / "settings.yaml",
                                            attach_dir=str(root / "attachments"))
        warm_command(ctx, settings)
        return process_trial(lambda: operations.verify(settings), total / 1e6)

    return Measure("verify", f"rex attach verify of {mib(total)} in {sizes.verify_files} files",
                   "MB/s", [ref], project_side(ctx, project, ref), growth_of="process")


def migrate_measure(ctx: Context) -> Measure:
    sizes = attach_sizes(ctx)
    count = sizes.migrate_files
    root = ctx.workdir / "migrate"
    paths = ctx.fixture(f"migrate: {count:,} files of {sizes.migrate_size >> 10} KiB",
                        lambda: operations.make_store(root / "attachments", count,
                                                      sizes.migrate_size))

    def ref() -> Trial:
        store = s3(ctx)
        client = store.project_client()
        return process_trial(lambda: operations.boto3_pool_upload(
            client, store.bucket, root / "attachments", paths, "ref/", sizes.jobs), count,
            lambda: store.delete("ref/"))

    raw = side(f"boto3 put_object, {sizes.jobs} threads", ref, 0.8)
    return Measure("migrate", f"rex attach migrate of {count:,} files of "
                   f"{sizes.migrate_size >> 10} KiB to S3, {sizes.jobs} jobs", "files/s", [raw],
                   project_side(ctx, lambda: migrate_trial(ctx, root, sizes.jobs, count), raw),
                   growth_of="process")


def migrate_trial(ctx: Context, root: Path, jobs: int, amount: float) -> Trial:
    """`rex attach migrate` of the store in `root` to the S3 bucket; what it
    copied is deleted after each run."""
    store = s3(ctx)
    settings = operations.settings_file(root / "settings.yaml",
                                        attach_dir=str(root / "attachments"))
    target = operations.settings_file(root / "s3.yaml", **store.settings)
    warm_command(ctx, settings)
    return process_trial(lambda: operations.migrate(settings, target, jobs), amount,
                         lambda: store.delete("2020/"))


def migrate_big_measure(ctx: Context) -> Measure:
    size = attach_sizes(ctx).migrate_big
    root = ctx.workdir / "migrate-big"
    path, = ctx.fixture(f"migrate: one file of {mib(size)}",
                        lambda: operations.make_store(root / "attachments", 1, size))

    def ref() -> Trial:
        from rex.attach.s3 import TRANSFER

        store = s3(ctx)
        client = store.project_client()
        return process_trial(lambda: operations.boto3_upload_file(
            client, store.bucket, s3_key("big.bin"), path, TRANSFER), size / 1e6,
            lambda: store.delete("ref/"))

    def project() -> Trial:
        store = s3(ctx)
        target = operations.settings_file(root / "s3.yaml", **store.settings)

        def baseline() -> int:
            small = ctx.workdir / "migrate-small"
            operations.make_store(small / "attachments", 1, 1 << 10)
            _, peak = operations.migrate_process(operations.settings_file(
                small / "settings.yaml", attach_dir=str(small / "attachments")), target)
            store.delete("2020/")
            return peak

        floor = ctx.fixture("rex attach migrate: its peak memory on one small file", baseline)
        settings = operations.settings_file(root / "settings.yaml",
                                            attach_dir=str(root / "attachments"))
        return process_trial(lambda: operations.migrate_process(settings, target, floor),
                             size / 1e6, lambda: store.delete("2020/"))

    raw = side("boto3 upload_fileobj, same config", ref)
    return Measure("migrate-big", f"rex attach migrate of one {mib(size)} file to S3 "
                   "(a process of its own)", "MB/s", [raw], project_side(ctx, project, raw),
                   max_growth=64 * MIB, growth_of="process")


def ls_measure(ctx: Context) -> Measure:
    """On the tree of the iterate measure, against its raw walk."""
    count = ctx.sizes.handles
    walk = iterate_measure(ctx).refs[0]  # lays the tree out
    ref = Side(walk.label, walk.trial, missing=walk.missing)

    def project() -> Trial:
        settings = operations.settings_file(ctx.workdir / "ls.yaml",
                                            attach_dir=str(ctx.workdir / "tree"))
        warm_command(ctx, settings)
        return process_trial(lambda: operations.ls(settings), count)

    return Measure("ls", f"rex attach ls of {count:,} handles", "handles/s", [ref],
                   project_side(ctx, project, ref), max_growth=4 * MIB, growth_of="process")


MEASURES: dict[str, Callable[[Context], Measure]] = {
    "upload": upload_measure,
    "upload-memory": upload_memory_measure,
    "download": download_measure,
    "download-demo": download_demo_measure,
    "download-unchecked": download_unchecked_measure,
    "small": small_files_measure,
    "slow-clients": slow_clients_measure,
    "adds": adds_measure,
    "iterate": iterate_measure,
    "s3-add": s3_add_measure,
    "s3-upload": s3_upload_measure,
    "s3-route": s3_route_measure,
    "verify": verify_measure,
    "migrate": migrate_measure,
    "migrate-big": migrate_big_measure,
    "ls": ls_measure,
    "accel-small": accel_small_measure,
    "accel-large": accel_large_measure,
}


# -- running and reporting -----------------------------------------------------------------

def round_order(measure: Measure, number: int) -> tuple[str, list[Side]]:
    """The sides of round `number` (from 1) in the order they run: the
    project first in odd rounds, the references first in even ones."""
    if number % 2:
        return "project first", [measure.project, *measure.refs]
    return ("reference first" if len(measure.refs) == 1 else "references first",
            [*measure.refs, measure.project])


def run(measure: Measure, rounds: int) -> None:
    """Runs the available sides interleaved, round by round, alternating
    which goes first (`round_order`); a side that fails stops being run and
    says why."""
    for number in range(1, rounds + 1):
        order, sides = round_order(measure, number)
        figures = []
        for item in sides:
            if item.trial is None:
                continue
            os.sync()  # no side pays for the dirty pages another side left
            try:
                sample = item.trial()
            except Exception as error:
                traceback.print_exc()
                item.trial, item.missing = None, f"failed: {error}"[:200]
                continue
            item.samples.append(sample)
            figures.append(f"{item.label} {sample.value:,.1f}")
        print(f"  round {number}/{rounds} ({order}): {', '.join(figures)} {measure.unit}",
              flush=True)


Row = tuple[str, str, str, str, str, str, str]


def report(measure: Measure) -> list[Row]:
    """The rows of the table for a measure: one per reference, and one for
    the project's memory growth."""
    rows: list[Row] = []
    project = measure.project
    for ref in measure.refs:
        name = f"{measure.title}, {measure.unit}, vs {ref.label}"
        target = f">= {ref.target:g}x" if ref.target is not None else "-"
        if not (project.samples and ref.samples):
            why = project.missing if not project.samples else ref.missing
            rows.append((name, "-", "-", "-", "-", target, f"n/a: {why}"))
            continue
        ratio = project.median() / ref.median()
        pairs = [p.value / r.value for p, r in zip(project.samples, ref.samples)]
        verdict = "-" if ref.target is None else ("PASS" if ratio >= ref.target else "FAIL")
        rows.append((name, f"{project.median():,.1f}", f"{ref.median():,.1f}", f"{ratio:.2f}",
                     f"{min(pairs):.2f}-{max(pairs):.2f}", target, verdict))
    if measure.max_growth is not None or measure.show_growth:
        ref = measure.refs[0]
        name = f"{measure.title}, {measure.growth_of} memory growth MiB, vs {ref.label}"
        limit = measure.max_growth
        target = "-" if limit is None else f"< {limit / MIB:g} MiB"
        if not project.samples:
            rows.append((name, "-", "-", "-", "-", target, f"n/a: {project.missing}"))
        else:
            growth = project.max_growth()
            verdict = "-" if limit is None else "PASS" if growth < limit else "FAIL"
            ref_growth = f"{ref.max_growth() / MIB:.1f}" if ref.samples else "-"
            rows.append((name, f"{growth / MIB:.1f}", ref_growth, "-", "(max of rounds)", target,
                         verdict))
    if measure.more_rows is not None:
        rows += measure.more_rows()
    return rows


def print_table(header: Row | tuple[str, ...], rows: list[Row] | list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) if i == 0 or i == len(row) - 1 else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths))).rstrip())


def server_rows(ctx: Context) -> list[tuple[str, ...]]:
    """Each server's worker memory: at start, peak over its life, largest
    growth during one measured transfer."""
    rows = []
    for target in ctx.targets.values():
        server = getattr(target, "server", None)
        if not isinstance(server, procs.Server):
            continue
        workers = server.workers()
        end = max((procs.memory_status(pid) for pid in workers), default=0)
        start = max(server.start_rss.values(), default=0)
        replaced = "" if set(workers) == set(server.start_rss) else " (workers replaced!)"
        rows.append((server.name + replaced, str(len(workers)), f"{start / MIB:.1f}",
                     f"{end / MIB:.1f}", f"{server.max_growth / MIB:.1f}"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each measure (>= 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(MEASURES), metavar="NAME",
                        help=f"run only these measures: {', '.join(MEASURES)}")
    parser.add_argument("--project", choices=("rex", "ref"), default="rex",
                        help="'ref': measure the first reference in the project's place")
    parser.add_argument("--workdir", help="where the scratch directory goes (default: $TMPDIR)")
    args = parser.parse_args()

    started = time.monotonic()
    measures: list[Measure] = []
    with Context(args) as ctx:
        for name in args.only or MEASURES:
            print(f"{name}:", flush=True)
            try:
                measure = MEASURES[name](ctx)
            except Exception as error:
                traceback.print_exc()
                print(f"  skipped: {error}")
                continue
            run(measure, args.rounds)
            measures.append(measure)
        servers = server_rows(ctx)

    rows = [row for measure in measures for row in report(measure)]
    print(f"\nrex.attach benchmarks, {args.rounds} rounds{' (quick sizes)' if args.quick else ''},"
          f" {time.monotonic() - started:.0f} s, odd rounds project first, even rounds"
          f" reference(s) first; medians, ratio = project / reference")
    print_table(("measure", "project", "reference", "ratio", "ratio range", "target", "result"), rows)
    if servers:
        print("\nserver workers' memory, MiB (VmRSS, the largest of the workers)")
        print_table(("server", "workers", "at start", "at end", "max growth in a run"), servers)
    verdicts = [row[-1] for row in rows]
    failed = [row[0] for row in rows if row[-1] == "FAIL"]
    print(f"\nSUMMARY: {verdicts.count('PASS')} PASS, {len(failed)} FAIL, "
          f"{sum(v.startswith('n/a') for v in verdicts)} n/a"
          + "".join(f"\n  FAIL: {name}" for name in failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
