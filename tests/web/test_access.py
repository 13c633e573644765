"""Refusals: 401 only with a challenge (RFC 9110, 15.5.2), else 403."""

from __future__ import annotations

import os
import sys

import pytest
from webob import Request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pkgs"))

from rex.core import Error, Rex  # noqa: E402


def private(environ: dict | None = None, **settings) -> object:
    app = Rex("rexwebtest", **settings)  # not in `access`: authenticated
    return Request.blank("/hello?name=a", environ=environ or {}).get_response(app)


def test_a_401_carries_the_challenge_of_auth_challenge() -> None:
    response = private()
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rex"'
    basic = private(auth_challenge='Basic realm="Study files", charset="UTF-8"')
    assert basic.headers["WWW-Authenticate"] == 'Basic realm="Study files", charset="UTF-8"'


def test_without_a_challenge_anonymous_requests_get_403() -> None:
    response = private(auth_challenge=None)
    assert response.status_int == 403
    assert "WWW-Authenticate" not in response.headers


def test_a_user_without_the_permission_gets_403() -> None:
    response = private({"REMOTE_USER": "ann"}, access={"rexwebtest": "nobody"})
    assert response.status_int == 403
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("value", ["", "Bearer\r\nSet-Cookie: a=b", 'Bearer realm="\u00e9"'])
def test_a_challenge_is_one_header_value_of_a_scheme(value: str) -> None:
    with pytest.raises(Error) as caught:
        Rex("rexwebtest", auth_challenge=value)
    assert "While validating setting:\n    auth_challenge" in str(caught.value)
