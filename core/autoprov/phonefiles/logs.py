"""Storing uploaded log files line by line, each line exactly once, and querying and pruning them.

Phones upload a log two ways: the whole (growing) file each time, or HEAD for the stored length followed by
a PUT with ``Content-Range: bytes N-M/*`` that appends. Per (MAC, file) the server keeps how many bytes of
the current *generation* it has, a fingerprint of them, and the fingerprints at the lengths where recent
uploads ended (checkpoints). Then:

- a body that starts at the stored length is appended;
- a body that starts earlier (a whole-file PUT starts at 0) is checked against the fingerprint over the
  overlap: if it matches, only the tail past the stored length is new; a whole-file PUT that does not match
  is a rotated file and starts a new generation; an appending PUT that does not match gets 409;
- a body that lies wholly inside what is stored (a late or repeated upload) adds nothing;
- an appending PUT that starts after the stored length gets 416 (a gap), with the stored length.

The last line of a file without its newline is kept pending (counted in the stored length, not yet a row)
until a later upload completes it, or the file rotates. An upload cut off half-way stores the complete lines
it delivered and drops the fragment after them; the stored length tells the phone where to go on.

The body is spooled (memory, then a temporary file) before the database is touched, so a slow phone never
holds the write lock; then one transaction, with that file's state row locked, stores it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any

import peewee
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from autoprov.phonefiles.logparse import clean_text, parse_line
from autoprov.phonefiles.tables import LogFile, LogLine
from autoprov.phonefiles.transactions import locked, write_transaction
from autoprov.provisioning.tables import utcnow

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # bodies larger than this go to a temporary file while they arrive
BATCH = 2000  # rows per INSERT
MAX_LINE_BYTES = 16 * 1024  # a "line" that never ends is stored in pieces of this size rather than held
KEEP_CHECKPOINTS = 64
PRUNE_BATCH = 10_000
PRUNE_EVERY = 3600.0  # seconds between automatic prunes, per process

_ROW_FIELDS = [
    LogLine.mac, LogLine.file, LogLine.generation, LogLine.received_at, LogLine.parsed, LogLine.stamp,
    LogLine.phone_time, LogLine.uptime, LogLine.module, LogLine.level, LogLine.missed, LogLine.message,
]


class Fingerprint:
    """CRC-32 and Adler-32 of a byte stream. Both can be extended from a stored value, which a hash object
    cannot, so an appended upload extends the fingerprint of what came before."""

    def __init__(self, value: str = "") -> None:
        self.crc, self.adler = (int(value[:8], 16), int(value[8:], 16)) if value else (0, 1)

    def update(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.adler = zlib.adler32(data, self.adler)

    @property
    def value(self) -> str:
        return f"{self.crc:08x}{self.adler:08x}"


EMPTY = Fingerprint().value


@dataclass
class Body:
    """An upload body, spooled. ``complete`` is False if the client went away before sending all of it."""

    file: IO[bytes]
    size: int
    complete: bool
    last_newline: int  # offset just past the last b"\n" (0 if none)

    @property
    def usable(self) -> int:
        """Bytes to store: all of a complete body; of a cut-off one, only up to its last complete line."""
        return self.size if self.complete else self.last_newline

    def close(self) -> None:
        self.file.close()


def read_body(stream: IO[bytes], limit: int, expected: int | None) -> Body:
    """Spool a request body in chunks (never whole in memory); RequestEntityTooLarge past ``limit`` bytes.

    ``expected`` is the Content-Length: a server that handles the body itself (gunicorn sets
    ``wsgi.input_terminated``) just ends the stream early when the client goes away, so compare."""
    spool: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (Body owns it)
    size = last_newline = 0
    complete = True
    try:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise RequestEntityTooLarge(f"a log upload may be at most {limit} bytes")
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                last_newline = size - len(chunk) + nl + 1
            spool.write(chunk)
    except (ClientDisconnected, OSError):
        complete = False
    except BaseException:
        spool.close()
        raise
    if expected is not None and size < expected:
        complete = False
    spool.seek(0)
    return Body(spool, size, complete, last_newline)


class RangeRefused(Exception):
    """An appending upload that does not fit what is stored; ``stored`` tells the phone where to resume."""

    def __init__(self, status: int, stored: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.stored = stored


@dataclass(frozen=True)
class Stored:
    lines: int  # rows added
    length: int  # stored length of the file's current generation
    generation: int


def stored_length(mac: str, name: str) -> int | None:
    """What HEAD reports: bytes of the current generation received, or None for a file never uploaded."""
    row = LogFile.select(LogFile.received).where(LogFile.mac == mac, LogFile.name == name).first()
    return None if row is None else row.received


def ingest(db: peewee.Database, mac: str, name: str, body: Body, start: int | None, now: dt.datetime) -> Stored:
    """Store an upload of ``<mac>-<name>.log``: ``start`` is the Content-Range start, None for a whole file."""
    with write_transaction(db):
        LogFile.insert(mac=mac, name=name, fingerprint=EMPTY).on_conflict_ignore().execute()
        state = locked(LogFile.select().where(LogFile.mac == mac, LogFile.name == name), db).get()
        writer = _Writer(db, state, now)
        offset = _new_data_offset(writer, body, start)
        if offset is not None:
            writer.append(body, offset, body.usable)
        writer.save()
        return Stored(writer.added, state.received, state.generation)


def _new_data_offset(writer: _Writer, body: Body, start: int | None) -> int | None:
    """Where the new data begins in ``body`` (after rotating, if the file was rotated); None: nothing new."""
    stored, usable = writer.state.received, body.usable
    begin = start or 0
    if begin > stored:
        raise RangeRefused(416, stored, f"the upload starts at byte {begin}, after the {stored} bytes stored")
    if begin == stored:
        return 0
    base = writer.checkpoints.get(begin)
    if base is None:  # only an appending upload can start elsewhere than 0
        raise RangeRefused(409, stored, f"the upload starts at byte {begin}, inside what is stored; HEAD for it")
    overlap = stored - begin
    seen = _fingerprint(body.file, min(overlap, usable), Fingerprint(base))
    if usable < overlap:
        # Wholly inside what is stored: a repeated or late upload (or a cut-off one, which cannot be checked).
        if not body.complete or writer.checkpoints.get(begin + usable) == seen.value:
            return None
    elif seen.value == writer.state.fingerprint:
        return overlap
    if start is not None:
        raise RangeRefused(409, stored, "the upload does not match what is stored; HEAD for the length")
    writer.rotate()
    return 0


def _fingerprint(stream: IO[bytes], length: int, fp: Fingerprint) -> Fingerprint:
    stream.seek(0)
    while length > 0:
        chunk = stream.read(min(CHUNK, length))
        if not chunk:
            break
        fp.update(chunk)
        length -= len(chunk)
    return fp


class _Writer:
    """Appends bytes to a file's current generation: lines become rows, in batches."""

    def __init__(self, db: peewee.Database, state: LogFile, now: dt.datetime) -> None:
        self.db = db
        self.state = state
        self.now = now
        self.fp = Fingerprint(state.fingerprint)
        self.pending = bytes(state.pending or b"")
        self.checkpoints = {int(k): v for k, v in json.loads(state.checkpoints or "{}").items()}
        self.checkpoints[0] = EMPTY
        self.rows: list[tuple[Any, ...]] = []
        self.added = 0

    def append(self, body: Body, start: int, end: int) -> None:
        body.file.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = body.file.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            self.fp.update(chunk)
            self.state.received += len(chunk)
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            for line in lines:
                self._row(line)
            while len(self.pending) > MAX_LINE_BYTES:  # same pieces as _row cuts a complete line into
                self._row(self.pending[:MAX_LINE_BYTES])
                self.pending = self.pending[MAX_LINE_BYTES:]
        self.checkpoints[self.state.received] = self.fp.value

    def rotate(self) -> None:
        """The phone's file is not the one stored: close this generation (its unfinished line becomes a row)."""
        if self.pending:
            self._row(self.pending)
        self._flush()
        self.state.generation += 1
        self.state.received = 0
        self.fp = Fingerprint()
        self.pending = b""
        self.checkpoints = {0: EMPTY}

    def save(self) -> None:
        self._flush()
        state = self.state
        state.fingerprint = self.fp.value
        state.pending = self.pending
        recent = sorted(self.checkpoints)[-KEEP_CHECKPOINTS:]
        state.checkpoints = json.dumps({str(k): self.checkpoints[k] for k in recent})
        state.updated = self.now
        state.save()

    def _row(self, raw: bytes) -> None:
        while len(raw) > MAX_LINE_BYTES:
            self._row(raw[:MAX_LINE_BYTES])
            raw = raw[MAX_LINE_BYTES:]
        rec = parse_line(clean_text(raw.removesuffix(b"\r")), self.now)
        s = self.state
        self.rows.append((
            s.mac, s.name, s.generation, self.now, rec.parsed, rec.stamp, rec.phone_time, rec.uptime,
            rec.module, rec.level, rec.missed, rec.message,
        ))
        if len(self.rows) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            insert_rows(self.db, self.rows)
            self.added += len(self.rows)
            self.rows = []


