"""The logs of `rex serve`: an access line per request without the secrets
of its query, the causes of 5xx answers in the error log, text or JSON."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from helpers import serve

from rex.web.logs import RedactQueries, access_fields, access_line, redact_query, request_target

TIMEOUT = 30
PKGS = os.path.join(os.path.dirname(__file__), "pkgs")
SECRETS = ["Sig-1", "AmzSig-2", "GoogSig-3", "Sig-4", "Policy-5", "Secret-6", "Pass-7", "Tok-8"]
QUERY = ("signature=Sig-1&X-Amz-Signature=AmzSig-2&X-Goog-Signature=GoogSig-3&Signature=Sig-4"
         "&policy=Policy-5&client_secret=Secret-6&db_password=Pass-7&X-Amz-Security-Token=Tok-8"
         "&expires=1700000000&name=a%20b")


def test_secret_parameters_are_redacted_and_the_rest_kept() -> None:
    redacted = redact_query(QUERY)
    assert not any(secret in redacted for secret in SECRETS)
    assert redacted == (
        "signature=REDACTED&X-Amz-Signature=REDACTED&X-Goog-Signature=REDACTED"
        "&Signature=REDACTED&policy=REDACTED&client_secret=REDACTED&db_password=REDACTED"
        "&X-Amz-Security-Token=REDACTED&expires=1700000000&name=a%20b")
    # An encoded name is recognized; a name without a value is left alone.
    assert redact_query("%73ignature=x&flag&x=1") == "%73ignature=REDACTED&flag&x=1"


def test_the_error_log_redacts_the_queries_in_its_messages() -> None:
    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1,
                               "Error handling request %s %s", ("GET", "/a?" + QUERY), None)
    assert RedactQueries().filter(record)
    message = record.getMessage()
    assert message.startswith("Error handling request GET /a?signature=REDACTED&")
    assert not any(secret in message for secret in SECRETS)
    record = logging.LogRecord("rex", logging.INFO, __file__, 1, "Why? %s", ("Because.",), None)
    assert RedactQueries().filter(record) and record.getMessage() == "Why? Because."


def test_a_target_is_one_word_whatever_the_client_sent() -> None:
    environ = {"RAW_URI": "/a b\n\x7f\xe9?token=t&x=\n1", "QUERY_STRING": "token=t&x=\n1"}
    assert request_target(environ) == "/a%20b%0A%7F%E9?token=REDACTED&x=%0A1"


def test_the_access_line_names_request_user_status_size_and_duration() -> None:
    environ = {"REMOTE_ADDR": "127.0.0.1", "REMOTE_USER": "alice smith", "REQUEST_METHOD": "GET",
               "RAW_URI": "/attach/x.pdf?signature=s", "SERVER_PROTOCOL": "HTTP/1.1"}
    fields = access_fields("200 OK", 1234, environ, timedelta(milliseconds=12.5))
    assert fields == {"remote": "127.0.0.1", "user": "alice%20smith", "method": "GET",
                      "path": "/attach/x.pdf?signature=REDACTED", "protocol": "HTTP/1.1",
                      "status": 200, "bytes": 1234, "duration": 0.0125}
    assert access_line(fields) == (
        '127.0.0.1 alice%20smith "GET /attach/x.pdf?signature=REDACTED HTTP/1.1" 200 1234 0.013s')


def log_of(tmp_path: Path, url: str) -> str:
    return (tmp_path / f"rex-serve-{url.rsplit(':', 1)[1]}.log").read_text()


@pytest.fixture
def web_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test packages of rex.web, importable by a `rex serve`."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        PKGS, os.environ.get("PYTHONPATH")])))


def test_text_logs_have_each_request_and_the_cause_of_a_500(tmp_path: Path,
                                                            web_packages: None) -> None:
    with serve(tmp_path, "access={rexwebtest: anybody}", package="rexwebtest") as url:
        assert requests.get(f"{url}/hello?name=Ann&{QUERY}", timeout=TIMEOUT).status_code == 400
        assert requests.get(f"{url}/hello?name=Ann", timeout=TIMEOUT).status_code == 200
        assert requests.get(f"{url}/fail?kind=bug", timeout=TIMEOUT).status_code == 500
    text = log_of(tmp_path, url)  # once the server stopped: its access lines follow the answers
    assert not any(secret in text for secret in SECRETS)
    assert '127.0.0.1 - "GET /hello?name=Ann&signature=REDACTED&X-Amz-Signature=REDACTED' in text
    assert '"GET /hello?name=Ann HTTP/1.1" 200 ' in text
    assert '"GET /fail?kind=bug HTTP/1.1" 500 ' in text
    # The cause, from rex.web's handler, with its traceback.
    assert "[ERROR] GET /fail: unexpected RuntimeError" in text
    assert 'raise RuntimeError("a bug that knows the password hunter2")' in text


def test_json_logs_are_one_object_per_line(tmp_path: Path, web_packages: None) -> None:
    with serve(tmp_path, "access={rexwebtest: anybody}", "--log-format", "json",
               "--log-level", "warning", package="rexwebtest") as url:
        assert requests.get(f"{url}/hello?name=Ann&token=Tok-8", timeout=TIMEOUT).status_code == 400
        assert requests.get(f"{url}/fail?kind=bug", timeout=TIMEOUT).status_code == 500
    lines = [json.loads(line) for line in log_of(tmp_path, url).splitlines()]  # once stopped
    access = [line for line in lines if "status" in line]
    assert {key: access[-2][key] for key in ("method", "path", "status", "user", "remote")} == {
        "method": "GET", "path": "/hello?name=Ann&token=REDACTED", "status": 400, "user": None,
        "remote": "127.0.0.1"}
    assert access[-1]["status"] == 500 and access[-1]["bytes"] > 0
    assert all(isinstance(line["duration"], float) for line in access)
    errors = [line for line in lines if "status" not in line]
    # --log-level warning: no "Booting worker" (info), and the bug (error).
    assert errors and all(line["level"] in ("WARNING", "ERROR", "CRITICAL") for line in errors)
    bug = next(line for line in errors if line["message"] == "GET /fail: unexpected RuntimeError")
    assert bug["logger"] == "rex.web" and "Traceback" in bug["exc_info"]
