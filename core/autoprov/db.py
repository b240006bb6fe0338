"""The database: one peewee proxy, opened from a URL (``sqlite:///path``, ``postgresql://...``).

Every table subclasses :class:`BaseModel`, so plugins' tables live in the same database. The proxy answers
with the database of the Site that is active in this thread or task (:func:`activated`), else the last one
opened: two Sites in one process each reach their own.

Connections are per thread and stay open between requests (PRAGMAs are set once, when one opens); one that
fails is closed, so the next request connects afresh.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import peewee
from playhouse.db_url import connect as connect_url
from playhouse.db_url import parse as parse_url

from autoprov.privatefiles import create_private_if_missing

_active: ContextVar[peewee.Database | None] = ContextVar("autoprov_database", default=None)


class SiteDatabase(peewee.DatabaseProxy):
    """A proxy that follows the active Site's database (see the module docstring)."""

    __slots__ = ("_default",)

    @property  # type: ignore[override]
    def obj(self) -> peewee.Database | None:
        return _active.get() or self._default

    @obj.setter
    def obj(self, value: peewee.Database | None) -> None:
        object.__setattr__(self, "_default", value)

    def __setattr__(self, attr: str, value: object) -> None:
        object.__setattr__(self, attr, value)


database = SiteDatabase()


@contextmanager
def activated(db: peewee.Database) -> Iterator[peewee.Database]:
    """Make ``db`` the one every table uses in this thread (or task) for the duration."""
    token = _active.set(db)
    try:
        yield db
    finally:
        _active.reset(token)

# What "the database is down" looks like to peewee, whichever backend: answered with 503.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (peewee.OperationalError, peewee.InterfaceError)

# PostgreSQL's "relation does not exist": the schema was never created (`autoprov init`), which for a phone
# is the same as a database that is down. SQLite says so with an OperationalError already.
_UNDEFINED_TABLE = "42P01"


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database exception means "no usable database right now" (answered with 503): down, locked,
    no schema, or (SQLite) a file that is not a database at all."""
    return isinstance(exc, UNAVAILABLE_ERRORS) or is_schema_missing(exc) or _not_a_database(exc)


def _not_a_database(exc: BaseException) -> bool:
    return isinstance(exc, peewee.DatabaseError) and str(exc) in ("file is not a database",
                                                                  "database disk image is malformed")


def is_schema_missing(exc: BaseException) -> bool:
    """A table is missing: ``autoprov init`` never ran on this database."""
    if isinstance(exc, peewee.ProgrammingError):
        return getattr(getattr(exc, "orig", None), "pgcode", None) == _UNDEFINED_TABLE
    return isinstance(exc, peewee.OperationalError) and str(exc).startswith("no such table")


SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never wait for the one writer
    "foreign_keys": 1,
    "busy_timeout": 5000,  # milliseconds a writer waits for the lock instead of failing
    "synchronous": "normal",  # safe with WAL, much faster commits
}


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


# A database file autoprov creates: SIP passwords and phones' uploads are in it, so the service's user alone
# reads it. SQLite gives the -wal and -shm files it makes the database file's own mode.
DATABASE_FILE_MODE = 0o600


class PrivateSqliteDatabase(peewee.SqliteDatabase):
    """SQLite whose file, when a connection is about to create it, is first created empty with
    DATABASE_FILE_MODE, whatever the umask (SQLite itself would make it 0644 less the umask)."""

    def _connect(self) -> Any:
        name = self.database
        if name and name != ":memory:" and not name.startswith("file:"):  # URIs and memory: not a plain file
            create_private_if_missing(name, DATABASE_FILE_MODE)
        return super()._connect()


def close_to_others(path: Path) -> list[str]:
    """Take every permission for other users off a SQLite database and its -wal/-shm files (one made before
    autoprov created them 0600); group permissions, which an admin may have granted, are kept. Returns what
    was changed, for the admin."""
    changed = []
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o007:
            try:
                file.chmod(mode & ~0o007)
                changed.append(f"{file}: {mode:o} -> {mode & ~0o007:o}")
            except OSError as exc:
                changed.append(f"{file}: {mode:o}, and it cannot be changed here ({exc.strerror})")
    return changed


def open_database(url: str) -> peewee.Database:
    """Build the database for ``url`` (not yet connected); it is also the proxy's default from now on."""
    if url.startswith("sqlite:"):
        db = PrivateSqliteDatabase(**parse_url(url), pragmas=SQLITE_PRAGMAS)
    else:
        db = connect_url(url, autoconnect=True)
    database.initialize(db)
    return db


class Prepared:
    """A query peewee builds once per database, then run as SQL text with new parameters each time.

    ``build`` returns the query with placeholder values in the order the parameters will be given; building
    SQL through peewee's expression tree costs more than running it, so the hot path never does it twice.
    """

    def __init__(self, build: Callable[[], peewee.Query]) -> None:
        self.build = build
        self._sql: weakref.WeakKeyDictionary[peewee.Database, str] = weakref.WeakKeyDictionary()

    def execute(self, db: peewee.Database, *params: object) -> Any:
        sql = self._sql.get(db)
        if sql is None:
            with activated(db):
                sql = self._sql[db] = self.build().sql()[0]
        return db.execute_sql(sql, params)


@contextmanager
def connection(db: peewee.Database | None = None) -> Iterator[peewee.Database]:
    """Connect ``db`` (default: the bound one) for the duration of one request or command, reusing an open
    connection (then left open)."""
    db = db if db is not None else database.obj
    opened = db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        if opened and not db.is_closed():
            db.close()


def sqlite_path(db: peewee.Database) -> Path | None:
    """The file of a SQLite database (None for other backends and ``:memory:``)."""
    if isinstance(db, peewee.SqliteDatabase) and db.database not in ("", ":memory:"):
        return Path(db.database)
    return None


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def describe_database(url: str) -> str:
    """The database for people: a SQLite file's absolute path (where a relative URL really points), else the
    URL with its password hidden. Every "cannot open the database" message names it."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):].partition("?")[0]
        if path not in ("", ":memory:"):
            return f"SQLite {Path(path).absolute()}"
    return redact_url(url)
