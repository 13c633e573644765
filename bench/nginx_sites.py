"""nginx for the offload measures: Debian's nginx as the tests start it
(tests/nginx.py), moved onto the servers' CPUs, either in front of a
`rex serve` with the configuration that ``rex nginx`` prints for it, or
serving a directory straight from disk (the ceiling of ``accel``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import procs

# tests/nginx.py imports its neighbours (helpers) as the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nginx import rex_nginx, start_nginx  # noqa: E402


class NginxSite:
    """A running nginx as a bench target: `server.url`, `server.stop()`."""

    def __init__(self, workdir: Path, name: str, site: Callable[[int], str]) -> None:
        context = start_nginx(workdir / name, site)
        nginx = context.__enter__()
        for pid in [nginx.pid, *procs.worker_pids(nginx.pid)]:
            os.sched_setaffinity(pid, procs.SERVER_CPUS)
        self.label = name
        self.server = SimpleNamespace(url=nginx.url,
                                      stop=lambda: context.__exit__(None, None, None))


def in_front_of(workdir: Path, name: str, target: Any, upstream: str | None = None) -> NginxSite:
    """nginx in front of a `ProjectTarget` of the demo (or of the server at
    `upstream`), configured by ``rex nginx`` from the target's settings."""
    return NginxSite(workdir, name, rex_nginx(
        "rex.attach_demo", "--settings", str(target.settings_file), f"db=sqlite:///{target.db}",
        "--upstream", (upstream or target.server.url).removeprefix("http://")))


def serving(workdir: Path, name: str, directory: Path) -> NginxSite:
    """nginx sending the files of `directory`, as its internal location of
    ``accel`` does."""
    return NginxSite(workdir, name, lambda port: (
        f"server {{\n    listen 127.0.0.1:{port};\n    sendfile on;\n    tcp_nopush on;\n"
        f"    root {directory};\n}}\n"))
