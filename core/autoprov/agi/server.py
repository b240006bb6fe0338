"""The FastAGI server: one thread per live call, each with its time limit; queries borrow pooled connections.

A call can last as long as the channel (a script may run ``EXEC Dial``), so calls never share a thread;
a thread whose call ended waits a while for the next one (starting a thread costs about as much as
reading a call's environment).
Shutdown stops accepting at once, lets the live calls finish for a grace period, then ends what is left.
A call the server ends (time limit, shutdown) gets the ``failure`` line before its socket closes: a bare
close would read as AGISTATUS=SUCCESS, and the dialplan must know the script did not finish.
"""

from __future__ import annotations

import errno
import itertools
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import peewee

from autoprov.agi.context import ConnectionPool
from autoprov.agi.runner import Script, run_session
from autoprov.agi.session import AGISession
from autoprov.config import Settings

log = logging.getLogger(__name__)

FAILURE_WAIT = 1.0  # seconds ending a call may wait to write its failure line
# Seconds shutdown waits for scripts to return once their calls are ended, at least: a script in a query
# may wait database_timeout for a connection and as long for the answer, so it gets twice that, and a bit.
ABANDON_AFTER = 2.0
ABANDON_MARGIN = 0.5
# Out of file descriptors the pending connection stays readable: without a pause accept() fails in a
# tight loop (190,000 log lines in 3 s). Pause, and say so once in a while with a count. The same when no
# thread can start for a call (RLIMIT_NPROC, memory): that call fails, the server goes on.
_SHORTAGE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_PAUSE = 0.1
ACCEPT_LOG_EVERY = 10.0
# A connection refused beyond max_connections gets the failure line, then is read (Asterisk's environment)
# until Asterisk closes, at most this long: a close with unread data is a reset, which may discard the
# failure line before Asterisk reads it.
REFUSED_LINGER = 2.0
IDLE_THREAD_KEEP = 30.0  # seconds a thread whose call ended waits for another before it ends


