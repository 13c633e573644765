"""Requests that come through a reverse proxy: who sent them, over what.

Behind nginx, every request reaches the application from the proxy's
address; the proxy says in headers whom it came from (``X-Forwarded-For``),
over which scheme (``X-Forwarded-Proto``), for which host
(``X-Forwarded-Host``) and, when it authenticates users itself, for which
user (the header that `remote_user_header` names).  Anybody can send those
headers, so they are believed only from the addresses of `trusted_proxies`;
from any other peer they are removed before the application sees them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from rex.core import Error, MaybeVal, SeqVal, Setting, StrVal, Validate, cached, get_settings
from rex.core.validate import shown

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
PROXY = "rex.web.proxy"  # the environ key that holds a trusted proxy's address
HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
# A user name as a proxy may send it: printable, no comma (two headers joined).
USER = re.compile(r"[^\x00-\x1f\x7f,]{1,256}")


class NetworksVal(Validate):
    """A list of IP addresses and CIDR networks (``10.0.0.0/8``), as a YAML
    list (also in a string) or a string of them separated by commas or
    spaces; each becomes a network (``127.0.0.1`` is ``127.0.0.1/32``)."""

    def __call__(self, value: Any) -> list[str]:
        if isinstance(value, str) and value.lstrip().startswith("["):
            value = SeqVal()(value)
        if isinstance(value, str):
            value = [item for item in re.split(r"[\s,]+", value) if item]
        if not isinstance(value, (list, tuple)):
            raise self._fail("Expected a list of IP addresses or networks", value)
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(str(item), strict=False)))
            except ValueError:
                raise self._fail("Expected an IP address or network (CIDR), as in "
                                 "127.0.0.1 or 10.0.0.0/8", item) from None
        return networks


class TrustedProxiesSetting(Setting):
    """The addresses (and CIDR networks) of the reverse proxies whose
    ``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and
    `remote_user_header` the application believes; from any other peer these
    headers are removed.  Empty: no proxy is trusted."""

    name = "trusted_proxies"
    validate = NetworksVal()
    default: list[str] = []


class RemoteUserHeaderSetting(Setting):
    """The request header in which a trusted authenticating proxy (nginx
    ``auth_request``, oauth2-proxy) names the signed-in user, who becomes
    ``REMOTE_USER``; believed only from `trusted_proxies`.  Unset: the user
    is whom the WSGI server says (``REMOTE_USER``)."""

    name = "remote_user_header"
    validate = MaybeVal(StrVal(r"[A-Za-z0-9-]{1,64}"))
    default = None


@cached
def trusted_networks() -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item) for item in get_settings().trusted_proxies)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address | None) -> bool:
    return address is not None and any(address in network for network in trusted_networks())


def _header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def apply_proxy(environ: dict) -> None:
    """Makes the WSGI environ say what a trusted proxy says of the request
    (``REMOTE_ADDR``, ``wsgi.url_scheme``, ``HTTP_HOST``, ``REMOTE_USER``),
    or removes what an untrusted peer sent in the proxy's headers.  Changes
    `environ` in place, so that the server's access log sees it too."""
    user_header = get_settings().remote_user_header
    user_key = _header_key(user_header) if user_header else None
    peer = environ.get("REMOTE_ADDR", "")
    if not (trusted_networks() and _is_trusted(_address(peer))):
        for key in (*FORWARDED, user_key):
            environ.pop(key, None)
        if user_key:
            environ.pop("REMOTE_USER", None)
        return
    environ[PROXY] = peer
    environ["REMOTE_ADDR"] = _client(peer, environ.get("HTTP_X_FORWARDED_FOR", ""))
    scheme = environ.get("HTTP_X_FORWARDED_PROTO", "").strip().lower()
    if scheme in ("http", "https"):
        environ["wsgi.url_scheme"] = scheme
    host = environ.get("HTTP_X_FORWARDED_HOST", "").strip()
    if HOST.fullmatch(host):
        environ["HTTP_HOST"] = host
    if user_key:
        environ.pop("REMOTE_USER", None)
        user = _user(environ.pop(user_key, ""), user_header)
        if user is not None:
            environ["REMOTE_USER"] = user


def _user(value: str, header: str) -> str | None:
    """The user a trusted proxy names in a header (its bytes as latin-1, as
    WSGI holds them; UTF-8 on the wire), None for nobody; `Error` (400) for
    anything but one name."""
    value = value.strip()
    if not value:
        return None
    try:
        user = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        user = ""
    if not USER.fullmatch(user):
        raise Error(f"Expected one user name, in UTF-8, in the {header} header of the proxy, "
                    "got:", shown(value))
    return user


def _client(peer: str, forwarded_for: str) -> str:
    """The client's address: walking ``X-Forwarded-For`` from the right (the
    hop nearest to us) past the trusted proxies, the first address that is
    not one of them; the farthest trusted hop if all are, or if the next
    entry is not an address (nothing left of it can be believed)."""
    client = peer
    for entry in reversed(forwarded_for.split(",") if forwarded_for.strip() else []):
        address = _address(entry)
        if address is None:
            break
        client = str(address)
        if not _is_trusted(address):
            break
    return client


def is_proxied(environ: dict) -> bool:
    """Did the request come through a trusted proxy?"""
    return PROXY in environ
