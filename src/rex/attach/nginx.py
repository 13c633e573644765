"""``rex nginx PACKAGE [NAME=VALUE ...]``: the nginx configuration that
puts an application behind nginx, made from its settings.

What nginx must know of the application comes from the same settings the
application runs with, so the two cannot disagree: the largest request body
(`attach_max_size`), the internal location of ``attach_serve: accel`` on
`attach_dir`, the header that names the user (`remote_user_header`), which
nginx always sets itself.  The template is ``nginx.conf.j2`` beside this
module; docs/production.rst shows and explains its output.
"""

from __future__ import annotations

import os
import re
from typing import Any

import click
import jinja2

from rex.core import Rex
from rex.core.cli import Failure, application_command
from rex.web.form import MAX_FIELDS_SIZE

# What a form holds besides its file: text fields (at most MAX_FIELDS_SIZE),
# the parts' headers and boundaries.
FORM_ROOM = MAX_FIELDS_SIZE + (1 << 20)
UPSTREAM_NAME = "rex_app"
AUTH_LOCATION = "/_auth"
# What may stand in the configuration as a word: nothing that nginx reads as
# syntax (``;``, braces, quotes, spaces) or as a variable (``$``).
WORD = re.compile(r"[A-Za-z0-9_.:/~@%+=,\[\]-]+")
HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
LISTEN = re.compile(r"((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?[0-9]{1,5}")


def render_nginx(app: Rex, *, listen: str = "80", server_name: str = "_",
                 upstreams: tuple[str, ...] = ("127.0.0.1:8080",),
                 certificate: str | None = None, certificate_key: str | None = None,
                 auth_url: str | None = None,
                 auth_user_header: str = "X-Auth-Request-User") -> str:
    """The configuration (an ``upstream`` and a ``server`` block) for nginx
    in front of `app`, served by `upstreams` (``HOST:PORT``, round robin);
    what rex.attach's settings ask of nginx, if `app` has them.

    With `certificate` and `certificate_key`, nginx speaks HTTPS.  With
    `auth_url`, every request is first authenticated by that service
    (nginx ``auth_request``), which names the user in `auth_user_header`;
    nginx passes the name on in the header of `remote_user_header`.
    Raises `Failure` for a value nginx could misread or a missing setting.
    """
    settings = app.settings
    max_size = getattr(settings, "attach_max_size", None)  # None without rex.attach
    accel = getattr(settings, "attach_serve", None) == "accel"
    if not upstreams:
        raise Failure("Expected at least one --upstream HOST:PORT.")
    for option, value, pattern in [("--listen", listen, LISTEN),
                                   *(("--upstream", upstream, HOST_PORT) for upstream in upstreams),
                                   ("--server-name", server_name, WORD)]:
        if not pattern.fullmatch(value):
            raise Failure(f"Invalid value for '{option}': {value!r}.")
    if (certificate is None) != (certificate_key is None):
        raise Failure("Expected --certificate and --certificate-key together, or neither.")
    if auth_url is not None:
        if not re.fullmatch(r"https?://\S+", auth_url):
            raise Failure(f"Invalid value for '--auth-url': {auth_url!r} is not an HTTP URL.")
        if settings.remote_user_header is None:
            raise Failure("--auth-url needs the setting remote_user_header: the header in "
                          "which nginx names the user for the application.")
        if not re.fullmatch(r"[A-Za-z0-9-]+", auth_user_header):
            raise Failure(f"Invalid value for '--auth-user-header': {auth_user_header!r}.")
    values = {"package": app.requirements[0], "upstream_name": UPSTREAM_NAME,
              "upstreams": upstreams, "listen": listen, "server_name": server_name,
              "certificate": certificate, "certificate_key": certificate_key,
              "max_size": max_size,
              "body_size": None if max_size is None else max_size + FORM_ROOM,
              "remote_user_header": settings.remote_user_header,
              "auth_url": auth_url, "auth_location": AUTH_LOCATION,
              "auth_user_variable": auth_user_header.lower().replace("-", "_"),
              "accel_location": settings.attach_accel_location if accel else None,
              "attach_dir": settings.attach_dir if accel else None}
    for name, value in values.items():
        if isinstance(value, str) and not WORD.fullmatch(value):
            raise Failure(f"Cannot write {value!r} ({name}) in an nginx configuration: "
                          "it holds a space or a character that nginx reads as syntax.")
    return _template().render(**values)


def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.dirname(__file__)), autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    return environment.get_template("nginx.conf.j2")


@click.command()
@application_command
@click.option("--listen", default="80", show_default=True, metavar="[ADDRESS:]PORT",
              help="Where nginx listens.")
@click.option("--server-name", default="_", show_default=True,
              help="The host name of the site (nginx server_name).")
@click.option("--upstream", "upstreams", multiple=True, default=("127.0.0.1:8080",),
              show_default=True, metavar="HOST:PORT",
              help="Where rex serve runs the application; repeat for several hosts (round robin).")
@click.option("--certificate", metavar="FILE", help="The TLS certificate chain: HTTPS.")
@click.option("--certificate-key", metavar="FILE", help="The TLS certificate's private key.")
@click.option("--auth-url", metavar="URL",
              help="A service that authenticates every request (nginx auth_request).")
@click.option("--auth-user-header", default="X-Auth-Request-User", show_default=True,
              metavar="NAME", help="The header in which that service names the user.")
def nginx(app: Rex, **options: Any) -> None:
    """Print the nginx configuration for the application of PACKAGE, made from its
    settings (docs/production.rst explains it)."""
    click.echo(render_nginx(app, **options), nl=False)