def insert_rows(db: peewee.Database, rows: list[tuple[Any, ...]]) -> None:
    """Insert log rows (in ``_ROW_FIELDS`` order) with the driver's bulk call. Building the same INSERT with
    peewee's query builder costs five times the rest of ingestion together; values are those peewee would
    pass (datetimes, bools, None)."""
    quote = db.quote
    table = f"{quote[0]}{LogLine._meta.table_name}{quote[1]}"
    columns = ", ".join(f"{quote[0]}{f.column_name}{quote[1]}" for f in _ROW_FIELDS)
    cursor = db.cursor()
    if isinstance(db, peewee.PostgresqlDatabase):
        from psycopg2.extras import execute_values  # one statement per page, not one per row

        execute_values(cursor, f"INSERT INTO {table} ({columns}) VALUES %s", rows, page_size=BATCH)
    else:
        marks = ", ".join([db.param] * len(_ROW_FIELDS))
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


# --- Reading and pruning ------------------------------------------------------------------------------

def query_lines(
    mac: str,
    file: str | None = None,
    min_level: int | None = None,
    since: dt.datetime | None = None,
    grep: str | None = None,
    limit: int | None = None,
) -> Iterator[LogLine]:
    """One phone's lines, oldest first; ``limit`` keeps the newest ones. ``since`` compares the phone's own
    time where the line has one, else the upload time."""
    query = LogLine.select().where(LogLine.mac == mac)
    if file:
        query = query.where(LogLine.file == file)
    if min_level is not None:
        query = query.where(LogLine.level >= min_level)
    if since is not None:
        query = query.where(peewee.fn.COALESCE(LogLine.phone_time, LogLine.received_at) >= since)
    if grep:
        query = query.where(LogLine.message.contains(grep))
    if limit:
        newest = list(query.order_by(LogLine.id.desc()).limit(limit))
        yield from reversed(newest)
    else:
        yield from query.order_by(LogLine.id).iterator()


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
    removed = prune(db, dt.timedelta(days=retention_days))
    if removed:
        log.info("pruned %d log line(s) older than %d day(s)", removed, retention_days)
