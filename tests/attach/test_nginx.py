"""nginx in front of the application, configured by `rex nginx` (the
configuration docs/production.rst shows), all on 127.0.0.1: the body size
limit, uploads streamed to the application, forwarded headers, and the user
named by an ``auth_request`` service."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import HOST, START_TIMEOUT, serve
from nginx import Nginx, rex_nginx, start_nginx
from test_gcs import http_server

from rex.attach.nginx import FORM_ROOM
from rex.core.cli import main

pytestmark = pytest.mark.nginx

MIB = 1 << 20
MAX_SIZE = 8 * MIB
PROBE = os.path.join(os.path.dirname(__file__), "..", "web", "pkgs")  # rexwebprobe
TOKENS = {"Bearer ann-token": "ann", "Bearer bob-token": "bob"}
FORGED = {"X-Remote-User": "admin", "X-Forwarded-For": "203.0.113.66",
          "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def write_settings(path: Path, **settings: object) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


def upstream(url: str) -> str:
    return url.removeprefix("http://")


# -- the configuration ---------------------------------------------------------------------

def render(tmp_path: Path, *args: str, **settings: object) -> tuple[int, str]:
    attach_dir = tmp_path / "attachments"
    attach_dir.mkdir(exist_ok=True)
    settings = {"attach_dir": str(attach_dir), "db": f"sqlite:///{tmp_path}/demo.sqlite",
                **settings}
    result = CliRunner().invoke(main, ["nginx", "rex.attach_demo", *args,
                                       *(f"{name}={value}" for name, value in settings.items())])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_the_body_size_limit_is_attach_max_size_and_room_for_the_form(tmp_path: Path) -> None:
    status, config = render(tmp_path, attach_max_size=1000)
    assert status == 0
    assert f"client_max_body_size {1000 + FORM_ROOM};" in config
    assert "client_max_body_size 0;" in render(tmp_path)[1]


def test_accel_adds_the_internal_location_on_attach_dir(tmp_path: Path) -> None:
    status, config = render(tmp_path, attach_serve="accel", trusted_proxies="127.0.0.1")
    assert status == 0
    assert (f"location /_attach/ {{\n        internal;\n        alias {tmp_path}/attachments/;"
            in config)
    assert "internal;" not in render(tmp_path)[1]


@pytest.mark.parametrize("args, settings, message", [
    (["--upstream", "app1;evil"], {}, "Invalid value for '--upstream': 'app1;evil'."),
    (["--listen", "80 default_server"], {}, "Invalid value for '--listen'"),
    (["--certificate", "/etc/ssl/a.pem"], {}, "--certificate and --certificate-key together"),
    (["--auth-url", "http://127.0.0.1:9/auth"], {}, "--auth-url needs the setting "
                                                    "remote_user_header"),
    (["--auth-url", "ftp://x"], {"remote_user_header": "X-Remote-User"}, "not an HTTP URL"),
])
def test_values_nginx_could_misread_are_refused(tmp_path: Path, args: list[str], settings: dict,
                                                message: str) -> None:
    status, output = render(tmp_path, *args, **settings)
    assert status == 2
    assert message in output


def test_a_path_nginx_would_read_as_syntax_is_refused(tmp_path: Path) -> None:
    odd = tmp_path / "files; deny all"
    odd.mkdir()
    status, output = render(tmp_path, attach_dir=str(odd), attach_serve="accel",
                            trusted_proxies="127.0.0.1")
    assert status == 2
    assert "Cannot write" in output and "(attach_dir) in an nginx configuration" in output


# -- uploads through nginx -----------------------------------------------------------------

@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[tuple[Nginx, str, Path]]:
    """The demo behind nginx, attachments of at most `MAX_SIZE` bytes:
    nginx, the application's URL and its attachment directory."""
    attach_dir = tmp_path / "attachments"
    attach_dir.mkdir()
    settings = write_settings(tmp_path / "settings.yaml", attach_dir=str(attach_dir),
                              attach_max_size=MAX_SIZE, db=f"sqlite:///{tmp_path}/demo.sqlite")
    with serve(tmp_path, "--settings", str(settings)) as app, start_nginx(
            tmp_path / "nginx", rex_nginx("rex.attach_demo", "--settings", str(settings),
                                          "--upstream", upstream(app))) as nginx:
        yield nginx, app, attach_dir


