"""Reference server: an upload the textbook WebOb way, ``req.POST``.

``POST /anything`` with a multipart/form-data body: ``req.POST`` parses the
whole body (``cgi.FieldStorage`` spooling the file to a temporary file), then
each file field is copied to a new file in ``$BENCH_DIR`` and fsynced.
Answers ``200`` with the stored file names.  The project's ``/upload`` must be
several times faster than this.

Run: ``BENCH_DIR=/some/dir gunicorn --chdir bench/refs webob_post:app``
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable

from webob import Request, Response

ROOT = os.environ["BENCH_DIR"]
CHUNK_SIZE = 1 << 20


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    req = Request(environ)
    stored = []
    for value in req.POST.values():
        if hasattr(value, "file"):
            with tempfile.NamedTemporaryFile(dir=ROOT, prefix="upload-", delete=False) as out:
                shutil.copyfileobj(value.file, out, CHUNK_SIZE)
                out.flush()
                os.fsync(out.fileno())
            stored.append(os.path.basename(out.name))
    return Response("\n".join(stored) + "\n", content_type="text/plain")(environ, start_response)
