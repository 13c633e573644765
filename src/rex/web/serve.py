"""The ``rex`` command: ``rex serve PACKAGE [name=value ...]`` runs an
application under gunicorn."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml
from gunicorn.app.base import BaseApplication

from rex.core import Error, Rex


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rex", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an application over HTTP")
    serve.add_argument("package", help="the main package, e.g. rex.attach_demo")
    serve.add_argument("settings", nargs="*", metavar="name=value", help="a setting")
    serve.add_argument("--settings", dest="settings_file", metavar="FILE",
                       help="a YAML file of settings (name=value arguments win)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--timeout", type=int, default=300,
                       help="seconds a worker may spend on one request")
    args = parser.parse_args(argv)

    settings: dict[str, Any] = {}
    if args.settings_file:
        with open(args.settings_file, encoding="utf-8") as stream:
            settings.update(yaml.safe_load(stream) or {})
    for item in args.settings:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"expected name=value, got {item!r}")
        settings[name] = value
    try:
        app = Rex(args.package, **settings)
    except Error as error:
        print(error, file=sys.stderr)
        return 1
    Server(app, {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "sync",
        "timeout": args.timeout,
    }).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
