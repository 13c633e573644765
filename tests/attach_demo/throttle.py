"""A TCP proxy on 127.0.0.1 that forwards what clients send at a fixed rate:
a slow uplink for a browser, whose own network throttling does not slow
form posts.  It counts the bytes it forwards, so that a test can tell how
much of an upload the server had received when its answer came back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CHUNK = 16 << 10  # bytes forwarded at a time
# The proxy's receive buffer for clients: small, so that what a client has
# sent is close to what was forwarded (Linux doubles the value asked for).
RECEIVE_BUFFER = 64 << 10


@dataclass
class Connection:
    """One client connection through the proxy."""

    head: bytes = b""  # the first bytes the client sent (its request line)
    forwarded: int = 0  # bytes of the client's forwarded to the server
    answered_after: int | None = None  # `forwarded` when the server's first byte came back
    relayed: threading.Event = field(default_factory=threading.Event)  # the whole answer


class ThrottlingProxy:
    """``with ThrottlingProxy(port, rate) as proxy:`` listens on a free port
    of 127.0.0.1 (``proxy.url``) and relays every connection to the server
    on `port`: client to server at `rate` bytes per second, server to client
    at full speed; a half-close goes through as one, and so does a server
    that closes while the client still sends (the client is then reset, as
    a server would reset it).  ``proxy.connections`` lists them."""

    def __init__(self, port: int, rate: int) -> None:
        self.upstream = (HOST, port)
        self.rate = rate
        self.connections: list[Connection] = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.url = f"http://{HOST}:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False

    def __enter__(self) -> ThrottlingProxy:
        self._start(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        for sock in [self._listener, *self._sockets]:  # shutdown() wakes a blocked accept()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in list(self._threads):
            thread.join()

    def connection(self, head: bytes) -> Connection:
        """The last connection whose client's first bytes start with `head`."""
        found = [connection for connection in self.connections
                 if connection.head.startswith(head)]
        if not found:
            raise AssertionError(f"no connection sent {head!r}: "
                                 f"{[connection.head for connection in self.connections]}")
        return found[-1]

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            connection = Connection()
            self.connections.append(connection)
            self._start(self._up, client, server, connection)
            self._start(self._down, server, client, connection)

    def _up(self, client: socket.socket, server: socket.socket, connection: Connection) -> None:
        """Client to server, paced at `rate`: every byte leaves no earlier
        than its place in the stream allows."""
        start = time.monotonic()
        try:
            while chunk := client.recv(CHUNK):
                if len(connection.head) < 256:
                    connection.head += chunk[:256]
                due = start + (connection.forwarded + len(chunk)) / self.rate
                time.sleep(max(0.0, due - time.monotonic()))
                server.sendall(chunk)
                connection.forwarded += len(chunk)
            server.shutdown(socket.SHUT_WR)  # the client is done sending
        except OSError:
            # The server closed while the client was still sending: once the
            # answer is relayed, the client is reset (closing with its bytes
            # unread does it), as the server would have reset it.
            connection.relayed.wait()
            client.close()

    def _down(self, server: socket.socket, client: socket.socket, connection: Connection) -> None:
        """Server to client, at full speed."""
        try:
            while chunk := server.recv(CHUNK):
                if connection.answered_after is None:
                    connection.answered_after = connection.forwarded
                client.sendall(chunk)
            client.shutdown(socket.SHUT_WR)  # the answer is complete
        except OSError:
            pass
        finally:
            connection.relayed.set()
