"""Health checks: quick checks of what an application needs to serve (its
database, its storage), which packages declare and a server runs on demand.

`Health` runs them for one application, each in a thread of its own with a
deadline, and keeps the result for a few seconds, so that however often a
load balancer asks, the database and the store are asked at most once per
`TTL` per process, and a check that hangs costs one thread, not one per
question.  Why a check failed goes to the log (logger ``rex.health``), never
to the answer.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from .application import Rex
from .error import mask_passwords
from .extension import Extension

log = logging.getLogger("rex.health")

TTL = 5.0  # seconds a result is reused
CHECK_TIMEOUT = 3.0  # seconds a check may take before it counts as failing

OK, FAILING = "ok", "failing"


class HealthCheck(Extension):
    """A quick check of one component of the application; `name` names it
    in the answer ("database", "storage").  Raise to report it failing."""

    name: str

    def __call__(self) -> None:
        raise NotImplementedError


class Health:
    """The health of `app` in this process: ``status()`` maps each check's
    name to ``"ok"`` or ``"failing"``."""

    def __init__(self, app: Rex, ttl: float = TTL, timeout: float = CHECK_TIMEOUT) -> None:
        self.app = app
        self.ttl = ttl
        self.timeout = timeout
        self._lock = threading.Lock()
        self._result: dict[str, str] = {}
        self._checked = -float("inf")  # time.monotonic() of the last check
        self._running: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(thread_name_prefix="rex-health")

    def status(self) -> dict[str, str]:
        """The result of the last check if younger than `ttl`, else of a new one."""
        with self._lock:
            if time.monotonic() - self._checked >= self.ttl:
                self._result = self._check()
                self._checked = time.monotonic()
            return dict(self._result)

    def _check(self) -> dict[str, str]:
        with self.app:
            checks = [check() for check in HealthCheck.all()]
        for check in checks:
            running = self._running.get(check.name)
            if running is None or running.done():  # a hung check is not started again
                self._running[check.name] = self._pool.submit(self._run, check)
        futures = {check.name: self._running[check.name] for check in checks}
        wait(futures.values(), timeout=self.timeout)
        result = {}
        for name, future in futures.items():
            if not future.done():
                log.warning("Health check of the %s: no answer within %g s", name, self.timeout)
            elif future.exception() is not None:
                reason = str(future.exception()).replace("\n", " ")
                log.warning("Health check of the %s failed: %s", name, mask_passwords(reason))
            result[name] = OK if future.done() and future.exception() is None else FAILING
        return result

    def _run(self, check: HealthCheck) -> None:
        with self.app:
            check()
