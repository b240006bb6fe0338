"""Recording every phone the server sees, known or not, so an admin can watch a new phone arrive.

A phone never waits for this: a request adds its sighting to an in-memory buffer, and a background thread
writes the buffer in one transaction every ``[http] sighting_flush_interval`` seconds (one prepared statement
for the whole batch). What the buffer holds is bounded (``sighting_buffer_limit`` distinct phones; beyond it
new ones are counted and dropped until the next write). A clean shutdown writes what is pending; a crash
loses at most the last interval's "last seen", count, address and problem of the phones seen in it, never a
phone's data (sightings are all this buffer holds).

First contact: a row keeps the address it was first seen from (``first_ip``) whatever later requests with
the same User-Agent say; ``ip`` is the latest. Once a phone has been provisioned (its config served), a
request for its MAC from a very different network (:func:`far_apart`) or with a User-Agent of another
family (another vendor) is flagged in the row (``flag``) and reported to ``on_flag`` (the audit trail).

The table is bounded (``[http] sightings_keep_days``, ``sightings_max_rows``): the writer prunes it every few
minutes, rows of MACs not in the database first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import peewee

from autoprov.batchwriter import BatchWriter, executemany, utc
from autoprov.logthrottle import log_throttled
from autoprov.tables import utcnow

log = logging.getLogger(__name__)

# Column sizes (see tables.Sighting): what a client sends is cut to fit, never refused for its length.
USER_AGENT_LIMIT = 255
FIRMWARE_LIMIT = 64
PATH_LIMIT = 255
MODEL_LIMIT = 100
IP_LIMIT = 45
ETAG_LIMIT = 64
ADDRESSES_HELD = 4  # distinct addresses remembered per phone between two writes (first contact compares them)
PRUNE_EVERY = 300.0  # seconds between two prunes of the table by one writer
READ_CHUNK = 500  # MACs per read-back query (SQLite's bound on parameters is far above)

# A sighting's family: what an attacker replaying a phone's MAC with another client's User-Agent differs in.
FamilyOf = Callable[[str | None, str], str]
OnFlag = Callable[[str, str, str | None, str], None]  # (mac, user_agent, address, why)


def storable(text: str, limit: int) -> str:
    """What a client sent, storable in any database: PostgreSQL text refuses NUL (``%00`` in a path)."""
    return text.replace("\x00", "\ufffd")[:limit]


def far_apart(a: str | None, b: str | None) -> bool:
    """Whether two client addresses are on very different networks: one private and one public, IPv4 and
    IPv6, or (IPv4) another /16, (IPv6) another /48. Unknown or unparsable addresses are never far apart."""
    if not a or not b or a == b:
        return False
    try:
        x, y = _address(a), _address(b)
    except ValueError:
        return False
    if x.version != y.version or x.is_private != y.is_private:
        return True
    prefix = 16 if x.version == 4 else 48
    return ipaddress.ip_network(f"{x}/{prefix}", strict=False) != ipaddress.ip_network(f"{y}/{prefix}", strict=False)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def user_agent_family(model_vendor: str | None, user_agent: str) -> str:
    """The vendor a model read off the User-Agent, else the User-Agent's first product name (``curl``)."""
    if model_vendor:
        return model_vendor
    token = user_agent.split("/", 1)[0].split(" ", 1)[0].strip().lower()
    return f"unknown:{token}" if token else "unknown"


@dataclass
class _Pending:
    model: str | None
    firmware: str | None
    ip: str | None
    path: str
    first_seen: float  # time.time()
    last_seen: float
    count: int
    problem: str | None  # None: leave the stored one
    etag: str | None  # the ETag of the phone config last served, for drift
    ips: list[str] = field(default_factory=list)  # distinct addresses in this interval, first first


