"""``rex serve PACKAGE [NAME=VALUE ...]``: an application under gunicorn."""

from __future__ import annotations

import errno
import socket
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from rex.core import Rex
from rex.core.cli import Failure, application_command

from .health import HealthApp
from .logs import JsonLogger, TextLogger

LOGGERS = {"text": TextLogger, "json": JsonLogger}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
WORKERS = 2
THREADS = 256  # per worker: each request in progress holds one (see docs/production-workers.rst)
IDLE_TIMEOUT = 60  # seconds, as nginx's client_body_timeout and send_timeout


class Server(BaseApplication):
    """gunicorn serving one RexDB application (`rex.web.worker.Worker`),
    with ``/healthz`` in front of it (`HealthApp`) and the logs of
    `rex.web.logs`.

    The application is built once in the master, so that a bad setting stops
    the server before it binds; each worker then drops the per-application
    cache (database pools, HTTP clients), which must not cross a fork.
    """

    def __init__(self, app: Rex, options: dict[str, Any]) -> None:
        self.app = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)
        self.cfg.set("post_fork", lambda server, worker: self.app.cache.clear())
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24
            # One fixed path (~/.gunicorn/gunicorn.ctl) that every server shares.
            self.cfg.set("control_socket_disable", True)

    def load(self) -> HealthApp:
        return HealthApp(self.app)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, made here rather than by gunicorn (which tries
    five times, a second apart, then says "Can't connect"), so that an
    address that cannot be used is a prompt, plain `Failure`."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Failure(f"Cannot listen on {where}: unknown host {host!r} ({exc.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reasons = {
            errno.EADDRINUSE: f"port {port} is in use by another program; choose another "
                              "with --port, or stop that program",
            errno.EACCES: f"port {port} needs privileges this user lacks (ports below 1024 "
                          "usually do); choose a port from 1024 up with --port",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine; "
                                 "choose another with --host",
        }
        reason = reasons.get(exc.errno, exc.strerror or str(exc))
        raise Failure(f"Cannot listen on {where}: {reason}.") from None
    return sock


@click.command()
@application_command
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="The TCP port to listen on.")
@click.option("--workers", type=click.IntRange(1, 256), default=WORKERS, show_default=True,
              help="Worker processes.")
@click.option("--threads", type=click.IntRange(1, 4096), default=THREADS, show_default=True,
              help="Threads of each worker: requests in progress at once, per worker.")
@click.option("--idle-timeout", type=click.IntRange(1), default=IDLE_TIMEOUT, show_default=True,
              help="Seconds a connection may go without moving a byte (waiting for a request, "
                   "receiving or sending) before it is closed; a transfer that moves is "
                   "never cut.")
@click.option("--timeout", type=click.IntRange(1), default=30, show_default=True,
              help="Seconds a worker may go unresponsive before it is restarted; "
                   "no limit on requests.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True,
              help="The least severe messages of the error log.")
@click.option("--log-format", type=click.Choice(sorted(LOGGERS)), default="text",
              show_default=True, help="Log lines as text or as JSON objects.")
def serve(app: Rex, host: str, port: int, workers: int, threads: int, idle_timeout: int,
          timeout: int, log_level: str, log_format: str) -> None:
    """Serve the application of PACKAGE over HTTP.

    gunicorn runs it, with an access log line per request on standard
    output, the error log on standard error, and /healthz for load
    balancers."""
    listener = listen(host, port)
    Server(app, {
        "bind": f"fd://{listener.fileno()}",
        "workers": workers,
        "worker_class": "rex.web.worker.Worker",
        "threads": threads,
        "keepalive": idle_timeout,  # `Worker` makes it the idle timeout
        "timeout": timeout,
        "logger_class": LOGGERS[log_format],
        "loglevel": log_level,
        "accesslog": "-",
        # Which proxies to believe is rex.web.proxy's to say (trusted_proxies), not gunicorn's.
        "forwarded_allow_ips": "",
    }).run()
