"""Health checks: run on demand, each with a deadline, the result kept for
a while, the reasons in the log and not in the result."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest

from rex.core import Error, Rex
from rex.core.health import Health

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pkgs"))

import rexhealthtest  # noqa: E402


@pytest.fixture
def app() -> Iterator[Rex]:
    yield Rex("rexhealthtest")
    rexhealthtest.STATE.update(pipes=None, valves=None)
    rexhealthtest.RELEASE.set()


def test_every_check_of_the_application_runs(app: Rex) -> None:
    assert Health(app, ttl=0).status() == {"pipes": "ok", "valves": "ok"}


def test_a_failing_check_is_failing_and_its_reason_is_logged(
        app: Rex, caplog: pytest.LogCaptureFixture) -> None:
    rexhealthtest.STATE["pipes"] = Error("Cannot reach:", "postgresql://rex:hunter2@db/rex")
    with caplog.at_level(logging.WARNING, logger="rex.health"):
        assert Health(app, ttl=0).status() == {"pipes": "failing", "valves": "ok"}
    assert "Health check of the pipes failed: Cannot reach:" in caplog.text
    assert "postgresql://rex:***@db/rex" in caplog.text and "hunter2" not in caplog.text


def test_a_result_is_kept_for_the_ttl(app: Rex) -> None:
    health = Health(app, ttl=3600)
    assert health.status()["pipes"] == "ok"
    runs = dict(rexhealthtest.RUNS)
    rexhealthtest.STATE["pipes"] = RuntimeError("broken")
    assert health.status()["pipes"] == "ok"  # kept
    assert rexhealthtest.RUNS == runs
    health.ttl = 0
    assert health.status()["pipes"] == "failing"


def test_a_hung_check_is_failing_and_not_started_again(
        app: Rex, caplog: pytest.LogCaptureFixture) -> None:
    rexhealthtest.RELEASE.clear()
    health = Health(app, ttl=0, timeout=0.2)
    runs = rexhealthtest.RUNS["valves"]
    with caplog.at_level(logging.WARNING, logger="rex.health"):
        assert health.status() == {"pipes": "ok", "valves": "failing"}
        assert health.status() == {"pipes": "ok", "valves": "failing"}
    assert rexhealthtest.RUNS["valves"] == runs + 1  # the first run still holds its thread
    assert "Health check of the valves: no answer within 0.2 s" in caplog.text
    rexhealthtest.RELEASE.set()
    health.timeout = 30
    health.status()  # waits for the hung run, which now ends well
    assert health.status() == {"pipes": "ok", "valves": "ok"}
