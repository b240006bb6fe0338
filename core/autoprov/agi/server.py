"""The FastAGI server: one thread per live call, each with its own database connection and time limit.

A call can last as long as the channel (a script may run ``EXEC Dial``), so calls never share a thread.
Shutdown stops accepting at once, lets the live calls finish for a grace period, then closes what is left
(Asterisk then sees the AGI end and the dialplan goes on).
"""

from __future__ import annotations

import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import peewee

from autoprov.agi.context import ConnectionPool
from autoprov.agi.runner import Script, run_session
from autoprov.agi.session import AGISession
from autoprov.config import Settings

log = logging.getLogger(__name__)


class FastAGIServer:
    def __init__(
        self,
        scripts: Mapping[str, Script],
        settings: Settings,
        db: peewee.Database | None,
        *,
        host: str | None = None,
        port: int | None = None,
        session_timeout: float | None = None,
        clock: Callable[[], datetime] | None = None,
        backlog: int = 1024,
    ) -> None:
        self.scripts = dict(scripts)
        self.settings = settings
        self.db = db
        self.pool = ConnectionPool(db, max_open=settings.agi.max_db_connections) if db is not None else None
        self.host = host if host is not None else settings.agi.host
        self.port = port if port is not None else settings.agi.port
        self.session_timeout = session_timeout if session_timeout is not None else settings.agi.session_timeout
        self.clock = clock
        self.backlog = backlog
        self.statuses: dict[str, int] = {}  # AGISTATUS counts, for logs and tests
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._lock = threading.Condition()
        self._live: dict[int, tuple[float, socket.socket]] = {}  # id -> (deadline, socket)
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._watchdog = threading.Thread(target=self._watch, name="fastagi-watchdog", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def bind(self) -> tuple[str, int]:
        """Listen (port 0 picks a free one); returns the address actually bound."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(self.backlog)
        listener.setblocking(False)
        self._listener = listener
        self.host, self.port = listener.getsockname()[:2]
        return self.host, self.port

    def serve_forever(self) -> None:
        """Accept calls until :meth:`shutdown`."""
        if self._listener is None:
            self.bind()
        assert self._listener is not None
        self._watchdog.start()
        log.info("FastAGI listening on %s:%s (scripts: %s)", self.host, self.port, ", ".join(sorted(self.scripts)))
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._listener:
                        self._accept()
        self._listener.close()

    def start(self) -> threading.Thread:
        """Serve on a background thread (tests, the benchmark)."""
        if self._listener is None:
            self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name="fastagi-accept", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self, grace: float = 30.0) -> bool:
        """Stop accepting, wait up to ``grace`` seconds for live calls, then end the rest.

        Returns True when every call finished by itself.
        """
        self._stopping.set()
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + grace
        with self._lock:
            while self._live and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            clean = not self._live
            for _, sock in self._live.values():
                log.warning("shutdown: ending a call still live after %g s", grace)
                _hard_close(sock)
            while self._live:
                self._lock.wait(1.0)
            self._lock.notify_all()  # the watchdog ends too
        if self.pool is not None:
            self.pool.close()
        return clean

    @property
    def live_sessions(self) -> int:
        with self._lock:
            return len(self._live)

    # -- calls -------------------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: keep serving the live calls
                log.error("accept failed: %s", exc)
                return
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sid = next(self._ids)
            with self._lock:
                self._live[sid] = (time.monotonic() + self.session_timeout, conn)
                self._lock.notify_all()
            threading.Thread(target=self._handle, args=(sid, conn, addr), name=f"fastagi-{sid}", daemon=True).start()

    def _handle(self, sid: int, conn: socket.socket, addr: tuple[str, int]) -> None:
        session = AGISession.from_socket(conn, name=f"fastagi#{sid} {addr[0]}:{addr[1]}")
        status = "FAILURE"
        try:
            status = run_session(session, self.scripts, self.settings, self.pool, clock=self.clock)
        finally:
            session.close()
            _close(conn)
            with self._lock:
                self._live.pop(sid, None)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self._lock.notify_all()

    def _watch(self) -> None:
        """End calls that outlive the session time limit (closing the socket makes the script see EOF)."""
        with self._lock:
            while not (self._stopping.is_set() and not self._live):
                now = time.monotonic()
                for sid, (deadline, sock) in list(self._live.items()):
                    if deadline <= now:
                        log.warning("fastagi#%s: session time limit (%g s) reached", sid, self.session_timeout)
                        _hard_close(sock)
                        self._live[sid] = (float("inf"), sock)
                nearest = min((d for d, _ in self._live.values()), default=now + 60)
                self._lock.wait(max(0.05, min(nearest - now, 60)))


def _hard_close(sock: socket.socket) -> None:
    """Wake a thread blocked reading ``sock``: shutdown() does, close() alone may not."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    _hard_close(sock)
    sock.close()
