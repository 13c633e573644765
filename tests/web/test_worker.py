"""`rex serve`'s worker against slow and silent clients: a real server, raw
sockets.  Nothing here asserts a duration: a stalled connection is shown
cut by its end (and the server's log line), a long transfer by its answer,
idle connections by another client's answer."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import requests
from helpers import HOST, serve

from rex.web.serve import THREADS, WORKERS

TIMEOUT = 60  # seconds any single socket operation of a test may take
MiB = 1 << 20


def connect(url: str) -> socket.socket:
    return socket.create_connection((HOST, int(url.rsplit(":", 1)[1])), timeout=TIMEOUT)


def multipart_head(code: str, size: int) -> tuple[bytes, bytes, int]:
    """The request head and the form's head of an upload of `size` bytes to
    the demo, and the form's tail."""
    boundary = uuid.uuid4().hex
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n{code}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nSlow\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; "
            f"filename=\"slow.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(form) + size + len(tail)}\r\n\r\n").encode()
    return head + form, tail, size


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(MiB):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def wait_for_log(log: Path, text: str) -> None:
    """Returns once the server's log says `text` (it must within TIMEOUT)."""
    deadline = time.monotonic() + TIMEOUT
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log.read_text()}"
        time.sleep(0.05)


def server_log(tmp_path: Path, url: str) -> Path:
    return tmp_path / f"rex-serve-{url.rsplit(':', 1)[1]}.log"


def test_an_upload_that_stops_sending_is_cut_after_the_idle_timeout(tmp_path: Path) -> None:
    with serve(tmp_path, "--idle-timeout", "1") as url:
        head, _, _ = multipart_head("STALLED", 10 * MiB)
        with connect(url) as sock:
            sock.sendall(head + b"x" * 1000)  # then nothing more
            assert read_to_end(sock) == b""  # closed, without an answer
        wait_for_log(server_log(tmp_path, url), "no byte moved for 1 s while receiving")
        assert "STALLED" not in requests.get(url + "/", timeout=TIMEOUT).text


def test_a_download_that_stops_reading_is_cut_after_the_idle_timeout(tmp_path: Path) -> None:
    size = 64 * MiB  # far more than the socket buffers hold
    with serve(tmp_path, "--idle-timeout", "1") as url:
        fields = {"code": "BIG", "title": "Big"}
        files = {"attachment": ("big.bin", b"\0" * size)}
        assert requests.post(url + "/upload", data=fields, files=files, allow_redirects=False,
                             timeout=TIMEOUT).status_code == 303
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(TIMEOUT)
        with sock:
            sock.connect((HOST, int(url.rsplit(":", 1)[1])))
            sock.sendall(f"GET /download?code=BIG HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            wait_for_log(server_log(tmp_path, url), "no byte moved for 1 s while sending")
            received = read_to_end(sock)
        assert received.startswith(b"HTTP/1.1 200 OK") and 0 < len(received) < size


def test_a_slow_upload_that_keeps_sending_outlives_every_timeout(tmp_path: Path) -> None:
    """The worker timeout (under sync workers, the limit of a whole request)
    is 1 s: an upload that sends 1 KiB every 50 ms for some 3 s completes,
    each pause being far shorter than the idle timeout (10 s)."""
    with serve(tmp_path, "--timeout", "1", "--idle-timeout", "10") as url:
        head, tail, size = multipart_head("SLOW", 64 << 10)
        with connect(url) as sock:
            sock.sendall(head)
            for _ in range(size // 1024):
                sock.sendall(b"s" * 1024)
                time.sleep(0.05)  # the pace of a slow client
            sock.sendall(tail)
            answer = read_to_end(sock)
        assert answer.startswith(b"HTTP/1.1 303 "), answer[:200]
        download = requests.get(url + "/download?code=SLOW", timeout=TIMEOUT)
        assert download.content == b"s" * size


def test_idle_connections_do_not_stop_others_from_being_answered(tmp_path: Path) -> None:
    """More silent connections than the default's threads in all (each one
    a thread under gunicorn's worker for its first seconds), and as many
    kept alive after a request: another client is answered, and the idle
    ones are still open and served when they speak."""
    count = WORKERS * THREADS
    with serve(tmp_path) as url:
        silent = [connect(url) for _ in range(count)]
        kept = []
        try:
            for _ in range(count):
                sock = connect(url)
                kept.append(sock)
                sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            for sock in kept:
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
            assert requests.get(url + "/", timeout=TIMEOUT).status_code == 200
            for sock in (silent[0], silent[-1], kept[0], kept[-1]):
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        finally:
            for sock in silent + kept:
                sock.close()


def test_a_refusal_that_leaves_the_body_unread_says_it_closes(tmp_path: Path) -> None:
    """413 before the body is read: the connection cannot carry another
    request, and the answer says so (gunicorn would say keep-alive)."""
    (tmp_path / "attachments").mkdir()
    with serve(tmp_path, "attach_max_size=1000") as url:
        head, _, _ = multipart_head("big", 10 * MiB)
        with connect(url) as sock:
            sock.sendall(head.replace(b"Connection: close\r\n", b""))
            answer = read_to_end(sock)
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 413 Payload Too Large"
        assert b"\r\nConnection: close\r\n" in rest.partition(b"\r\n\r\n")[0] + b"\r\n"
        # A request without a body keeps its connection.
        ok = requests.get(f"{url}/", timeout=TIMEOUT)
        assert ok.status_code == 200 and ok.headers.get("Connection") != "close"