_UPSERT = (
    "INSERT INTO sighting (mac, user_agent, model, firmware, ip, first_ip, last_path, problem, flag, first_seen,"
    " last_seen, count, served_etag, etag_since)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, COALESCE(?, ''), COALESCE(?, ''), ?, ?, ?, ?, ?)"
    " ON CONFLICT (mac, user_agent) DO UPDATE SET model = excluded.model, firmware = excluded.firmware,"
    " ip = excluded.ip, first_ip = COALESCE(sighting.first_ip, excluded.first_ip),"
    " last_path = excluded.last_path, last_seen = excluded.last_seen, count = sighting.count + excluded.count,"
    " problem = CASE WHEN ? THEN excluded.problem ELSE sighting.problem END,"
    " flag = CASE WHEN ? THEN excluded.flag ELSE sighting.flag END,"
    " served_etag = COALESCE(excluded.served_etag, sighting.served_etag),"
    " etag_since = CASE WHEN excluded.served_etag IS NULL OR excluded.served_etag = sighting.served_etag"
    " THEN sighting.etag_since ELSE excluded.etag_since END"
)


class SightingBuffer(BatchWriter):
    """Sightings waiting to be written (see the module docstring)."""

    what = "sighting"
    prune_every = PRUNE_EVERY

    def __init__(self, db: peewee.Database, interval: float, limit: int, family_of: FamilyOf | None = None,
                 on_flag: OnFlag | None = None, keep_days: int = 0, max_rows: int = 0) -> None:
        super().__init__(db, interval, limit)
        self._pending: dict[tuple[str, str], _Pending] = {}
        self.family_of: FamilyOf = family_of or (lambda model, ua: user_agent_family(None, ua))
        self.on_flag = on_flag
        self.keep_days = keep_days
        self.max_rows = max_rows

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
        now = time.time()
        ip = _ip(ip)
        if problem:  # one line per kind of problem a minute: a client guessing MACs makes one per request
            log_throttled(log, logging.WARNING, ("problem", _kind(problem)), "phone %s (%s): %s", mac or "?",
                          user_agent, problem)
        with self._lock:
            found = self._pending.get((mac, user_agent))
            if found is None:
                if len(self._pending) >= self.limit:
                    self._count_drop()
                    return
                self._pending[(mac, user_agent)] = _Pending(
                    model, storable(firmware, FIRMWARE_LIMIT) if firmware else None, ip,
                    storable(path, PATH_LIMIT), now, now, 1, _problem(problem), etag and etag[:ETAG_LIMIT],
                    [ip] if ip else [],
                )
            else:
                found.count += 1
                found.last_seen = now
                found.ip = ip
                if ip and ip not in found.ips and len(found.ips) < ADDRESSES_HELD:
                    found.ips.append(ip)
                found.path = storable(path, PATH_LIMIT)
                found.model, found.firmware = model, storable(firmware, FIRMWARE_LIMIT) if firmware else None
                if problem is not None:
                    found.problem = _problem(problem)
                if etag is not None:
                    found.etag = etag[:ETAG_LIMIT]
            self._started()

    def _take(self) -> dict[tuple[str, str], _Pending]:
        batch, self._pending = self._pending, {}
        return batch

    def _write(self, batch: dict[tuple[str, str], _Pending]) -> None:
        flags = self._first_contact(batch)
        rows = []
        for (mac, user_agent), p in batch.items():
            flag = flags.get((mac, user_agent))
            rows.append((mac, user_agent, p.model, p.firmware, p.ip, p.ips[0] if p.ips else p.ip, p.path, p.problem,
                         flag, utc(p.first_seen), utc(p.last_seen), p.count, p.etag,
                         utc(p.last_seen) if p.etag else None,
                         p.problem is not None, flag is not None))
        executemany(self.db, _UPSERT, rows)
        if self.on_flag is not None:
            for (mac, user_agent), why in flags.items():
                p = batch[(mac, user_agent)]
                self.on_flag(mac, user_agent, p.ip, why)

    def _first_contact(self, batch: dict[tuple[str, str], _Pending]) -> dict[tuple[str, str], str]:
        """Flags for the batch's sightings of provisioned phones from a far network or another family."""
        macs = sorted({mac for mac, _ in batch if mac})
        stored: dict[str, list[tuple[str, str | None, str | None, object, bool, str]]] = {}
        for i in range(0, len(macs), READ_CHUNK):
            chunk = macs[i:i + READ_CHUNK]
            marks = ", ".join([self.db.param] * len(chunk))
            cursor = self.db.execute_sql(
                "SELECT mac, user_agent, model, COALESCE(first_ip, ip), first_seen, served_etag IS NOT NULL, flag"
                f" FROM sighting WHERE mac IN ({marks})", chunk)
            for mac, ua, model, first_ip, first_seen, served, flag in cursor.fetchall():
                stored.setdefault(mac, []).append((ua, model, first_ip, first_seen, bool(served), flag or ""))
        flags: dict[tuple[str, str], str] = {}
        for (mac, user_agent), p in batch.items():
            if not mac:
                continue
            rows = stored.get(mac, [])
            provisioned = sorted((r for r in rows if r[4]), key=lambda r: str(r[3]))
            if provisioned:
                ua0, model0, ip0 = provisioned[0][0], provisioned[0][1], provisioned[0][2]
            elif p.etag is not None and p.ips:  # provisioned in this very interval
                ua0, model0, ip0 = user_agent, p.model, p.ips[0]
            else:
                continue
            reasons = []
            far = next((ip for ip in p.ips if far_apart(ip0, ip)), None)
            if far is not None:
                reasons.append(f"requested from {far}, a network far from {ip0}, where it was provisioned from")
            family, family0 = self.family_of(p.model, user_agent), self.family_of(model0, ua0)
            if family != family0:
                reasons.append(f"User-Agent of another family ({family}) than it was provisioned with ({family0})")
            if not reasons:
                continue
            why = "first contact: " + "; ".join(reasons)
            old = next((r[5] for r in rows if r[0] == user_agent), "")
            if why != old:
                flags[(mac, user_agent)] = why
        return flags

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
                    newer.ips = (p.ips + [ip for ip in newer.ips if ip not in p.ips])[:ADDRESSES_HELD]
                    if newer.problem is None:
                        newer.problem = p.problem
                    if newer.etag is None:
                        newer.etag = p.etag

    def _prune(self) -> None:
        prune_sightings(self.db, self.keep_days, self.max_rows)


