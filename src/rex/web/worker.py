"""The gunicorn worker of ``rex serve``: threads, and connections cut only
when they stall.

gunicorn's threaded worker (``gthread``) keeps idle connections (before
their first request and between requests) in one poller and gives a thread
to a connection only while it has a request in progress, so idle clients
cost a file descriptor, not a thread.  This worker changes two things:

- A new connection waits for its first byte in the poller too (gunicorn
  gives it a thread for up to 5 seconds first, so that many connections that
  send nothing stall every thread).
- Its socket times out only when no byte moves for the idle timeout, in
  either direction, whatever the length of the transfer: a 1 GiB upload over
  a slow link goes on as long as bytes arrive, and a client that stops
  sending (or reading) is cut after ``idle_timeout`` seconds.  Python's own
  ``sendall`` timeout bounds the whole call, hence `IdleTimeoutSocket`.

docs/production-workers.rst has the measurements that chose this model
(``bench/run.py --only slow-clients``) and says how to size it.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import time
from collections.abc import Iterator
from functools import partial
from typing import Any, Protocol, runtime_checkable

from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from gunicorn.workers.gthread import TConn, ThreadWorker

log = logging.getLogger("rex.web.serve")


@runtime_checkable
class Checked(Protocol):
    """A file whose bytes may be sent straight from an OS file once it has
    checked them."""

    def read(self, size: int = -1) -> bytes: ...

    def sendfile_fd(self) -> int:
        """The OS file descriptor to send from."""

    def sendfile_segments(self, offset: int, count: int) -> Iterator[tuple[int, int]]:
        """``(offset, length)`` pieces of bytes `offset` to `offset + count`,
        each given out once it is checked (raising when it fails)."""


class _Sendable:
    """A `Checked` file as gunicorn's ``sendfile`` wants it: with a
    ``fileno()``, which only `IdleTimeoutSocket.sendfile` ever sees."""

    mode = "rb"

    def __init__(self, file: Checked) -> None:
        self.file = file
        self.read = file.read
        self.close = getattr(file, "close", lambda: None)
        self.fileno = file.sendfile_fd
        self.sendfile_segments = file.sendfile_segments

    def seek(self, offset: int, whence: int = 0) -> int:
        return os.lseek(self.fileno(), offset, whence)


class FileWrapper(GunicornFileWrapper):
    """``wsgi.file_wrapper``: gunicorn's, which sends a `Checked` file with
    ``sendfile`` as well."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        super().__init__(filelike, blksize)
        if isinstance(filelike, Checked):
            self.filelike = _Sendable(filelike)


class IdleTimeoutSocket(socket.socket):
    """A connected socket whose blocking calls fail only after `idle_timeout`
    seconds in which no byte moved.

    When that happens the connection is shut down and logged; a receive then
    reads the end of the stream (the request ends there: a truncated body is
    the client's 400, as when it hangs up) and a send fails with ``EPIPE``
    (the server drops the response, as when the client hangs up).
    """

    idle_timeout: float
    sendfile_count = 0  # bytes sent with ``sendfile``, until taken

    @classmethod
    def adopt(cls, sock: socket.socket, idle_timeout: float) -> IdleTimeoutSocket:
        """Takes over the connection of `sock` (which must not be used after)."""
        adopted = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        adopted.idle_timeout = idle_timeout
        adopted.settimeout(idle_timeout)
        return adopted

    def setblocking(self, flag: bool) -> None:
        # gunicorn makes the socket blocking for its threads: blocking, here,
        # is "blocking until the idle timeout".
        self.settimeout(self.idle_timeout if flag else 0.0)

    def recv(self, size: int, flags: int = 0) -> bytes:
        try:
            return super().recv(size, flags)
        except TimeoutError as error:
            self._cut("receiving", error)
            return b""

    def recv_into(self, buffer: Any, size: int = 0, flags: int = 0) -> int:
        try:
            return super().recv_into(buffer, size, flags)
        except TimeoutError as error:
            self._cut("receiving", error)
            return 0

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except TimeoutError as error:
            raise self._cut("sending", error) from None

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Sends everything, waiting at most the idle timeout for each part
        (`socket.sendall` bounds the whole call by the timeout)."""
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags):]

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        segments = getattr(file, "sendfile_segments", None)
        if segments is None:
            return self._sendfile(file, offset, count)
        if count is None:
            count = os.fstat(file.fileno()).st_size - offset
        return sum(self._sendfile(file, start, length) for start, length in segments(offset, count))

    def _sendfile(self, file: Any, offset: int, count: int | None) -> int:
        try:
            sent = super().sendfile(file, offset, count)
        except TimeoutError as error:
            raise self._cut("sending", error) from None
        self.sendfile_count += sent
        return sent

    def take_sendfile_count(self) -> int:
        """The bytes sent with ``sendfile`` since the last call (for the
        access log: gunicorn counts only what it writes)."""
        count, self.sendfile_count = self.sendfile_count, 0
        return count

    def _cut(self, doing: str, error: TimeoutError) -> BrokenPipeError:
        """Shuts the stalled connection down; the error a send then raises.
        Raises `error` itself if a shorter timeout of gunicorn's was in force
        (its lingering close), not the idle timeout."""
        if self.gettimeout() != self.idle_timeout:
            raise error
        try:
            peer = "%s:%s" % self.getpeername()[:2]
        except OSError:
            peer = "a client"
        log.info("Closed the connection of %s: no byte moved for %g s while %s",
                 peer, self.idle_timeout, doing)
        try:
            self.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client is gone already
        return BrokenPipeError(errno.EPIPE, f"no byte moved for {self.idle_timeout:g} s")


class Worker(ThreadWorker):
    """gunicorn's threaded worker with `IdleTimeoutSocket` connections that
    wait for their first byte in the poller.  The idle timeout is gunicorn's
    ``keepalive`` setting, which so also bounds the wait for a request."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        app = self.wsgi

        def wsgi(environ: dict, start_response: Any) -> Any:
            environ["wsgi.file_wrapper"] = FileWrapper

            def start(status: str, headers: list, exc_info: Any = None) -> Any:
                # A refusal may leave the request's body unread: gunicorn
                # closes such a connection, so it must say so, not "keep-alive".
                if status >= "400" and _has_body(environ):
                    start_response.__self__.force_close()
                return start_response(status, headers, exc_info)

            return app(environ, start)

        self.wsgi = wsgi

    def enqueue_req(self, conn: TConn) -> None:
        if not isinstance(conn.sock, IdleTimeoutSocket):  # a new connection
            conn.sock = IdleTimeoutSocket.adopt(conn.sock, self.cfg.keepalive)
        if conn.initialized or conn.data_ready:
            super().enqueue_req(conn)
            return
        # As gunicorn does with a connection that sent nothing for 5 s.
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.on_pending_socket_readable, conn))


def _has_body(environ: dict) -> bool:
    return (environ.get("CONTENT_LENGTH", "") not in ("", "0")
            or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower())
