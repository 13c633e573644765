"""``GET /healthz``: whether this server can serve, for load balancers,
orchestrators and monitoring.

``/healthz`` is the name operators expect (Kubernetes' and Google's
convention: the trailing "z" keeps it clear of an application's own
``/health`` page).  It answers 200 when every `HealthCheck` of the
application passes and 503 when one fails, with a small JSON body::

    {"checks": {"database": "ok", "storage": "ok"}, "status": "ok"}

It is open to anybody, outside the application's access settings: a probe
has no identity, and the answer says only ok or failing per component (the
reasons are in the error log).  It is answered by ``rex serve`` in front of
the application, so it takes precedence over an application's own
``/healthz``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable

from webob import Request, Response
from webob.exc import HTTPMethodNotAllowed

from rex.core import Rex
from rex.core.health import FAILING, OK, Health

HEALTH_PATH = "/healthz"


class HealthApp:
    """WSGI: ``/healthz`` answered here, every other request by `app`."""

    def __init__(self, app: Rex) -> None:
        self.app = app
        self._health: Health | None = None  # made in the worker, after the fork
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return self.app(environ, start_response)
        return self.answer(Request(environ))(environ, start_response)

    def answer(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"})
        checks = self.health().status()
        status = OK if all(value == OK for value in checks.values()) else FAILING
        body = json.dumps({"status": status, "checks": checks}, sort_keys=True) + "\n"
        response = Response(body=body.encode(), status=200 if status == OK else 503,
                            content_type="application/json", charset=None)
        response.cache_control = "no-store"
        return response

    def health(self) -> Health:
        with self._lock:
            if self._health is None:
                self._health = Health(self.app)
            return self._health
