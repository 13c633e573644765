"""Reference server: answers every request with an ``X-Accel-Redirect`` to
nginx's internal location of its path (``attach_serve: accel``'s), and does
nothing else: no access check, no lookup of the file.  Behind nginx, the
floor of what any download costs that the application allows first.

``GET /attach/a/b.bin`` answers ``X-Accel-Redirect: /_attach/a/b.bin``.

Run: ``gunicorn --chdir bench/refs accel_only:app``
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import quote


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "").removeprefix("/attach")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("X-Accel-Redirect", "/_attach" + quote(path))])
    return [b""]
