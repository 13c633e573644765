"""``rex serve PACKAGE [NAME=VALUE ...]``: an application under gunicorn."""

from __future__ import annotations

from typing import Any

import click
from gunicorn.app.base import BaseApplication

from rex.core import Rex
from rex.core.cli import application_command


class Server(BaseApplication):
    """gunicorn serving one RexDB application with sync workers.

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

    def load(self) -> Rex:
        return self.app


@click.command()
@application_command
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True,
              help="The TCP port to listen on.")
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True,
              help="Worker processes.")
@click.option("--timeout", type=click.IntRange(1), default=300, show_default=True,
              help="Seconds a worker may spend on one request.")
def serve(app: Rex, host: str, port: int, workers: int, timeout: int) -> None:
    """Serve the application of PACKAGE over HTTP (gunicorn)."""
    Server(app, {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "timeout": timeout,
        # Which proxies to believe is rex.web.proxy's to say (trusted_proxies), not gunicorn's.
        "forwarded_allow_ips": "",
    }).run()
