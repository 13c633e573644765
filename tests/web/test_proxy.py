"""What a trusted proxy says of a request, and what is removed from anyone
else.  The peers here are addresses of the documentation ranges (RFC 5737)
in a WSGI environ: no traffic goes anywhere; tests/web/test_nginx.py sends
real requests through nginx on 127.0.0.1."""

from __future__ import annotations

import os
import sys

import pytest
from webob import Request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pkgs"))

from rex.core import Error, Rex  # noqa: E402

PROXY = "192.0.2.10"  # the trusted proxy
CLIENT = "198.51.100.7"  # a client on the internet
FORGED = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https",
          "X-Forwarded-Host": "evil.example", "X-Remote-User": "admin"}


def app(**settings) -> Rex:
    return Rex("rexwebprobe", **{"access": {"rexwebprobe": "authenticated"}, **settings})


def seen(app: Rex, peer: str, path: str = "/whoami", **headers: str) -> dict:
    response = Request.blank(path, remote_addr=peer, headers=headers).get_response(app)
    assert response.status_int == 200, response.text
    return response.json


def test_no_proxy_is_trusted_by_default() -> None:
    view = seen(app(remote_user_header="X-Remote-User"), PROXY, **FORGED)
    assert view["remote_addr"] == PROXY
    assert view["scheme"] == "http" and view["host"] == "localhost:80"
    assert view["remote_user"] is None and not view["proxied"]
    assert view["forwarded"] == {}  # removed, so that nothing downstream believes them


def test_a_trusted_proxy_says_who_sent_the_request_over_what() -> None:
    view = seen(app(trusted_proxies=PROXY, remote_user_header="X-Remote-User"), PROXY, **FORGED)
    assert view["remote_addr"] == "203.0.113.66"
    assert view["scheme"] == "https" and view["host"] == "evil.example"
    assert view["remote_user"] == "admin" and view["proxied"]


def test_the_same_headers_from_anybody_else_are_removed() -> None:
    trusting = app(trusted_proxies=[PROXY, "10.0.0.0/8"], remote_user_header="X-Remote-User")
    view = seen(trusting, CLIENT, **FORGED)
    assert view["remote_addr"] == CLIENT and view["scheme"] == "http"
    assert view["remote_user"] is None and view["forwarded"] == {}
    # The server's own REMOTE_USER does not count either: the header names the user.
    request = Request.blank("/private", remote_addr=CLIENT, environ={"REMOTE_USER": "ann"})
    assert request.get_response(trusting).status_int == 401


def test_without_remote_user_header_the_server_names_the_user() -> None:
    request = Request.blank("/private", remote_addr=CLIENT, environ={"REMOTE_USER": "ann"},
                            headers={"X-Remote-User": "admin"})
    response = request.get_response(app(trusted_proxies=CLIENT))
    assert response.json["remote_user"] == "ann"


@pytest.mark.parametrize("forwarded_for, client", [
    ("", PROXY),  # the proxy's own request
    (CLIENT, CLIENT),
    (f"203.0.113.66, {CLIENT}", CLIENT),  # what the client claimed is left of its address
    (f"{CLIENT}, 10.1.2.3", CLIENT),  # through a second trusted proxy
    ("10.9.9.9, 10.1.2.3", "10.9.9.9"),  # all trusted: the farthest
    (f"{CLIENT}, junk, 10.1.2.3", "10.1.2.3"),  # nothing left of a bad entry is believed
    (f"::ffff:{CLIENT}", CLIENT),
    ("2001:db8::1", "2001:db8::1"),
])
def test_the_client_is_the_nearest_untrusted_hop(forwarded_for: str, client: str) -> None:
    trusting = app(trusted_proxies=f"{PROXY}, 10.0.0.0/8")
    assert seen(trusting, PROXY, **{"X-Forwarded-For": forwarded_for})["remote_addr"] == client


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-Proto": "gopher"}, {"X-Forwarded-Proto": "https, http"},
    {"X-Forwarded-Host": "a b"}, {"X-Forwarded-Host": "x" * 300},
])
def test_malformed_forwarded_headers_change_nothing(headers: dict) -> None:
    view = seen(app(trusted_proxies=PROXY), PROXY, **headers)
    assert view["scheme"] == "http" and view["host"] == "localhost:80"


def test_a_missing_user_header_from_the_proxy_is_anonymous() -> None:
    trusting = app(trusted_proxies=PROXY, remote_user_header="X-Remote-User")
    request = Request.blank("/private", remote_addr=PROXY, environ={"REMOTE_USER": "ann"})
    response = request.get_response(trusting)
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rex"'


def test_the_user_name_is_utf_8() -> None:
    trusting = app(trusted_proxies=PROXY, remote_user_header="X-Remote-User")
    wire = "José Núñez".encode().decode("latin-1")  # as WSGI holds a header's bytes
    request = Request.blank("/private", remote_addr=PROXY, environ={"HTTP_X_REMOTE_USER": wire})
    assert request.get_response(trusting).json["remote_user"] == "José Núñez"


@pytest.mark.parametrize("user", ["ann,bob", "a\x01b", "x" * 257, "\xe9t\xe9"])
def test_a_malformed_user_name_is_400(user: str) -> None:
    trusting = app(trusted_proxies=PROXY, remote_user_header="X-Remote-User")
    request = Request.blank("/private", remote_addr=PROXY, environ={"HTTP_X_REMOTE_USER": user})
    response = request.get_response(trusting)
    assert response.status_int == 400
    assert ("Expected one user name, in UTF-8, in the X-Remote-User header of the proxy, got:"
            in response.text)


@pytest.mark.parametrize("value", ["localhost", "10.0.0.0/33", "[1, 2]x", "{}", "[10.0.0.1"])
def test_trusted_proxies_must_be_addresses_or_networks(value: str) -> None:
    with pytest.raises(Error) as caught:
        app(trusted_proxies=value)
    assert "While validating setting:\n    trusted_proxies" in str(caught.value)


def test_trusted_proxies_are_kept_as_networks() -> None:
    for value in ("127.0.0.1 10.1.2.3/8,::1", "[127.0.0.1, 10.1.2.3/8, '::1']"):
        with app(trusted_proxies=value) as built:
            assert built.settings.trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