def multipart(code: str, size: int) -> tuple[bytes, bytes, str]:
    """The head and the tail of the demo's upload form around a file of
    `size` bytes, and its Content-Type."""
    boundary = "b0undary"
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n" for name, value in (("code", code), ("title", code)))
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; '
             'filename="scan.bin"\r\nContent-Type: application/octet-stream\r\n\r\n')
    tail = f"\r\n--{boundary}--\r\n"
    return head.encode(), tail.encode(), f"multipart/form-data; boundary={boundary}"


def post_upload(nginx: Nginx, code: str, size: int) -> requests.Response:
    head, tail, content_type = multipart(code, size)
    return requests.post(nginx.url + "/upload", data=head + b"x" * size + tail,
                         headers={"Content-Type": content_type}, allow_redirects=False,
                         timeout=60)


def test_an_upload_of_attach_max_size_passes_and_a_larger_body_is_413(demo_site) -> None:
    nginx, app, _ = demo_site
    assert post_upload(nginx, "exact", MAX_SIZE).status_code == 303
    over = post_upload(nginx, "over", MAX_SIZE + 1)  # nginx lets it through: the app says no
    assert over.status_code == 413 and "at most 8388608 bytes" in over.text
    huge = post_upload(nginx, "huge", MAX_SIZE + FORM_ROOM)  # nginx says no, by Content-Length
    assert huge.status_code == 413 and "<center>nginx</center>" in huge.text
    posts = lambda: [line for line in nginx.access_log() if '"POST /upload ' in line]  # noqa: E731
    wait_for(lambda: len(posts()) == 3, "nginx to log the three uploads")
    assert posts()[1].endswith(" 413 upstream=" + upstream(app))  # the application's 413
    assert posts()[2].endswith(" 413 upstream=-")  # from no upstream: nginx refused it


def spooled(attach_dir: Path) -> int:
    """The bytes of the uploads the application is receiving now."""
    return sum(path.stat().st_size for path in (attach_dir / ".tmp").glob("writer-*/tmp*"))


