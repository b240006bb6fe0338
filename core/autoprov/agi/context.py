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
from typing import Any, TypeVar

import peewee

from autoprov.config import Settings
from autoprov.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database is down or too slow for a live call: go on with a default."""


class SessionDatabase:
    """The database for one call: its own connection, on its own thread, each query time-limited.

    The query runs on a worker thread so a slow database cannot hold the call: after ``timeout`` seconds
    the script gets DatabaseUnavailable and goes on, while the stuck query finishes (and its connection
    closes) in the background. After one failure the session stops asking.
    """

    def __init__(self, db: peewee.Database | None, timeout: float, name: str = "agi") -> None:
        self.db = db
        self.timeout = timeout
        self.name = name
        self.failed: str | None = None
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def _work(self) -> None:
        assert self.db is not None
        try:
            while (job := self._jobs.get()) is not None:
                fn, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if self.db.is_closed():
                        self.db.connect()
                    future.set_result(fn())
                except BaseException as exc:  # handed to the waiting script, not lost in this thread
                    future.set_exception(exc)
        finally:
            if not self.db.is_closed():
                self.db.close()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on this session's connection, or DatabaseUnavailable."""
        if self.db is None:
            self.failed = "no database configured"
        if self.failed:
            raise DatabaseUnavailable(self.failed)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=f"{self.name}-db", daemon=True)
            self._thread.start()
        future: Future[T] = Future()
        self._jobs.put((lambda: fn(*args, **kwargs), future))
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            self.failed = f"database did not answer within {self.timeout:g} s"
        except UNAVAILABLE_ERRORS as exc:
            self.failed = f"database unavailable: {exc}"
        log.warning("%s: %s", self.name, self.failed)
        raise DatabaseUnavailable(self.failed)

    def close(self) -> None:
        """Close the connection once any running query is done; never waits."""
        if self._thread is not None:
            self._jobs.put(None)


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
        """Run a database function for this call, time-limited (raises DatabaseUnavailable)."""
        return self.database.run(fn, *args, **kwargs)

    @property
    def degraded(self) -> bool:
        """True when the database failed during this call, so the AGI ends with AGISTATUS=FAILURE."""
        return self.database.failed is not None