class _Threads:
    """Threads for calls: a call goes to a thread that is waiting for one, else to a new thread.

    The number of threads follows the number of live calls (bounded by max_connections); each waits
    IDLE_THREAD_KEEP seconds for another call, then ends. All are daemons, so shutdown can abandon one
    stuck in a script's own code.
    """

    def __init__(self) -> None:
        self.name = "fastagi-call"  # the server adds its port
        self._closed = False
        self._jobs: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting, minus the jobs already handed to them

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on a thread; RuntimeError when none is waiting and none can start."""
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._jobs.put((fn, args))
                return
        threading.Thread(target=self._run, args=((fn, args),), name=self.name, daemon=True).start()

    def _run(self, job: tuple[Callable[..., object], tuple[object, ...]] | None) -> None:
        while job is not None:
            fn, args = job
            try:
                fn(*args)
            except Exception:  # _handle catches everything a call can raise; this is a bug
                log.exception("FastAGI call thread")
            with self._lock:
                if self._closed:
                    return
                self._idle += 1
            job = self._next()

    def _next(self) -> tuple[Callable[..., object], tuple[object, ...]] | None:
        while True:
            try:
                return self._jobs.get(timeout=IDLE_THREAD_KEEP)
            except queue.Empty:
                with self._lock:  # a job handed over meanwhile is in the queue: take it
                    if self._jobs.empty():
                        self._idle -= 1
                        return None

    def close(self) -> None:
        """End the waiting threads (those running a call end after it)."""
        with self._lock:
            self._closed = True
            waiting, self._idle = self._idle, 0
        for _ in range(waiting):
            self._jobs.put(None)


class _Shortage:
    """A failure that repeats while something is short: logged with a count, at most every ACCEPT_LOG_EVERY s."""

    def __init__(self, message: str) -> None:
        self.message = message  # %d: how many times since the last line, %s: the error
        self.count = 0
        self.log_at = 0.0

    def happened(self, exc: BaseException) -> None:
        self.count += 1
        now = time.monotonic()
        if now >= self.log_at:
            log.error(self.message, self.count, exc)
            self.count, self.log_at = 0, now + ACCEPT_LOG_EVERY


@dataclass
class _Call:
    deadline: float  # environment_timeout after the connection, then session_timeout after the environment
    sock: socket.socket
    session: AGISession
    ended: bool = False  # by the server (time limit, shutdown): its AGISTATUS is FAILURE
    started: bool = False  # its environment arrived


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
        self.pool = (
            ConnectionPool(db, max_open=settings.agi.max_db_connections, query_timeout=settings.agi.database_timeout)
            if db is not None else None
        )
        self.host = host if host is not None else settings.agi.host
        self.port = port if port is not None else settings.agi.port
        self.session_timeout = session_timeout if session_timeout is not None else settings.agi.session_timeout
        self.max_connections = settings.agi.max_connections
        self.environment_timeout = settings.agi.environment_timeout
        self.abandon_after = max(ABANDON_AFTER, 2 * settings.agi.database_timeout + ABANDON_MARGIN)
        self.clock = clock
        self.backlog = backlog
        self.statuses: dict[str, int] = {}  # AGISTATUS counts, for logs and tests
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)  # stop() may run in a signal handler: it must never block
        self._stopping = threading.Event()
        self._stop_requested = False  # the accept loop ends (a flag: stop() may not take a lock)
        self._shutting_down = False  # shutdown() began: a second call waits for the first
        self._shut_down = threading.Event()
        self._clean = False  # what the first shutdown() returned
        self._finished = False  # shutdown is over (it may have abandoned script threads)
        self._lock = threading.Condition()
        self._live: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._accept_failures = _Shortage("accept failed %d time(s): %s; live calls go on, new ones wait")
        self._thread_failures = _Shortage(
            "no thread for a new call %d time(s) (%s): it ended with AGISTATUS=FAILURE; live calls go on"
        )
        self._threads = _Threads()
        self._refusals = _Shortage("refused %d call(s) with AGISTATUS=FAILURE: %s")
        self._refused: dict[socket.socket, float] = {}  # refused connections still read, until when
        self._sel: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._watchdog = threading.Thread(target=self._watch, name="fastagi-watchdog", daemon=True)
        # The watchdog sleeps on an Event of its own until the nearest deadline (_watch_until): a new
        # call wakes it only when its deadline is nearer, not on every call that starts or ends.
        self._watch_wake = threading.Event()
        self._watch_until = 0.0

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
        self._threads.name = f"fastagi-call:{self.port}"
        return self.host, self.port

    def serve_forever(self) -> None:
        """Accept calls until :meth:`shutdown`."""
        if self._listener is None:
            self.bind()
        assert self._listener is not None
        self._watchdog.start()
        log.info("FastAGI listening on %s:%s (scripts: %s)", self.host, self.port, ", ".join(sorted(self.scripts)))
        with selectors.DefaultSelector() as sel:
            self._sel = sel
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop_requested:
                for key, _ in sel.select(REFUSED_LINGER / 4 if self._refused else None):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.data == "refused":
                        self._drain_refused(key.fileobj)  # type: ignore[arg-type]
                now = time.monotonic()
                for conn in [c for c, until in self._refused.items() if until <= now]:
                    self._close_refused(conn)
            for conn in list(self._refused):
                self._close_refused(conn)
        self._listener.close()

    def start(self) -> threading.Thread:
        """Serve on a background thread (tests, the benchmark)."""
        if self._listener is None:
            self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name="fastagi-accept", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop accepting: :meth:`serve_forever` returns; :meth:`shutdown` follows.

        Safe in a signal handler: it takes no lock (the interrupted thread may hold any).
        """
        self._stop_requested = True
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (it is awake already) or closed
            pass

    def shutdown(self, grace: float = 30.0) -> bool:
        """Stop accepting, wait up to ``grace`` seconds for live calls, then end the rest.

        Returns within about ``grace + abandon_after + 1`` seconds whatever the scripts do: a script thread
        that does not return once its call is ended is abandoned (threads are daemons); one in a query gets
        the time to finish it. Then the pool closes: a query from an abandoned script fails at once.
        Returns True when every call finished by itself. A second call (another thread) waits for the
        first and returns what it did.
        """
        with self._lock:
            first, self._shutting_down = not self._shutting_down, True
        if not first:
            self._shut_down.wait()
            return self._clean
        try:
            self._clean = self._shutdown(grace)
        finally:
            self._shut_down.set()
        return self._clean

    def _shutdown(self, grace: float) -> bool:
        self._stopping.set()
        self.stop()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + grace
        with self._lock:
            while self._live and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            clean = not self._live
            remaining = list(self._live.items())
        for sid, call in remaining:
            log.warning("fastagi#%s: still live %g s after shutdown began; ending it", sid, grace)
            self._end(call)
        with self._lock:
            # A script blocked on its call wakes at once; one stuck in its own code may never return.
            self._lock.wait_for(lambda: not self._live, self.abandon_after)
            for sid in self._live:
                log.error("fastagi#%s: the script did not return after its call ended; abandoning it", sid)
            self._finished = True
            self._lock.notify_all()
        self._watch_wake.set()  # the watchdog ends too
        self._threads.close()
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
                self._accept_failed(exc)
                return
            if len(self._live) >= self.max_connections:
                self._refuse(conn, addr)
                continue
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sid = next(self._ids)
            session = AGISession.from_socket(conn, name=f"fastagi#{sid} {addr[0]}:{addr[1]}")
            call = _Call(time.monotonic() + self.environment_timeout, conn, session)
            with self._lock:
                self._live[sid] = call
            if call.deadline < self._watch_until:
                self._watch_wake.set()
            try:
                self._threads.submit(self._handle, sid, call)
            except RuntimeError as exc:  # "can't start new thread": out of processes (RLIMIT_NPROC) or memory
                self._no_thread(sid, call, exc)
                return

    def _refuse(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        """A call beyond max_connections: the failure line at once (the dialplan goes on), never a thread."""
        self._refusals.happened(f"{self.max_connections} connections live (agi.max_connections), the last "
                                f"from {addr[0]}:{addr[1]}")
        try:
            conn.setblocking(False)  # nothing here may hold the accept loop
            conn.send(b"failure\n")  # a new socket's buffer is empty: it all goes
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        assert self._sel is not None
        self._refused[conn] = time.monotonic() + REFUSED_LINGER
        self._sel.register(conn, selectors.EVENT_READ, "refused")

    def _drain_refused(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except BlockingIOError:
            return  # more to come
        except OSError:
            pass
        self._close_refused(conn)  # Asterisk closed (or reset): done

    def _close_refused(self, conn: socket.socket) -> None:
        if self._refused.pop(conn, None) is not None and self._sel is not None:
            self._sel.unregister(conn)
        conn.close()

    def _accept_failed(self, exc: OSError) -> None:
        self._accept_failures.happened(exc)
        if exc.errno in _SHORTAGE:
            self._stopping.wait(ACCEPT_PAUSE)  # returns at once on shutdown

    def _no_thread(self, sid: int, call: _Call, exc: RuntimeError) -> None:
        """A call no thread could be started for: it gets the failure line, and the server pauses."""
        self._finish(sid, call, "FAILURE")
        self._thread_failures.happened(exc)
        self._send_failure(call)
        try:
            call.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._stopping.wait(ACCEPT_PAUSE)  # threads may free up; returns at once on shutdown
        # Read what Asterisk sent (its environment) before closing: a close with unread data is a reset,
        # which may discard the failure line before Asterisk reads it.
        try:
            call.sock.setblocking(False)
            while call.sock.recv(65536):
                pass
        except OSError:
            pass
        call.session.close()
        _close(call.sock)

    def _handle(self, sid: int, call: _Call) -> None:
        status = "FAILURE"
        try:
            status = run_session(call.session, self.scripts, self.settings, self.pool, clock=self.clock,
                                 on_environment=lambda: self._started(call))
        finally:
            call.session.close()
            _close(call.sock)
            self._finish(sid, call, status)

    def _started(self, call: _Call) -> None:
        """The environment arrived: from now on the session's own time limit holds."""
        with self._lock:
            call.started = True
            if call.deadline != float("inf"):  # not being ended already
                call.deadline = time.monotonic() + self.session_timeout
        if call.deadline < self._watch_until:  # a session_timeout shorter than environment_timeout
            self._watch_wake.set()

    def _finish(self, sid: int, call: _Call, status: str) -> None:
        """The call is no longer live; count how it ended (FAILURE if the server ended it)."""
        with self._lock:
            self._live.pop(sid, None)
            status = "FAILURE" if call.ended else status
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self._lock.notify_all()

    def _end(self, call: _Call) -> None:
        """Tell Asterisk the AGI failed, then close, which makes a script waiting on a reply see EOF."""
        call.ended = True
        self._send_failure(call)
        _hard_close(call.sock)

    @staticmethod
    def _send_failure(call: _Call) -> None:
        """The FastAGI failure line, waiting at most FAILURE_WAIT: Asterisk not reading must not hold the
        watchdog, shutdown or the accept loop."""
        try:
            call.sock.settimeout(FAILURE_WAIT)
        except OSError:
            pass
        call.session.send_failure(wait=FAILURE_WAIT)

    def _watch(self) -> None:
        """End calls that outlive their time limit: the environment's, then the session's."""
        while True:
            with self._lock:
                if self._finished or (self._stopping.is_set() and not self._live):
                    return
                now = time.monotonic()
                expired = [(sid, call) for sid, call in self._live.items() if call.deadline <= now]
                for _, call in expired:
                    call.deadline = float("inf")
                nearest = min((c.deadline for c in self._live.values()), default=now + 60)
                self._watch_until = min(nearest, now + 60)
                self._watch_wake.clear()
            for sid, call in expired:  # outside the lock: ending a call may wait on its socket
                if call.started:
                    log.warning("fastagi#%s: session time limit (%g s) reached", sid, self.session_timeout)
                else:
                    log.warning("fastagi#%s: no complete AGI environment within %g s (agi.environment_timeout);"
                                " closing", sid, self.environment_timeout)
                self._end(call)
            if not expired:
                self._watch_wake.wait(max(0.05, self._watch_until - now))


def _hard_close(sock: socket.socket) -> None:
    """Wake a thread blocked reading ``sock``: shutdown() does, close() alone may not."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    _hard_close(sock)
    sock.close()
