"""Write transactions that serialise concurrent writers of the same phone file, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import peewee


def write_transaction(db: peewee.Database) -> Any:
    """A transaction that writes. On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred BEGIN
    that reads and then writes fails at once with "database is locked" when another writer got there first,
    where IMMEDIATE waits (busy_timeout) for its turn."""
    if isinstance(db, peewee.SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return db.atomic()


def locked(query: peewee.Select, db: peewee.Database) -> peewee.Select:
    """``SELECT ... FOR UPDATE`` where the backend has row locks (SQLite's IMMEDIATE lock covers the rest)."""
    if isinstance(db, peewee.SqliteDatabase):
        return query
    return query.for_update()
