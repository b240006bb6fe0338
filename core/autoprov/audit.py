"""The audit trail of the phone request path: every answer that carried a secret, every refusal, every client
throttled for guessing MACs, every phone flagged on a first contact from afar.

What is recorded (``AccessRecord``): when, which phone (MAC, "" when the request named none), from where
(the client address), the User-Agent, the file, the HTTP status, the outcome and why:

- ``allowed``: a file holding secrets (``FileRule.secret``) was sent, 200 or 206, or written (a PUT of the
  phone's overrides or contacts, 200). A 304 sends no secret (the phone already holds the file) and is not
  recorded: a fleet polling every few minutes would otherwise fill the trail with nothing new; the
  sighting's "last seen" says when it last asked.
- ``refused``: 401 or 403, a client the access rules do not admit.
- ``throttled``: 429, a client blocked for asking for too many unknown MACs (``autoprov.throttle``); its
  block is one record, and the requests refused while blocked are counted in one record per client per write.
- ``flagged``: a provisioned phone's MAC asked for from a far network or with another User-Agent family
  (``autoprov.sightings``).

Records are buffered and written in batches by a background thread (``autoprov.batchwriter``): a request
never waits for the database. Identical records within one write interval are one row with a ``count``.
Retention: ``[audit] keep_days`` and ``max_rows``, pruned by the writer and by ``autoprov audit prune``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass

import peewee

from autoprov import hookimpl
from autoprov.batchwriter import BatchWriter, executemany, utc
from autoprov.db import BaseModel
from autoprov.schema import Migration, create_tables
from autoprov.sightings import IP_LIMIT, PATH_LIMIT, USER_AGENT_LIMIT, storable
from autoprov.tables import utcnow

OUTCOMES = ("allowed", "refused", "throttled", "flagged")
REASON_LIMIT = 1000
PRUNE_EVERY = 600.0  # seconds between two prunes by one writer


class AccessRecord(BaseModel):
    """One audited answer (or several identical ones within a write interval: ``count``)."""

    at = peewee.DateTimeField(default=utcnow, index=True)
    mac = peewee.CharField(max_length=12, default="", index=True)
    client = peewee.CharField(max_length=45, default="", index=True)
    user_agent = peewee.CharField(max_length=255, default="")
    method = peewee.CharField(max_length=16, default="")
    path = peewee.CharField(max_length=255, default="")
    status = peewee.IntegerField(default=0)  # 0: not an answer (a flag)
    outcome = peewee.CharField(max_length=16, index=True)
    reason = peewee.TextField(default="")
    count = peewee.IntegerField(default=1)

    class Meta:
        table_name = "access_audit"


@dataclass
class _Record:
    at: float  # time.time()
    mac: str
    client: str
    user_agent: str
    method: str
    path: str
    status: int
    outcome: str
    reason: str
    count: int = 1


_INSERT = ("INSERT INTO access_audit (at, mac, client, user_agent, method, path, status, outcome, reason, count)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class AuditTrail(BatchWriter):
    """Audit records waiting to be written (see the module docstring)."""

    what = "audit record"
    prune_every = PRUNE_EVERY

    def __init__(self, db: peewee.Database, interval: float, limit: int, keep_days: int = 0,
                 max_rows: int = 0) -> None:
        super().__init__(db, interval, limit)
        self.keep_days = keep_days
        self.max_rows = max_rows
        self._pending: dict[tuple[object, ...], _Record] = {}

    def record(self, outcome: str, *, mac: str = "", client: str | None = "", user_agent: str = "",
               method: str = "", path: str = "", status: int = 0, reason: str = "",
               merge: tuple[object, ...] | None = None) -> None:
        """Note one audited event. Records with the same ``merge`` key (by default: everything but the time)
        within one write interval are one row with a count; the last one's details are kept."""
        assert outcome in OUTCOMES, outcome
        item = _Record(time.time(), (mac or "")[:12], storable(client or "", IP_LIMIT),
                       storable(user_agent, USER_AGENT_LIMIT), method[:16], storable(path, PATH_LIMIT), status,
                       outcome, storable(reason, REASON_LIMIT))
        key = merge if merge is not None else (outcome, item.mac, item.client, item.user_agent, item.method,
                                               item.path, status, item.reason)
        with self._lock:
            found = self._pending.get(key)
            if found is not None:
                item.count = found.count + 1
                self._pending[key] = item
            elif len(self._pending) >= self.limit:
                self._count_drop()
                return
            else:
                self._pending[key] = item
            self._started()

    def _take(self) -> list[_Record]:
        batch, self._pending = list(self._pending.values()), {}
        return batch

    def _write(self, batch: list[_Record]) -> None:
        executemany(self.db, _INSERT, [(utc(r.at), r.mac, r.client, r.user_agent, r.method, r.path, r.status, r.outcome,
                                        r.reason, r.count) for r in batch])

    def _keep(self, batch: list[_Record]) -> None:
        with self._lock:
            room = self.limit - len(self._pending)
            for r in batch[:max(0, room)]:
                self._pending[("kept", id(r))] = r
            self.dropped += max(0, len(batch) - max(0, room))

    def _prune(self) -> None:
        prune(self.db, self.keep_days, self.max_rows)


def prune(db: peewee.Database, keep_days: int, max_rows: int) -> int:
    """Delete records older than ``keep_days`` and, past ``max_rows``, the oldest; returns how many."""
    deleted = 0
    with db.atomic():
        if keep_days > 0:
            cutoff = utcnow() - dt.timedelta(days=keep_days)
            deleted += db.execute_sql(f"DELETE FROM access_audit WHERE at < {db.param}", (cutoff,)).rowcount
        if max_rows > 0:
            (rows,) = db.execute_sql("SELECT COUNT(*) FROM access_audit").fetchone()
            if rows > max_rows:
                deleted += db.execute_sql(
                    f"DELETE FROM access_audit WHERE id IN (SELECT id FROM access_audit ORDER BY id LIMIT {db.param})",
                    (rows - max_rows,)).rowcount
    return deleted


def query(mac: str | None = None, client: str | None = None, since: dt.datetime | None = None,
          until: dt.datetime | None = None, outcomes: Iterable[str] = (), limit: int = 100,
          before_id: int | None = None) -> list[AccessRecord]:
    """Records newest first, filtered (``client``: an address, or a network in CIDR form is matched by prefix
    text only when it ends in ``*``, e.g. ``10.1.*``)."""
    q = AccessRecord.select().order_by(AccessRecord.id.desc())
    if mac:
        q = q.where(AccessRecord.mac == mac)
    if client:
        q = q.where(AccessRecord.client.startswith(client[:-1]) if client.endswith("*")
                    else AccessRecord.client == client)
    if since is not None:
        q = q.where(AccessRecord.at >= since)
    if until is not None:
        q = q.where(AccessRecord.at < until)
    outcomes = [o for o in outcomes if o]
    if outcomes:
        q = q.where(AccessRecord.outcome.in_(outcomes))
    if before_id:
        q = q.where(AccessRecord.id < before_id)
    return list(q.limit(limit))


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [Migration("audit", 1, "the audit trail of secrets served and requests refused",
                      create_tables(AccessRecord))]
