"""What a call script gets besides the session: settings, parameters, and a time-limited database.

A call script is any callable ``script(session, ctx) -> None`` (see ``hookspecs.autoprov_agi_scripts``).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import peewee

from autoprov.config import Settings
from autoprov.db import is_unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database is down or too slow for a live call: go on with a default."""


class _Worker:
    """A thread holding one database connection, running one session's queries at a time.

    It counts against the pool's cap until it ends or is written off (its query did not answer in time).
    """

    def __init__(
        self, db: peewee.Database, on_exit: Callable[[], None], prepare: Callable[[peewee.Database], None]
    ) -> None:
        self.db = db
        self.on_exit = on_exit
        self.prepare = prepare  # run on each new connection, on this worker's thread
        self.written_off = False
        self._left = False
        self._left_lock = threading.Lock()
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        # Last: a thread that cannot start (RuntimeError) leaves nothing behind; the pool gives the slot back.
        threading.Thread(target=self._run, name="agi-db", daemon=True).start()

    def _run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                fn, future = job
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(self._call(fn))
                    except BaseException as exc:  # handed to the waiting script, not lost in this thread
                        future.set_exception(exc)
        finally:
            self._disconnect()
            if self.written_off:
                log.info("a database query written off after its time limit returned; its connection is closed")
            self._leave()

    def _call(self, fn: Callable[[], Any]) -> Any:
        reused = not self.db.is_closed()
        if not reused:
            self._connect()
        try:
            return fn()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._disconnect()
            if not reused or self.written_off:  # nobody waits for a written-off query: no retry
                raise
        # A kept connection may have died with a database restart: one retry on a fresh one.
        self._connect()
        try:
            return fn()
        except Exception as exc:
            if is_unavailable(exc):
                self._disconnect()
            raise

    def _connect(self) -> None:
        self.db.connect()
        try:
            self.prepare(self.db)
        except BaseException:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        try:
            if not self.db.is_closed():
                self.db.close()
        except Exception as exc:  # closing a broken connection must not kill the worker
            log.debug("closing a database connection failed: %s", exc)

    def _leave(self) -> None:
        """Stop counting against the pool's cap (once, whoever calls first)."""
        with self._left_lock:
            if self._left:
                return
            self._left = True
        self.on_exit()

    def stop(self) -> None:
        """End after the job in hand (if any), closing the connection."""
        self.jobs.put(None)

    def write_off(self) -> None:
        """Give up on the job in hand: the pool's slot is free at once, the thread is abandoned.

        A query that never returns (a connection black-holed by the network, a lock never released) must
        not keep its slot, or max_db_connections such queries would leave every later call without a
        connection while a fresh one would work. If the query ever returns, the thread closes its
        connection and ends; it is never lent again.
        """
        self.written_off = True
        self.jobs.put(None)
        self._leave()


# Pooled PostgreSQL connections: the server cancels a statement a little after the call gave up on it
# (its connection then closes and its thread ends), and TCP keepalives notice a peer that vanished.
STATEMENT_TIMEOUT_MARGIN = 1.0  # seconds past database_timeout
_KEEPALIVE = (
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), 5),  # seconds idle before the first probe
    (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None), 2),  # seconds between probes
    (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), 3),  # unanswered probes: the peer is gone
    (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None), 15000),  # ms sent data may go unacknowledged
)


def _prepare_postgresql(db: peewee.Database, query_timeout: float | None) -> None:
    """Bound what a pooled PostgreSQL connection can hang on: statement_timeout, TCP keepalives.

    Set on the open connection (``SET``, ``setsockopt`` on libpq's socket, as libpq's own ``keepalives``
    options do) rather than as connect parameters: the pool shares the site's Database, whose connect
    parameters hold for every connection the process opens. connect_timeout can go in the URL.
    """
    if query_timeout is not None:
        db.execute_sql(f"SET statement_timeout = {int((query_timeout + STATEMENT_TIMEOUT_MARGIN) * 1000)}")
    try:
        with socket.socket(fileno=os.dup(db.connection().fileno())) as sock:
            for level, option, value in _KEEPALIVE:
                if option is not None:
                    sock.setsockopt(level, option, value)
    except OSError as exc:  # e.g. a Unix socket has no TCP options: nothing to notice there
        log.debug("no TCP keepalives on a database connection: %s", exc)


