"""A real nginx for the tests (Debian's package, see scripts/install-system-deps),
started on a free port of 127.0.0.1 and stopped by its pid.

Its main configuration plays the part of Debian's /etc/nginx/nginx.conf: it
includes the site configuration under test (what ``rex nginx`` writes for
/etc/nginx/conf.d/) in its ``http`` block, and keeps everything of its own
(pid, logs, temporary files) in one directory.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from helpers import HOST, START_TIMEOUT, free_port, rex_script, stop_process

MAIN = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
{user}
events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format upstream '$remote_addr "$request" $status upstream=$upstream_addr';
    access_log {dir}/access.log upstream;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


@dataclass
class Nginx:
    url: str  # http://127.0.0.1:PORT
    port: int
    pid: int
    directory: Path  # its configuration, logs and temporary files

    def access_log(self) -> list[str]:
        """The lines of the access log: client, request, status, upstream=ADDRESS (- for none)."""
        path = self.directory / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        return (self.directory / "error.log").read_text(errors="replace")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)
    if found is None:
        raise RuntimeError("nginx is not installed: run scripts/install-system-deps "
                           "(Debian package nginx)")
    return found


@contextlib.contextmanager
def start_nginx(directory: Path, site: Callable[[int], str], scheme: str = "http",
                verify: str | bool = True) -> Iterator[Nginx]:
    """Runs nginx with the site configuration `site(port)` on a free port of
    127.0.0.1 (every ``listen`` of the site must be on 127.0.0.1) and yields
    it once it answers (`verify`: the CA file of an HTTPS site).  As root,
    its workers run as root too: they read the files the application (root
    as well) writes, as nginx's workers must run as the application's user
    in production to send its files (accel)."""
    directory.mkdir(parents=True, exist_ok=True)
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(MAIN.format(dir=directory, user=user))
    for attempt in range(3):
        port = free_port()
        text = site(port)
        listens = re.findall(r"^\s*listen\s+(\S+?)[\s;]", text, re.M)
        assert listens and all(item.startswith(f"{HOST}:") for item in listens), listens
        (directory / "site.conf").write_text(text)
        (directory / "error.log").write_text("")
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(directory), "-c", str(directory / "nginx.conf"),
             "-e", str(directory / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            if _wait_until_answers(process, f"{scheme}://{HOST}:{port}", verify):
                break
        except BaseException:
            stop_process(process)
            raise
        log = (directory / "error.log").read_text(errors="replace")
        if "Address already in use" in log and attempt < 2:
            continue
        raise RuntimeError(f"nginx exited with code {process.returncode}:\n{log}")
    try:
        yield Nginx(f"{scheme}://{HOST}:{port}", port, process.pid, directory)
    finally:
        stop_process(process, signal.SIGQUIT)  # a graceful stop; SIGKILL to the group after


def _wait_until_answers(process: subprocess.Popen, url: str, verify: str | bool) -> bool:
    """True once nginx answers any HTTP request; False if it exited."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            requests.get(url + "/", timeout=5, verify=verify)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        return True
    raise RuntimeError(f"nginx did not answer at {url} within {START_TIMEOUT} s")


def rex_nginx(package: str, *args: str) -> Callable[[int], str]:
    """The site configuration that ``rex nginx PACKAGE ARGS... --listen
    127.0.0.1:PORT`` prints (what an operator puts in /etc/nginx/conf.d/),
    for `start_nginx()`."""
    def site(port: int) -> str:
        done = subprocess.run([rex_script(), "nginx", package, *args, "--listen", f"{HOST}:{port}"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout
    return site
