"""Recording every phone the server sees, known or not, so an admin can watch a new phone arrive.

A phone never waits for this: a request adds its sighting to an in-memory buffer, and a background thread
writes the buffer in one transaction every ``[http] sighting_flush_interval`` seconds. What the buffer holds is
bounded (``sighting_buffer_limit`` distinct phones; beyond it new ones are counted and dropped until the next
write). A clean shutdown writes what is pending; a crash loses at most the last interval's "last seen", count,
address and problem of the phones seen in it, never a phone's data (sightings are all this buffer holds).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import dataclass

import peewee

from autoprov.db import activated, is_unavailable
from autoprov.logthrottle import log_throttled
from autoprov.tables import Sighting, utcnow

log = logging.getLogger(__name__)

# Column sizes (see tables.Sighting): what a client sends is cut to fit, never refused for its length.
USER_AGENT_LIMIT = 255
FIRMWARE_LIMIT = 64
PATH_LIMIT = 255
MODEL_LIMIT = 100
IP_LIMIT = 45
ETAG_LIMIT = 64


def storable(text: str, limit: int) -> str:
    """What a client sent, storable in any database: PostgreSQL text refuses NUL (``%00`` in a path)."""
    return text.replace("\x00", "\ufffd")[:limit]


@dataclass
class _Pending:
    model: str | None
    firmware: str | None
    ip: str | None
    path: str
    first_seen: object
    last_seen: object
    count: int
    problem: str | None  # None: leave the stored one
    etag: str | None  # the ETag of the phone config last served, for drift


class SightingBuffer:
    """Sightings waiting to be written (see the module docstring)."""

    def __init__(self, db: peewee.Database, interval: float, limit: int) -> None:
        self.db = db
        self.interval = interval
        self.limit = limit
        self.dropped = 0
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        # A weak reference: a Site that goes away takes its buffer with it (after writing it).
        atexit.register(_close_at_exit, weakref.ref(self))

    def record(
        self,
        mac: str,
        user_agent: str,
        model: str | None,
        firmware: str | None,
        ip: str | None,
        path: str,
        problem: str | None = None,
        etag: str | None = None,
    ) -> None:
        """Note one request; ``problem`` None leaves the stored problem, "" clears it."""
        user_agent = storable(user_agent, USER_AGENT_LIMIT)
        now = utcnow()
        if problem:
            log.warning("phone %s (%s): %s", mac or "?", user_agent, problem)
        with self._lock:
            found = self._pending.get((mac, user_agent))
            if found is None:
                if len(self._pending) >= self.limit:
                    self.dropped += 1
                    return
                self._pending[(mac, user_agent)] = _Pending(
                    model, storable(firmware, FIRMWARE_LIMIT) if firmware else None, _ip(ip),
                    storable(path, PATH_LIMIT), now, now, 1, _problem(problem), etag and etag[:ETAG_LIMIT],
                )
            else:
                found.count += 1
                found.last_seen = now
                found.ip = _ip(ip)
                found.path = storable(path, PATH_LIMIT)
                found.model, found.firmware = model, storable(firmware, FIRMWARE_LIMIT) if firmware else None
                if problem is not None:
                    found.problem = _problem(problem)
                if etag is not None:
                    found.etag = etag[:ETAG_LIMIT]
            if self._thread is None and not self._closed:
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="autoprov-sightings", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write what is pending now; returns how many sightings were written. Kept for later if the
        database is unavailable."""
        with self._lock:
            batch, self._pending = self._pending, {}
            dropped, self.dropped = self.dropped, 0
        if dropped:
            log_throttled(log, logging.WARNING, "sightings-dropped",
                          "%d sighting(s) dropped: more than %d distinct phones seen within %.1f s", dropped,
                          self.limit, self.interval)
        if not batch:
            return 0
        try:
            with activated(self.db), self.db.connection_context(), self.db.atomic():
                for (mac, user_agent), p in batch.items():
                    _upsert(mac, user_agent, p)
        except peewee.PeeweeException as exc:
            if not is_unavailable(exc):
                log.exception("could not write %d sighting(s)", len(batch))
            else:
                log_throttled(log, logging.WARNING, "sightings-unavailable",
                              "could not write %d sighting(s), kept for later: %s", len(batch), exc)
                self._keep(batch)
            return 0
        return len(batch)

    def _keep(self, batch: dict[tuple[str, str], _Pending]) -> None:
        with self._lock:
            for key, p in batch.items():
                newer = self._pending.get(key)
                if newer is None:
                    if len(self._pending) < self.limit:
                        self._pending[key] = p
                else:
                    newer.count += p.count
                    newer.first_seen = p.first_seen
                    if newer.problem is None:
                        newer.problem = p.problem
                    if newer.etag is None:
                        newer.etag = p.etag

    def close(self) -> None:
        """Stop the writer and write what is pending (a clean shutdown)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.flush()


def _ip(ip: str | None) -> str | None:
    return storable(ip, IP_LIMIT) if ip else None


def _problem(problem: str | None) -> str | None:
    return None if problem is None else problem.replace("\x00", "\ufffd")


def _upsert(mac: str, user_agent: str, p: _Pending) -> None:
    row = {
        Sighting.mac: mac,
        Sighting.user_agent: user_agent,
        Sighting.model: p.model,
        Sighting.firmware: p.firmware,
        Sighting.ip: p.ip,
        Sighting.last_path: p.path,
        Sighting.last_seen: p.last_seen,
        Sighting.first_seen: p.first_seen,
        Sighting.count: p.count,
    }
    # By name: a peewee field compared with ``in`` builds an expression (always true) instead of comparing.
    update = {k: v for k, v in row.items() if k.name not in ("mac", "user_agent", "first_seen", "count")}
    update[Sighting.count] = Sighting.count + p.count
    if p.problem is not None:
        row[Sighting.problem] = update[Sighting.problem] = p.problem
    if p.etag is not None:
        row[Sighting.served_etag] = update[Sighting.served_etag] = p.etag
        update[Sighting.etag_since] = peewee.Case(None, [(Sighting.served_etag == p.etag, Sighting.etag_since)],
                                                  p.last_seen)
        row[Sighting.etag_since] = p.last_seen
    Sighting.insert(row).on_conflict(conflict_target=[Sighting.mac, Sighting.user_agent], update=update).execute()


def _close_at_exit(ref: weakref.ref[SightingBuffer]) -> None:
    buffer = ref()
    if buffer is not None:
        try:
            buffer.close()
        except Exception:  # interpreter shutdown: nothing more can be done
            log.exception("could not write the pending sightings at exit")
