"""Knowing when what phones are served has changed, whoever changed it.

The database keeps one counter, bumped by triggers on every table a rendered file depends on (extensions,
phones, lines, uploaded contacts). Every write path bumps it without knowing it: the CLI, CSV import, uploads,
the admin UI, another process, another server sharing PostgreSQL, even an admin's own SQL.

A process reads the counter at most once every ``[http] change_check_interval`` seconds (1 s by default), so a
change made anywhere is served everywhere within that bound. Cached renders are stamped with the counter read
*before* their data, so one rendered from data older than the counter is never kept as current.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import peewee

from autoprov.db import BaseModel, sqlite_path

T = TypeVar("T")


class ChangeCounter(BaseModel):
    id = peewee.IntegerField(primary_key=True)
    revision = peewee.BigIntegerField(default=0)


_SQLITE_TRIGGER = (
    'CREATE TRIGGER IF NOT EXISTS "autoprov_revision_{table}_{op}" AFTER {op} ON "{table}" '
    "BEGIN UPDATE change_counter SET revision = revision + 1 WHERE id = 1; END"
)
_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION autoprov_bump_revision() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN UPDATE change_counter SET revision = revision + 1 WHERE id = 1; RETURN NULL; END $$"
)
_PG_TRIGGER = (
    'CREATE TRIGGER "autoprov_revision_{table}" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
    "FOR EACH STATEMENT EXECUTE FUNCTION autoprov_bump_revision()"
)


def create_counter(db: peewee.Database) -> None:
    """The counter's table and its one row (a migration step)."""
    db.create_tables([ChangeCounter], safe=True)
    ChangeCounter.insert(id=1, revision=0).on_conflict_ignore().execute()
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql(_PG_FUNCTION)


def watch_tables(db: peewee.Database, *tables: type[peewee.Model]) -> None:
    """Make every change to ``tables`` bump the counter (a migration step of the tables' owner)."""
    for table in tables:
        name = table._meta.table_name
        if isinstance(db, peewee.PostgresqlDatabase):
            db.execute_sql(f'DROP TRIGGER IF EXISTS "autoprov_revision_{name}" ON "{name}"')
            db.execute_sql(_PG_TRIGGER.format(table=name))
        else:
            for op in ("INSERT", "UPDATE", "DELETE"):
                db.execute_sql(_SQLITE_TRIGGER.format(table=name, op=op))


class ChangeWatch:
    """The counter as this thread last read it; read again once ``interval`` seconds have passed.

    A failed read raises (the caller answers 503) and is tried again on the next call. Per thread, like the
    connections: each thread notices a change (or a replaced database file) on its own, within the bound.
    """

    def __init__(self, db: peewee.Database, interval: float) -> None:
        self.db = db
        self.interval = interval
        self._local = threading.local()
        self._path = sqlite_path(db)
        # Built once: peewee's SQL builder is not run per request.
        self._sql, _ = ChangeCounter.select(ChangeCounter.revision).where(ChangeCounter.id == 1).sql()

    def current(self) -> int:
        local = self._local
        now = time.monotonic()
        if now - getattr(local, "read_at", float("-inf")) < self.interval:
            return local.value
        row = self.db.execute_sql(self._sql, (1,)).fetchone()
        # No row: the schema predates the counter; nothing can be cached against it.
        local.value = row[0] if row else -1 - int(now * 1000)
        local.read_at = now
        return local.value

    def revalidate(self) -> None:
        """Before a request: a SQLite file replaced or removed since this thread connected (a restored backup,
        a moved file) closes the thread's connection, so the next query opens the file that is there now, or
        fails (503), instead of reading the old one for ever. Checked at most once per ``interval``, like the
        counter: a stat is a few microseconds alone, but tens on a busy machine, as much as a cached answer."""
        if self._path is None:
            return
        local = self._local
        now = time.monotonic()
        if now - getattr(local, "checked_at", float("-inf")) < self.interval:
            return
        local.checked_at = now
        try:
            st = os.stat(self._path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        if getattr(local, "ident", ident) != ident:
            local.read_at = float("-inf")
            if not self.db.is_closed():
                self.db.close()
        local.ident = ident

    def forget(self) -> None:
        """Read the counter on this thread's next call (after a write made in this process)."""
        self._local.read_at = float("-inf")


class RenderCache(Generic[T]):
    """Values computed from the database, kept while the counter stays the same.

    Bounded: past ``limit`` entries the oldest are dropped (a phone asks once per poll, so recency is a fair
    guess). Thread-safe: a value is computed outside the lock; two threads may compute the same one.
    """

    def __init__(self, watch: ChangeWatch, limit: int = 20000) -> None:
        self.watch = watch
        self.limit = limit
        self._entries: dict[Hashable, tuple[int, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        revision = self.watch.current()  # before the data: see the module docstring
        found = self._entries.get(key)
        if found is not None and found[0] == revision:
            return found[1]
        value = compute()
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.limit:
                for old in list(self._entries)[: max(1, self.limit // 10)]:
                    del self._entries[old]
            self._entries[key] = (revision, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
