"""``/healthz`` of a real `rex serve`: open to anybody, 200 or 503 with a
small JSON body, the reason of a failure in the error log only."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from helpers import serve

TIMEOUT = 30


def wait_for_health(url: str, status: int) -> requests.Response:
    """The first answer of /healthz with `status` (results are kept a few
    seconds, so a change shows after a while); there must be one within TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        response = requests.get(url + "/healthz", timeout=TIMEOUT)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_healthz_checks_the_database_and_the_storage(tmp_path: Path) -> None:
    attach_dir = tmp_path / "attachments"
    with serve(tmp_path) as url:
        # /attach is closed to anonymous clients; /healthz is not.
        assert requests.get(url + "/attach/x", timeout=TIMEOUT).status_code == 401
        response = requests.get(url + "/healthz", timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}
        assert requests.head(url + "/healthz", timeout=TIMEOUT).status_code == 200
        response = requests.post(url + "/healthz", timeout=TIMEOUT)
        assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"

        attach_dir.rename(tmp_path / "moved")
        response = wait_for_health(url, 503)
        assert response.status_code == 503
        assert response.json() == {"status": "failing",
                                   "checks": {"database": "ok", "storage": "failing"}}
        log = (tmp_path / f"rex-serve-{url.rsplit(':', 1)[1]}.log").read_text()
        assert ("Health check of the storage failed: Attachment storage must be an existing "
                f"directory:     {attach_dir}") in log
        assert str(attach_dir) not in response.text

        (tmp_path / "moved").rename(attach_dir)
        assert wait_for_health(url, 200).status_code == 200
