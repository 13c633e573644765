"""A TCP proxy on 127.0.0.1 that forwards what clients send at a fixed rate:
a slow uplink for a browser, whose own network throttling does not slow
form posts.  It counts the bytes it forwards, so that a test can tell how
much of an upload the server had received when its answer came back."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CHUNK = 16 << 10  # bytes forwarded at a time
# The proxy's receive buffer for clients: small, so that what a client has
# sent is close to what was forwarded (Linux doubles the value asked for).
RECEIVE_BUFFER = 64 << 10
REQUEST_LINE = re.compile(rb"[A-Z]+ /")


@dataclass
class Exchange:
    """A request through the proxy, and when its answer came back."""

    head: bytes  # the first bytes of the request (its request line)
    sent: int = 0  # bytes of the request forwarded to the server
    answered_after: int | None = None  # `sent` when the answer's first byte came back


@dataclass
class Connection:
    """A client's connection through the proxy: its requests, one after
    the other (HTTP/1.1 keep-alive)."""

    exchanges: list[Exchange] = field(default_factory=list)
    forwarded: int = 0  # bytes of the client's forwarded to the server, in all
    relayed: threading.Event = field(default_factory=threading.Event)  # the server closed


class ThrottlingProxy:
    """``with ThrottlingProxy(port, rate) as proxy:`` listens on a free port
    of 127.0.0.1 (``proxy.url``) and relays every connection to the server
    on `port`: client to server at `rate` bytes per second, server to client
    at full speed; a half-close goes through as one, and so does a server
    that closes while the client still sends (the client is then reset, as
    a server would reset it).  ``proxy.connections`` lists them, and
    `exchange()` finds a request."""

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

    def exchange(self, head: bytes) -> tuple[Connection, Exchange]:
        """The last request that starts with `head`, and its connection."""
        found = [(connection, exchange) for connection in self.connections
                 for exchange in connection.exchanges if exchange.head.startswith(head)]
        if not found:
            raise AssertionError(f"no request starts with {head!r}")
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
        """Client to server, paced at `rate`: a chunk leaves no earlier than
        the one before it allows (and a connection that was idle gains no
        credit from it)."""
        due = time.monotonic()
        try:
            while chunk := client.recv(CHUNK):
                exchanges = connection.exchanges
                # A request begins when the client sends a request line after
                # the last request was answered (the body of a request that
                # was answered early goes on in the same exchange).
                if not exchanges or (exchanges[-1].answered_after is not None
                                     and REQUEST_LINE.match(chunk)):
                    exchanges.append(Exchange(chunk[:256]))
                due = max(due, time.monotonic())
                time.sleep(max(0.0, due - time.monotonic()))
                server.sendall(chunk)
                due += len(chunk) / self.rate
                connection.forwarded += len(chunk)
                exchanges[-1].sent += len(chunk)
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
                exchange = connection.exchanges[-1]
                if exchange.answered_after is None:
                    exchange.answered_after = exchange.sent
                client.sendall(chunk)
            client.shutdown(socket.SHUT_WR)  # the answer is complete
        except OSError:
            pass
        finally:
            connection.relayed.set()
