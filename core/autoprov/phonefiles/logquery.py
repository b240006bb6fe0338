"""Reading stored log lines back (with each file's unfinished last line), and pruning old ones."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import peewee

from autoprov.db import connection
from autoprov.phonefiles.logs import LineParser, clean_text, unparsed
from autoprov.phonefiles.tables import LogFile, LogLine
from autoprov.phonefiles.transactions import write_transaction
from autoprov.tables import utcnow

log = logging.getLogger(__name__)

PRUNE_BATCH = 10_000
PRUNE_EVERY = 3600.0  # seconds between automatic prunes, per process

@dataclass(frozen=True)
class Since:
    """One moment on both clocks a line can carry: the phone's own (its local time, as it wrote it) and the
    upload time (UTC). Both naive, as stored."""

    phone: dt.datetime
    utc: dt.datetime

    @staticmethod
    def at(moment: dt.datetime, zone: dt.tzinfo) -> Since:
        """``moment``: aware, or naive in ``zone`` (the phone's)."""
        utc = (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(dt.UTC)
        return Since(utc.astimezone(zone).replace(tzinfo=None), utc.replace(tzinfo=None))


def query_lines(
    mac: str,
    file: str | None = None,
    min_level: int | None = None,
    since: Since | None = None,
    grep: str | None = None,
    limit: int | None = None,
) -> Iterator[LogLine]:
    """One phone's lines, oldest first; ``limit`` keeps the newest ones. ``since`` compares the phone's own
    time where the line has one, else the upload time, each on its own clock."""
    query = LogLine.select().where(LogLine.mac == mac)
    if file:
        query = query.where(LogLine.file == file)
    if min_level is not None:
        query = query.where(LogLine.level >= min_level)
    if since is not None:
        query = query.where(
            (LogLine.phone_time >= since.phone) | (LogLine.phone_time.is_null() & (LogLine.received_at >= since.utc))
        )
    if grep:
        query = query.where(LogLine.message.contains(grep))
    # Order by the index's columns, not just id: with only ``id`` PostgreSQL may walk the primary key from the
    # newest row of *any* phone and filter (seen: 276 ms instead of 2 ms among 2.3 million lines).
    keys = [LogLine.mac, LogLine.file, LogLine.id] if file else [LogLine.mac, LogLine.id]
    if limit:
        newest = list(query.order_by(*(k.desc() for k in keys)).limit(limit))
        yield from reversed(newest)
    else:
        yield from query.order_by(*keys).iterator()


@dataclass(frozen=True)
class Pending:
    """A file's last line without its newline yet: not a row until it is complete, but worth showing."""

    line: LogLine  # unsaved: the line as it would be stored now
    after: int | None  # id of the newest stored line of its file (None: it has none)


def pending_lines(mac: str, file: str | None, passes: Callable[[LogLine], bool],
                  parse: LineParser = unparsed) -> list[Pending]:
    """The unfinished last lines of one phone's files (or of one) that ``passes``, read by ``parse``."""
    query = LogFile.select().where(LogFile.mac == mac)
    if file:
        query = query.where(LogFile.name == file)
    found = []
    for f in query.order_by(LogFile.name):
        if not f.pending:
            continue
        rec = parse(clean_text(bytes(f.pending).removesuffix(b"\r")), f.updated)
        line = LogLine(mac=mac, file=f.name, generation=f.generation, received_at=f.updated, **asdict(rec))
        if passes(line):
            newest = LogLine.select(peewee.fn.MAX(LogLine.id)).where(LogLine.mac == mac, LogLine.file == f.name)
            found.append(Pending(line, newest.scalar()))
    return found


def line_filter(min_level: int | None, since: Since | None, grep: str | None) -> Callable[[LogLine], bool]:
    """The filters of ``query_lines``, for a line that is not in the table."""

    def passes(line: LogLine) -> bool:
        if min_level is not None and (line.level is None or line.level < min_level):
            return False
        if since is not None and (line.phone_time < since.phone if line.phone_time else line.received_at < since.utc):
            return False
        return not grep or grep.casefold() in line.message.casefold()

    return passes


def with_pending(rows: list[LogLine], pending: list[Pending], limited: bool) -> Iterator[tuple[LogLine, bool]]:
    """(line, incomplete): ``rows`` with each pending line right after its file's newest row, or at the end if
    that row is not among them. With a limit, a pending line whose file's newest row is older than the
    oldest row shown is not among the newest lines: left out."""
    if limited and rows:
        pending = [p for p in pending if p.after is None or p.after >= rows[0].id]
    placed = {p.after: p for p in pending if p.after is not None}
    for row in rows:
        yield row, False
        if row.id in placed:
            yield placed.pop(row.id).line, True
    for p in pending:
        if p.after is None or p.after in placed:
            yield p.line, True


def prune(db: peewee.Database, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Delete lines uploaded before ``now - older_than``, in batches so no transaction holds the lock long."""
    cutoff = (now or utcnow()) - older_than
    total = 0
    while True:
        with write_transaction(db):
            batch = LogLine.select(LogLine.id).where(LogLine.received_at < cutoff).limit(PRUNE_BATCH)
            deleted = LogLine.delete().where(LogLine.id.in_(batch)).execute()
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


_next_prune = 0.0


def prune_if_due(db: peewee.Database, retention_days: int) -> None:
    """The automatic prune: at most once per PRUNE_EVERY seconds in this process; 0 days disables it."""
    global _next_prune
    if retention_days <= 0 or time.monotonic() < _next_prune:
        return
    _next_prune = time.monotonic() + PRUNE_EVERY
    with connection(db):  # connects only when a prune is due, not after every upload
        removed = prune(db, dt.timedelta(days=retention_days))
    if removed:
        log.info("pruned %d log line(s) older than %d day(s)", removed, retention_days)
