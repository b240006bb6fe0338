"""Versioned schema migrations, per component, so core and plugins each own their tables' history.

Each component (``core``, ``logs``, a plugin's name, ...) has its own version number in ``schema_version``;
``autoprov init`` applies every migration newer than the recorded one, each in its own transaction (a
savepoint on SQLite, where the whole upgrade holds the write lock), one server at a time, and
is safe to rerun.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_columns

from autoprov.db import BaseModel


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    description: str
    apply: Callable[[peewee.Database, SchemaMigrator], None]


def create_tables(*tables: type[peewee.Model]) -> Callable[[peewee.Database, SchemaMigrator], None]:
    """A migration step that creates the given tables (with their indexes) as they are defined now."""

    def apply(db: peewee.Database, migrator: SchemaMigrator) -> None:
        db.create_tables(tables, safe=True)

    return apply


def add_column(db: peewee.Database, migrator: SchemaMigrator, field: peewee.Field) -> None:
    """Add ``field``'s column unless the table has it: a database created since got it from the migration
    that creates the tables as they are now."""
    table = field.model._meta.table_name
    if field.column_name not in {c.name for c in db.get_columns(table)}:
        migrate_columns(migrator.add_column(table, field.column_name, field))


class SchemaVersion(BaseModel):
    component = peewee.CharField(primary_key=True, max_length=100)
    version = peewee.IntegerField()


def current_versions(db: peewee.Database) -> dict[str, int]:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return {}
    return {row.component: row.version for row in SchemaVersion.select()}


# pg_advisory_lock key of `autoprov init` ("autoprov" in ASCII, as a number).
MIGRATION_LOCK = 0x6175746F70726F76


@contextmanager
def migration_lock(db: peewee.Database) -> Iterator[None]:
    """One `autoprov init` at a time per database: servers starting together would otherwise race to create the
    same tables. PostgreSQL: an advisory lock; SQLite: the write lock, for the whole upgrade."""
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    elif isinstance(db, peewee.SqliteDatabase):
        with db.atomic(lock_type="IMMEDIATE"):
            yield
    else:
        yield


# Seconds an `autoprov init` waits for another one to finish on SQLite (past the busy timeout).
LOCK_WAIT = 60.0


def migrate(db: peewee.Database, migrations: Iterable[Migration]) -> list[Migration]:
    """Apply the pending migrations in (component, version) order; return those applied. Safe to run from
    several processes at once (``migration_lock``): the versions are read once the lock is held."""
    with migration_lock(db):
        return _migrate(db, migrations)


def is_locked_out(exc: BaseException) -> bool:
    """SQLite refused a lock at once rather than wait for it (a new file switching to WAL, a read upgraded to
    a write while another upgrade runs): the upgrade, one transaction there, is rolled back and can be tried
    again (``Site.init_database`` does, for up to LOCK_WAIT seconds)."""
    return isinstance(exc, peewee.OperationalError) and "database is locked" in str(exc)


def _migrate(db: peewee.Database, migrations: Iterable[Migration]) -> list[Migration]:
    db.create_tables([SchemaVersion], safe=True)
    done = current_versions(db)
    migrator = SchemaMigrator.from_database(db)
    applied = []
    for m in sorted(migrations, key=lambda m: (m.component != "core", m.component, m.version)):
        if m.version <= done.get(m.component, 0):
            continue
        with db.atomic():
            m.apply(db, migrator)
            SchemaVersion.insert(component=m.component, version=m.version).on_conflict(
                conflict_target=[SchemaVersion.component], update={SchemaVersion.version: m.version}
            ).execute()
        done[m.component] = m.version
        applied.append(m)
    return applied


def outdated(db: peewee.Database, migrations: Iterable[Migration]) -> list[tuple[str, int, int]]:
    """Components whose recorded schema version is behind the installed migrations:
    ``(component, recorded, installed)``, recorded 0 when the component has no tables yet."""
    latest: dict[str, int] = {}
    for m in migrations:
        latest[m.component] = max(latest.get(m.component, 0), m.version)
    done = current_versions(db)
    return [(c, done.get(c, 0), v) for c, v in sorted(latest.items()) if done.get(c, 0) < v]