class ConnectionPool:
    """Open connections, each on its own worker thread, lent to one session at a time.

    Opening a SQLite connection (with its pragmas) costs several times the cid-name query itself, so a
    call borrows a connection already open; no two live calls ever share one.
    """

    def __init__(
        self, db: peewee.Database, max_idle: int = 32, max_open: int | None = None,
        query_timeout: float | None = None,
    ) -> None:
        self.db = db
        self.max_idle = max_idle
        # At most this many connections at once (PostgreSQL refuses past max_connections); None: no cap.
        # A written-off connection (its query outlived its time limit) no longer counts.
        self.max_open = max_open
        self.query_timeout = query_timeout  # the callers' database_timeout: PostgreSQL's statement_timeout follows
        self._open = 0
        self._idle: list[_Worker] = []
        self._closed = False  # after close(): no new connections, returned ones are closed
        self._lock = threading.Condition()

    def acquire(self, timeout: float | None = None) -> _Worker:
        """An idle connection, a new one, or (at the cap) the next one given back within ``timeout``."""
        with self._lock:
            ready = self._lock.wait_for(
                lambda: self._closed or self._idle or self.max_open is None or self._open < self.max_open,
                timeout,
            )
            if self._closed:
                raise DatabaseUnavailable("the connection pool is closed (the server is shutting down)")
            if not ready:
                raise DatabaseUnavailable(f"all {self.max_open} database connections are busy")
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return _Worker(self.db, on_exit=self._worker_ended, prepare=self._prepare)
        except RuntimeError as exc:  # "can't start new thread" (RLIMIT_NPROC, memory): the slot goes back
            self._worker_ended()
            raise DatabaseUnavailable(f"database unavailable: no thread for a connection ({exc})") from None

    def _prepare(self, db: peewee.Database) -> None:
        if isinstance(db, peewee.PostgresqlDatabase):
            _prepare_postgresql(db, self.query_timeout)

    def _worker_ended(self) -> None:
        with self._lock:
            self._open -= 1
            self._lock.notify()

    def release(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(worker)
                self._lock.notify()
                return
        worker.stop()

    def close(self) -> None:
        """Close the idle connections; from now on none opens, and each given back closes."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()  # a query waiting for a connection fails at once
        for worker in idle:
            worker.stop()


class SessionDatabase:
    """The database for one call: each query borrows a pooled connection, on its own thread, time-limited.

    A connection is lent only for the one function ``run`` is given and is back in the pool before
    ``run`` returns, so nothing is held while the script talks to the channel (a ``Dial`` can last an
    hour: holding a connection across it would let max_db_connections live calls starve every other
    call). The query runs on the worker thread so a slow database cannot hold the call: after
    ``timeout`` seconds the script gets DatabaseUnavailable and goes on, and the stuck connection is written
    off: it leaves the pool at once, and closes in the background if its query ever returns. After one
    failure the session stops asking.
    """

    def __init__(self, pool: ConnectionPool | None, timeout: float, name: str = "agi") -> None:
        self.pool = pool
        self.timeout = timeout
        self.name = name
        self.failed: str | None = None

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on a connection lent for this call only, or DatabaseUnavailable."""
        if self.pool is None:
            self.failed = "no database configured"
        if self.failed:
            raise DatabaseUnavailable(self.failed)
        try:
            worker = self.pool.acquire(self.timeout)
        except DatabaseUnavailable as exc:
            self._fail(str(exc))
        future: Future[T] = Future()
        worker.jobs.put((lambda: fn(*args, **kwargs), future))
        try:
            result = future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            worker.write_off()  # its slot is free now; its connection closes if the query ever returns
            self._fail(f"database did not answer within {self.timeout:g} s")
        except Exception as exc:
            worker.stop()  # a connection that raised may be mid-transaction: never lend it again
            if not is_unavailable(exc):  # e.g. PostgreSQL without the schema: 42P01, not a connection error
                raise
            self._fail(f"database unavailable: {exc}")
        self.pool.release(worker)
        return result

    def _fail(self, reason: str) -> NoReturn:
        self.failed = reason
        log.warning("%s: %s", self.name, reason)
        raise DatabaseUnavailable(reason)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ScriptContext:
    """Everything a script may use besides the session."""

    settings: Settings
    database: SessionDatabase
    params: dict[str, str] = field(default_factory=dict)  # agi://host/script?k=v
    script: str = ""
    clock: Callable[[], datetime] = _utcnow  # aware "now"; tests pass a fixed clock
    log: logging.Logger = log

    def query(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a database function, time-limited, on a connection lent for it alone (DatabaseUnavailable).

        Statements that belong together (a transaction) go in one ``fn``; nothing is held between calls,
        so a script may run a long channel command (``Dial``) without keeping a connection from others.
        """
        return self.database.run(fn, *args, **kwargs)

    @property
    def degraded(self) -> bool:
        """True when the database failed during this call, so the AGI ends with AGISTATUS=FAILURE."""
        return self.database.failed is not None
