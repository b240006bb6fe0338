"""MAC enumeration: a client that asks for the per-phone files of many MACs the database does not know is
answered 429 with Retry-After for a while, whichever MAC it asks for next.

Keyed on the client address, so a phone at another address is never locked out by someone else's guessing
(behind a shared NAT, every phone shares the guesser's address: see README, "Security", and
``[throttle] exempt``).

A phone's request never waits for the database: :meth:`MacThrottle.miss` and :meth:`MacThrottle.blocked`
touch memory only. The counts must hold across gunicorn workers and across servers sharing PostgreSQL, so a
background thread (``autoprov.batchwriter``) writes each process's misses and blocks to two tables every
``[throttle] share_interval`` seconds and reads back what every process wrote: the distinct unknown MACs per
client within the window, and the blocks in force. A client is blocked at once by the process that sees it
pass the limit, and everywhere else within about ``share_interval`` (plus the writers' flush).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import peewee

from autoprov import hookimpl
from autoprov.batchwriter import BatchWriter, executemany
from autoprov.config import ThrottleSettings, in_networks
from autoprov.db import BaseModel
from autoprov.schema import Migration, create_tables

OnBlock = Callable[[str, float, int], None]  # (client, seconds, distinct unknown MACs)


class ThrottleMiss(BaseModel):
    """A client asked for an unknown MAC's per-phone file (the latest time: one row per client and MAC)."""

    client = peewee.CharField(max_length=45)
    mac = peewee.CharField(max_length=12)
    at = peewee.DoubleField(index=True)  # seconds since the epoch (servers' clocks are assumed in step)

    class Meta:
        indexes = ((("client", "mac"), True),)


class ThrottleBlock(BaseModel):
    client = peewee.CharField(max_length=45, primary_key=True)
    until = peewee.DoubleField()  # seconds since the epoch
    misses = peewee.IntegerField(default=0)  # distinct unknown MACs that caused it


_MISS = ("INSERT INTO throttle_miss (client, mac, at) VALUES (?, ?, ?)"
         " ON CONFLICT (client, mac) DO UPDATE SET at = excluded.at")
_BLOCK = ("INSERT INTO throttle_block (client, until, misses) VALUES (?, ?, ?)"
          " ON CONFLICT (client) DO UPDATE SET misses = excluded.misses,"
          " until = CASE WHEN excluded.until > throttle_block.until THEN excluded.until ELSE throttle_block.until END")


@dataclass
class _Batch:
    misses: dict[tuple[str, str], float] = field(default_factory=dict)
    blocks: dict[str, tuple[float, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.misses) + len(self.blocks)


class MacThrottle(BatchWriter):
    """Counts unknown MACs per client; see the module docstring."""

    what = "throttle count"

    def __init__(self, db: peewee.Database, settings: ThrottleSettings, on_block: OnBlock | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(db, settings.share_interval, settings.clients_limit)
        self.settings = settings
        self.on_block = on_block
        self.clock = clock
        self._exempt = tuple(settings.exempt)
        self._seen: OrderedDict[str, dict[str, float]] = OrderedDict()  # client -> unknown MAC -> when
        self._blocked: dict[str, float] = {}  # client -> until
        self._batch = _Batch()
        self._cleaned_at = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.settings.unknown_macs > 0

    def exempt(self, client: str) -> bool:
        return bool(self._exempt) and in_networks(client, self._exempt)

    def blocked(self, client: str | None) -> float:
        """Seconds ``client`` remains blocked (0: it is not). Memory only."""
        if not self.enabled or not client:
            return 0.0
        if self._thread is None:  # learn the blocks other processes hold, from the first request on
            with self._lock:
                self._started()
        until = self._blocked.get(client)
        if until is None:
            return 0.0
        left = until - self.clock()
        return left if left > 0 else 0.0

    def miss(self, client: str | None, mac: str) -> None:
        """``client`` asked for the per-phone file of ``mac``, which the database does not know."""
        if not self.enabled or not client or self.exempt(client):
            return
        now = self.clock()
        blocked: tuple[float, int] | None = None
        with self._lock:
            seen = self._seen.pop(client, None) or {}
            self._seen[client] = seen  # most recent last
            if len(self._seen) > self.settings.clients_limit:
                self._seen.popitem(last=False)
            horizon = now - self.settings.window
            for old in [m for m, at in seen.items() if at < horizon]:
                del seen[old]
            if mac not in seen and len(seen) > self.settings.unknown_macs:
                return  # blocked already: no need to count further
            seen[mac] = now
            if len(self._batch.misses) < self.limit:
                self._batch.misses[(client, mac)] = now
            else:
                self._count_drop()
            if len(seen) > self.settings.unknown_macs and self._blocked.get(client, 0) <= now:
                blocked = self._block(client, now, len(seen))
            self._started()
        if blocked is not None and self.on_block is not None:
            self.on_block(client, blocked[0] - now, blocked[1])

    def _block(self, client: str, now: float, misses: int) -> tuple[float, int]:
        """With the lock held: block ``client`` here, and everywhere once written."""
        until = now + self.settings.block
        self._blocked[client] = until
        self._batch.blocks[client] = (until, misses)
        return until, misses

    # --- the writer thread ---------------------------------------------------------------------------------
    def _take(self) -> _Batch | None:
        batch, self._batch = self._batch, _Batch()
        return batch if len(batch) else None

    def _write(self, batch: _Batch) -> None:
        executemany(self.db, _MISS, [(c, m, at) for (c, m), at in batch.misses.items()])
        executemany(self.db, _BLOCK, [(c, until, n) for c, (until, n) in batch.blocks.items()])

    def _keep(self, batch: _Batch) -> None:
        with self._lock:
            for key, at in batch.misses.items():
                if len(self._batch.misses) < self.limit:
                    self._batch.misses.setdefault(key, at)
            for client, value in batch.blocks.items():
                self._batch.blocks.setdefault(client, value)

    def _tick(self) -> None:
        """Read back every process's blocks and counts; block here who passed the limit elsewhere."""
        now = self.clock()
        p = self.db.param
        shared = dict(self.db.execute_sql(f"SELECT client, until FROM throttle_block WHERE until > {p}",
                                          (now,)).fetchall())
        over = self.db.execute_sql(
            f"SELECT client, COUNT(*) FROM throttle_miss WHERE at >= {p} GROUP BY client HAVING COUNT(*) > {p}",
            (now - self.settings.window, self.settings.unknown_macs)).fetchall()
        fresh: list[tuple[str, float, int]] = []
        with self._lock:
            for client, misses in over:
                if client not in shared and self._blocked.get(client, 0) <= now and not self.exempt(client):
                    until, _ = self._block(client, now, misses)
                    shared[client] = until
                    fresh.append((client, until - now, misses))
            # Blocks in force: the database's, and this process's own not yet written or longer.
            blocks = {c: u for c, u in self._blocked.items() if u > now}
            for client, until in shared.items():
                if until > blocks.get(client, 0):
                    blocks[client] = until
            self._blocked = blocks
        if self.on_block is not None:
            for client, seconds, misses in fresh:
                self.on_block(client, seconds, misses)
        if now - self._cleaned_at >= max(self.settings.window / 2, self.interval):
            self._cleaned_at = now
            self.db.execute_sql(f"DELETE FROM throttle_miss WHERE at < {p}", (now - self.settings.window,))
            self.db.execute_sql(f"DELETE FROM throttle_block WHERE until < {p}", (now,))


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [Migration("throttle", 1, "unknown MACs asked for per client, and clients blocked for it",
                      create_tables(ThrottleMiss, ThrottleBlock))]