def prune_sightings(db: peewee.Database, keep_days: int, max_rows: int) -> int:
    """Bound the sighting table; returns the rows deleted. Rows of MACs not in the database (and requests
    that carried no MAC) not seen for ``keep_days`` go first; then, past ``max_rows``, the oldest rows,
    unknown MACs' before known phones'. 0 turns either bound off."""
    deleted = 0
    unknown = "(mac = '' OR mac NOT IN (SELECT mac FROM phone))"
    with db.atomic():
        if keep_days > 0:
            cutoff = utcnow() - dt.timedelta(days=keep_days)
            deleted += db.execute_sql(f"DELETE FROM sighting WHERE last_seen < {db.param} AND {unknown}",
                                      (cutoff,)).rowcount
        if max_rows > 0:
            for which in (unknown, "1 = 1"):
                (rows,) = db.execute_sql("SELECT COUNT(*) FROM sighting").fetchone()
                if rows <= max_rows:
                    break
                deleted += db.execute_sql(
                    f"DELETE FROM sighting WHERE id IN (SELECT id FROM sighting WHERE {which}"
                    f" ORDER BY last_seen LIMIT {db.param})", (rows - max_rows,)).rowcount
    return deleted


def _ip(ip: str | None) -> str | None:
    return storable(ip, IP_LIMIT) if ip else None


def _problem(problem: str | None) -> str | None:
    return None if problem is None else problem.replace("\x00", "\ufffd")


_VARYING = re.compile(r"\b[0-9a-fA-F]{12}\b|\d+")


def _kind(problem: str) -> str:
    """A problem without its MACs and numbers: the same refusal of many MACs or addresses is one kind."""
    return _VARYING.sub("#", problem)[:200]
