"""What a call script gets besides the session: settings, parameters, and a time-limited database.

A call script is any callable ``script(session, ctx) -> None`` (see ``hookspecs.autoprov_agi_scripts``).
"""

from __future__ import annotations

import logging
import queue
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
    """A thread holding one database connection, running one session's queries at a time."""

    def __init__(self, db: peewee.Database, on_exit: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.on_exit = on_exit
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
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
            self.on_exit()

    def _call(self, fn: Callable[[], Any]) -> Any:
        reused = not self.db.is_closed()
        if not reused:
            self.db.connect()
        try:
            return fn()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._disconnect()
            if not reused:
                raise
        # A kept connection may have died with a database restart: one retry on a fresh one.
        self.db.connect()
        try:
            return fn()
        except Exception as exc:
            if is_unavailable(exc):
                self._disconnect()
            raise

    def _disconnect(self) -> None:
        try:
            if not self.db.is_closed():
                self.db.close()
        except Exception as exc:  # closing a broken connection must not kill the worker
            log.debug("closing a database connection failed: %s", exc)

    def stop(self) -> None:
        """End after the job in hand (if any), closing the connection."""
        self.jobs.put(None)


class ConnectionPool:
    """Open connections, each on its own worker thread, lent to one session at a time.

    Opening a SQLite connection (with its pragmas) costs several times the cid-name query itself, so a
    call borrows a connection already open; no two live calls ever share one.
    """

    def __init__(self, db: peewee.Database, max_idle: int = 32, max_open: int | None = None) -> None:
        self.db = db
        self.max_idle = max_idle
        # At most this many connections at once (PostgreSQL refuses past max_connections); None: no cap.
        self.max_open = max_open
        self._open = 0
        self._idle: list[_Worker] = []
        self._lock = threading.Condition()

    def acquire(self, timeout: float | None = None) -> _Worker:
        """An idle connection, a new one, or (at the cap) the next one given back within ``timeout``."""
        with self._lock:
            ready = self._lock.wait_for(
                lambda: self._idle or self.max_open is None or self._open < self.max_open, timeout
            )
            if not ready:
                raise DatabaseUnavailable(f"all {self.max_open} database connections are busy")
            if self._idle:
                return self._idle.pop()
            self._open += 1
        return _Worker(self.db, on_exit=self._closed)

    def _closed(self) -> None:
        with self._lock:
            self._open -= 1
            self._lock.notify()

    def release(self, worker: _Worker) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(worker)
                self._lock.notify()
                return
        worker.stop()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


class SessionDatabase:
    """The database for one call: each query borrows a pooled connection, on its own thread, time-limited.

    A connection is lent only for the one function ``run`` is given and is back in the pool before
    ``run`` returns, so nothing is held while the script talks to the channel (a ``Dial`` can last an
    hour: holding a connection across it would let max_db_connections live calls starve every other
    call). The query runs on the worker thread so a slow database cannot hold the call: after
    ``timeout`` seconds the script gets DatabaseUnavailable and goes on, while the stuck query finishes
    (and its connection closes) in the background. After one failure the session stops asking.
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
            worker.stop()  # the stuck query finishes, and its connection closes, in the background
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