def answer_head(sock: socket.socket) -> bytes:
    """The status line and headers of the answer on `sock`."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"the connection closed after {head!r}"
        head += chunk
    return head.partition(b"\r\n\r\n")[0]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        time.sleep(0.02)


def test_uploads_stream_to_the_application_as_they_arrive(demo_site) -> None:
    """proxy_request_buffering off: the application has the first bytes of
    an upload while the client still holds the rest (nginx does not spool
    the body to its disk first)."""
    nginx, _, attach_dir = demo_site
    size = 6 * MIB
    head, tail, content_type = multipart("streamed", size)
    with socket.create_connection((HOST, nginx.port), timeout=60) as sock:
        sock.sendall((f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n").encode() + head)
        sock.sendall(b"x" * (3 * MIB))
        wait_for(lambda: spooled(attach_dir) >= 2 * MIB, "the first bytes at the application")
        assert not list((nginx.directory / "client_body").rglob("*[0-9]"))  # not on nginx's disk
        sock.sendall(b"x" * (size - 3 * MIB) + tail)
        assert answer_head(sock).startswith(b"HTTP/1.1 303 ")


# -- who sent a request, over what, for whom -----------------------------------------------

class AuthService(BaseHTTPRequestHandler):
    """The authenticating service of nginx's auth_request: a known bearer
    token names its user, no credentials are anonymous (the application
    decides what they may see), anything else is refused with a challenge."""

    seen: list[str] = []

    def do_GET(self) -> None:
        AuthService.seen.append(self.headers.get("X-Original-URI", ""))
        credentials = self.headers.get("Authorization")
        if credentials is None:
            self.send_response(200)
        elif credentials in TOKENS:
            self.send_response(200)
            self.send_header("X-Auth-Request-User", TOKENS[credentials])
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="rex", error="invalid_token"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def auth_url() -> Iterator[str]:
    with http_server(AuthService) as url:
        yield url + "/auth"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def probe_settings(path: Path, **settings: object) -> Path:
    return write_settings(path, access={"rexwebprobe": "authenticated"},
                          remote_user_header="X-Remote-User", **settings)


@pytest.fixture
def auth_site(tmp_path: Path, auth_url: str, monkeypatch) -> Iterator[tuple[Nginx, str]]:
    """rexwebprobe behind nginx over HTTPS, its users named by `AuthService`;
    yields nginx and the CA file to verify it with."""
    monkeypatch.setenv("PYTHONPATH", PROBE)
    settings = probe_settings(tmp_path / "settings.yaml", trusted_proxies=[HOST])
    cert, key = self_signed(tmp_path)
    with serve(tmp_path, "--settings", str(settings), package="rexwebprobe") as app:
        site = rex_nginx("rexwebprobe", "--settings", str(settings), "--upstream", upstream(app),
                         "--auth-url", auth_url, "--certificate", str(cert),
                         "--certificate-key", str(key))
        with start_nginx(tmp_path / "nginx", site, scheme="https", verify=str(cert)) as nginx:
            yield nginx, str(cert)


def test_the_proxy_says_who_sent_the_request_over_what(auth_site) -> None:
    nginx, ca = auth_site
    view = requests.get(nginx.url + "/whoami", headers=FORGED, verify=ca, timeout=30).json()
    assert view["proxied"] and view["scheme"] == "https"
    assert view["remote_addr"] == HOST and view["host"] == HOST  # nginx replaced what was forged
    assert view["remote_user"] is None
    assert "X-Remote-User" not in view["forwarded"]


def test_the_auth_service_names_the_user_and_a_forged_name_is_dropped(auth_site) -> None:
    nginx, ca = auth_site
    headers = {**FORGED, "Authorization": "Bearer ann-token"}
    response = requests.get(nginx.url + "/private", headers=headers, verify=ca, timeout=30)
    assert response.status_code == 200
    assert response.json()["remote_user"] == "ann"
    assert AuthService.seen[-1] == "/private"


def test_anonymous_requests_get_the_challenge_of_the_application(auth_site) -> None:
    nginx, ca = auth_site
    response = requests.get(nginx.url + "/private", headers=FORGED, verify=ca, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="rex"'


def test_bad_credentials_never_reach_the_application(auth_site) -> None:
    nginx, ca = auth_site
    response = requests.get(nginx.url + "/whoami", headers={"Authorization": "Bearer forged"},
                            verify=ca, timeout=30)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    wait_for(lambda: "/whoami" in "".join(nginx.access_log()), "nginx to log the request")
    assert nginx.access_log()[-1].startswith(f'{HOST} "GET /whoami ')
    assert nginx.access_log()[-1].endswith(" 401 upstream=-")  # no upstream but the auth service's


def test_a_refusal_comes_before_the_body_is_sent(auth_site) -> None:
    """With uploads streamed, the application refuses a large anonymous
    POST at its headers; the client need not send a byte of the body."""
    nginx, ca = auth_site
    context = ssl.create_default_context(cafile=ca)
    with socket.create_connection((HOST, nginx.port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=HOST) as sock:
        sock.sendall(f"POST /private HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {1 << 30}\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n".encode())
        answer = answer_head(sock)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b'WWW-Authenticate: Bearer realm="rex"' in answer


def test_forged_headers_sent_straight_to_the_application_are_dropped(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """An application that trusts no proxy at the client's address.  (Every
    client of these tests shares 127.0.0.1 with nginx: to the application
    behind it, one that connects straight from there is nginx.)"""
    monkeypatch.setenv("PYTHONPATH", PROBE)
    settings = probe_settings(tmp_path / "settings.yaml")
    with serve(tmp_path, "--settings", str(settings), package="rexwebprobe") as app:
        view = requests.get(app + "/whoami", headers=FORGED, timeout=30).json()
        assert view == {"remote_addr": HOST, "remote_user": None, "scheme": "http",
                        "host": app.removeprefix("http://"), "proxied": False, "forwarded": {}}
        assert requests.get(app + "/private", headers=FORGED, timeout=30).status_code == 401
