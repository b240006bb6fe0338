"""Writing what requests note (sightings, the audit trail, the throttle's counts) in batches, off the request
path: a request adds to an in-memory buffer and returns; a background thread writes the buffer in one
transaction every ``interval`` seconds.

A subclass holds its own pending structure and says how to take it (``_take``), write it (``_write``, inside
the transaction) and keep it for later when the database is unavailable (``_keep``); ``_tick`` is periodic
work done on the writer thread after each write (pruning, reading back what other processes wrote). What is
held is bounded by the subclass; drops are counted (``dropped``) and logged at most once a minute.

A clean shutdown (``close``, also at interpreter exit) writes what is pending; a crash loses at most the last
interval's notes.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
import weakref
from typing import Any

import peewee

from autoprov.db import activated, is_unavailable
from autoprov.logthrottle import log_throttled

log = logging.getLogger(__name__)


class BatchWriter:
    """A buffer written by a background thread (see the module docstring)."""

    what = "record"  # for log lines: "3 record(s) dropped"
    prune_every = 0.0  # seconds between two calls of ``_prune`` by the default ``_tick`` (0: never)

    def __init__(self, db: peewee.Database, interval: float, limit: int) -> None:
        self.db = db
        self.interval = interval
        self.limit = limit
        self.dropped = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pruned_at = float("-inf")
        # A weak reference: a Site that goes away takes its writer with it (after writing it).
        atexit.register(_close_at_exit, weakref.ref(self))

    # --- for subclasses ------------------------------------------------------------------------------------
    def _take(self) -> Any:
        """Under the lock: what is pending, leaving an empty buffer; falsy when nothing is."""
        raise NotImplementedError

    def _write(self, batch: Any) -> None:
        """Write ``batch`` (in a transaction, the database activated)."""
        raise NotImplementedError

    def _keep(self, batch: Any) -> None:
        """The database is unavailable: put ``batch`` back, within the bound (called without the lock)."""

    def _tick(self) -> None:
        """Periodic work on the writer thread after each flush (the database activated and connected): by
        default, ``_prune`` every ``prune_every`` seconds."""
        now = time.monotonic()
        if self.prune_every and now - self._pruned_at >= self.prune_every:
            self._pruned_at = now
            self._prune()

    def _prune(self) -> None:
        """Bound the table this writer fills."""

    # --- the machinery -------------------------------------------------------------------------------------
    def _started(self) -> None:
        """Call with the lock held after adding to the buffer: starts the writer thread on first use."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name=f"autoprov-{self.what}s", daemon=True)
            self._thread.start()

    def _count_drop(self) -> None:
        self.dropped += 1

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed:
                break
            self.flush()
            try:
                with activated(self.db), self.db.connection_context():
                    self._tick()
            except peewee.PeeweeException as exc:
                log_throttled(log, logging.WARNING, f"{self.what}-tick", "%s upkeep failed: %s", self.what,
                              " ".join(str(exc).split()))
            except Exception:  # never let the writer thread die: it would stop writing for good
                log.exception("%s upkeep failed", self.what)

    def flush(self) -> int:
        """Write what is pending now; returns how many entries were written. Kept for later if the database
        is unavailable."""
        with self._lock:
            batch = self._take()
            dropped, self.dropped = self.dropped, 0
        if dropped:
            log_throttled(log, logging.WARNING, f"{self.what}-dropped",
                          "%d %s(s) dropped: more than %d held within %.1f s", dropped, self.what, self.limit,
                          self.interval)
        if not batch:
            return 0
        try:
            with activated(self.db), self.db.connection_context(), self.db.atomic():
                self._write(batch)
        except peewee.PeeweeException as exc:
            if not is_unavailable(exc):
                log.exception("could not write %d %s(s)", len(batch), self.what)
            else:
                log_throttled(log, logging.WARNING, f"{self.what}-unavailable",
                              "could not write %d %s(s), kept for later: %s", len(batch), self.what,
                              " ".join(str(exc).split()))
                self._keep(batch)
            return 0
        return len(batch)

    def close(self) -> None:
        """Stop the writer and write what is pending (a clean shutdown)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.flush()


_EPOCH = dt.datetime(1970, 1, 1)


def utc(timestamp: float) -> dt.datetime:
    """A ``time.time()`` as the naive UTC datetime the tables hold. Requests note ``time.time()`` (a fraction of
    a microsecond) and the writer converts: ``datetime.now(UTC)`` cost 6 us per request."""
    return _EPOCH + dt.timedelta(seconds=timestamp)


def executemany(db: peewee.Database, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """One statement, many parameter rows, on the connection of this thread (inside its transaction).

    ``sql`` uses ``?`` placeholders; PostgreSQL's driver wants ``%s``."""
    if not rows:
        return
    if db.param != "?":
        sql = sql.replace("?", db.param)
    with peewee.__exception_wrapper__:  # driver errors as peewee's (OperationalError: unavailable)
        cursor = db.cursor()
        try:
            if isinstance(db, peewee.PostgresqlDatabase):
                # psycopg2's executemany is a round trip per row; this sends the rows in pages.
                from psycopg2.extras import execute_batch

                execute_batch(cursor, sql, rows, page_size=500)
            else:
                cursor.executemany(sql, rows)
        finally:
            cursor.close()


def _close_at_exit(ref: weakref.ref[BatchWriter]) -> None:
    writer = ref()
    if writer is not None:
        try:
            writer.close()
        except Exception:  # interpreter shutdown: nothing more can be done
            log.exception("could not write the pending %ss at exit", writer.what)
