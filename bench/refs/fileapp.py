"""Reference server: the files under ``$BENCH_DIR`` served by WebOb's
`FileApp`, the plain way to serve a static file from a WSGI application.

``GET /a/b.bin`` answers ``$BENCH_DIR/a/b.bin``.  `FileApp` hands the open
file to the server's ``wsgi.file_wrapper``, so gunicorn sends it with
``sendfile``: the ceiling that ``/attach/...`` is measured against.

Run: ``BENCH_DIR=/some/dir gunicorn --chdir bench/refs fileapp:app``
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from webob.exc import HTTPNotFound
from webob.static import FileApp

ROOT = os.path.realpath(os.environ["BENCH_DIR"])


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = os.path.realpath(os.path.join(ROOT, environ.get("PATH_INFO", "").lstrip("/")))
    if not path.startswith(ROOT + os.sep) or not os.path.isfile(path):
        return HTTPNotFound()(environ, start_response)
    return FileApp(path)(environ, start_response)
