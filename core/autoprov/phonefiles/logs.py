"""Storing uploaded log files line by line, each line exactly once (reading them back: ``logquery``).

Phones upload a log two ways: the whole (growing) file each time, or HEAD for the stored length followed by
a PUT with ``Content-Range: bytes N-M/*`` that appends. Uploads may arrive late or out of order (a retry, or
several uploads in flight at once). Per (MAC, file) the server keeps, for the current *generation* (the file
as the phone has it now) and the KEEP_GENERATIONS before it: how many bytes it has, a fingerprint of them,
the fingerprints at the lengths where recent uploads ended (checkpoints), and its first HEAD_BYTES bytes.

- An appending PUT must fit the current generation: one that starts at the stored length is appended; one
  that starts earlier, at a checkpoint, and matches, adds only what is past the stored length (or nothing,
  if it lies wholly inside); one that starts after the stored length gets 416, any other 409.
- A whole file is matched against the generations, newest first. One whose start matches all of a
  generation *extends* it: what follows is appended to that generation. One shorter than a generation that
  matches its head and every checkpoint it spans *repeats* it (a late or repeated upload): it adds nothing.
  A whole file that matches no generation is a new file on the phone (rotated, or a new boot's boot.log)
  and starts a new generation.

The head tells files apart because each line starts with a time stamp: a new file practically never starts
with the same 4 KiB as an earlier one. Kept raw, it compares a short body exactly; past it, only the
checkpoints a body spans are compared. A new file identical to the start of the previous one is taken for a
late copy of it until it grows past it or differs from it; it is then stored whole (late, not lost).

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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import IO, Any

import peewee
from werkzeug.exceptions import RequestEntityTooLarge

from autoprov.bulk import insert_rows
from autoprov.devices import LogRecord
from autoprov.phonefiles.tables import LogFile, LogGeneration, LogLine
from autoprov.phonefiles.transactions import locked, write_transaction

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # bodies larger than this go to a temporary file while they arrive
BATCH = 2000  # rows per INSERT
MAX_LINE_BYTES = 16 * 1024  # a "line" that never ends is stored in pieces of this size rather than held
KEEP_CHECKPOINTS = 64
KEEP_GENERATIONS = 3  # earlier generations of a file kept to recognise late uploads of them
HEAD_BYTES = 4096  # kept raw per generation: some 50 lines, each with its own time stamp

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

    ``expected`` is the Content-Length: a larger one is refused before reading. A server that handles the body
    itself (gunicorn sets ``wsgi.input_terminated``) just ends the stream early when the client goes away, so
    compare. ``stream`` must not be cut at the limit itself (Werkzeug's max_content_length refuses a chunked
    body of exactly the limit): reading past the limit is what tells a body that is too large."""
    too_large = RequestEntityTooLarge(f"a log upload may be at most {limit} bytes")
    if expected is not None and expected > limit:
        raise too_large
    spool: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (Body owns it)
    size = last_newline = 0
    complete = True
    try:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                last_newline = size - len(chunk) + nl + 1
            spool.write(chunk)
    except RequestEntityTooLarge:
        spool.close()
        raise
    except Exception:
        # The client went away. Werkzeug says ClientDisconnected; gunicorn raises its own errors (NoMoreData, or
        # ChunkMissingTerminator for a chunked body without its last chunk), after dropping the bytes it had
        # buffered in that read: for a chunked body, the complete lines after the last full read are lost.
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


LineParser = Callable[[str, dt.datetime], LogRecord]


def clean_text(raw: bytes) -> str:
    """Bytes of one line as text: invalid UTF-8 replaced, NUL replaced (PostgreSQL text cannot hold it)."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def unparsed(text: str, uploaded: dt.datetime) -> LogRecord:
    """A line kept whole, for a phone whose model is not known."""
    return LogRecord(parsed=False, message=text)


def ingest(db: peewee.Database, mac: str, name: str, body: Body, start: int | None, now: dt.datetime,
           parse: LineParser = unparsed) -> Stored:
    """Store an upload of ``<mac>-<name>.log``: ``start`` is the Content-Range start, None for a whole file;
    ``parse`` is the phone's model's line parser."""
    with write_transaction(db):
        LogFile.insert(mac=mac, name=name, fingerprint=EMPTY).on_conflict_ignore().execute()
        state = locked(LogFile.select().where(LogFile.mac == mac, LogFile.name == name), db).get()
        writer = _Writer(db, state, now, parse)
        if start is None:
            offset = _whole_file_offset(writer, body)
        else:
            offset = _appended_offset(writer.current, body, start)
        if offset is not None:
            writer.append(body, offset, body.usable)
        writer.save()
        return Stored(writer.added, state.received, state.generation)


@dataclass
class Generation:
    """What is kept of one generation of a file to recognise an upload of it: its length, the fingerprint of
    all of it and at the lengths where uploads ended, and its first HEAD_BYTES bytes (raw, so a body shorter
    than that is compared exactly)."""

    number: int
    received: int
    fingerprint: str
    checkpoints: dict[int, str]
    head: bytes

    @property
    def head_known(self) -> bool:
        """False for a file stored before heads were kept: only its checkpoints can recognise a late upload."""
        return len(self.head) == min(self.received, HEAD_BYTES)

    @staticmethod
    def of(row: LogFile | LogGeneration, number: int) -> Generation:
        checkpoints = {int(k): v for k, v in json.loads(row.checkpoints or "{}").items()}
        checkpoints[0] = EMPTY
        return Generation(number, row.received, row.fingerprint or EMPTY, checkpoints, bytes(row.head or b""))

    def checkpoints_json(self) -> str:
        recent = sorted(self.checkpoints)[-KEEP_CHECKPOINTS:]
        return json.dumps({str(k): self.checkpoints[k] for k in recent})


def _appended_offset(gen: Generation, body: Body, begin: int) -> int | None:
    """Where the new data begins in an appending upload (``Content-Range`` from ``begin``); None: nothing new.
    It must fit the current generation where it can be checked: a phone that appends knows the stored length."""
    stored, usable = gen.received, body.usable
    if begin > stored:
        raise RangeRefused(416, stored, f"the upload starts at byte {begin}, after the {stored} bytes stored")
    if begin == stored:
        return 0
    base = gen.checkpoints.get(begin)
    if base is None:
        raise RangeRefused(409, stored, f"the upload starts at byte {begin}, inside what is stored; HEAD for it")
    overlap = stored - begin
    seen = _fingerprint(body.file, min(overlap, usable), Fingerprint(base))
    if usable < overlap:
        # Wholly inside what is stored: a repeated or late upload (or a cut-off one, which cannot be checked).
        if not body.complete or gen.checkpoints.get(begin + usable) == seen.value:
            return None
    elif seen.value == gen.fingerprint:
        return overlap
    raise RangeRefused(409, stored, "the upload does not match what is stored; HEAD for the length")


def _whole_file_offset(writer: _Writer, body: Body) -> int | None:
    """A whole file is matched against the generations known, newest first: one it extends gets the rest
    appended, one it repeats (a late or repeated upload) gets nothing; a file matching none is new."""
    for gen in writer.generations():
        marks = _fingerprints_at(body, {gen.received, *gen.checkpoints})
        if marks.get(gen.received) == gen.fingerprint:
            writer.switch_to(gen)
            return gen.received
        if body.usable < gen.received and _repeats(gen, body, marks):
            return None
    writer.rotate()
    return 0


def _repeats(gen: Generation, body: Body, marks: dict[int, str]) -> bool:
    """Whether a body shorter than ``gen`` is the start of it: every checkpoint it spans matches, and so does
    the head. The bytes past the head and the last checkpoint are not compared (nothing is kept to compare
    them with); a new file that starts with the same HEAD_BYTES as the old one is all that would fool this."""
    if any(marks[at] != value for at, value in gen.checkpoints.items() if at <= body.usable):
        return False
    if not gen.head_known:
        return body.usable in gen.checkpoints
    length = min(body.usable, HEAD_BYTES)
    body.file.seek(0)
    return body.file.read(length) == gen.head[:length]


def _fingerprints_at(body: Body, offsets: set[int]) -> dict[int, str]:
    """The fingerprint of the body's first N bytes, for each N of ``offsets`` within its usable part."""
    wanted = sorted(at for at in offsets if at <= body.usable)
    fp, done, marks = Fingerprint(), 0, {}
    body.file.seek(0)
    for at in wanted:
        _fingerprint_more(body.file, at - done, fp)
        done = at
        marks[at] = fp.value
    return marks


def _fingerprint(stream: IO[bytes], length: int, fp: Fingerprint) -> Fingerprint:
    stream.seek(0)
    return _fingerprint_more(stream, length, fp)


def _fingerprint_more(stream: IO[bytes], length: int, fp: Fingerprint) -> Fingerprint:
    """Extend ``fp`` by the next ``length`` bytes of ``stream``."""
    while length > 0:
        chunk = stream.read(min(CHUNK, length))
        if not chunk:
            break
        fp.update(chunk)
        length -= len(chunk)
    return fp


class _Writer:
    """Appends bytes to a generation of a file (the current one, or an earlier one a late upload extends):
    lines become rows, in batches."""

    def __init__(self, db: peewee.Database, state: LogFile, now: dt.datetime, parse: LineParser) -> None:
        self.db = db
        self.parse = parse
        self.state = state
        self.now = now
        self.current = Generation.of(state, state.generation)
        self.target = self.current
        self.fp = Fingerprint(self.current.fingerprint)
        self.pending = bytes(state.pending or b"")
        self.rows: list[tuple[Any, ...]] = []
        self.added = 0

    def generations(self) -> Iterator[Generation]:
        """The current generation, then the earlier ones kept, newest first (read only if asked for)."""
        yield self.current
        s = self.state
        rows = LogGeneration.select().where(LogGeneration.mac == s.mac, LogGeneration.name == s.name)
        for row in rows.order_by(LogGeneration.generation.desc()):
            yield Generation.of(row, row.generation)

    def switch_to(self, gen: Generation) -> None:
        """Append to ``gen`` from now on. An earlier generation's unfinished line was stored when it rotated;
        what a late upload adds to it starts after that (the rest of such a line becomes a row of its own)."""
        if gen is not self.target:
            self.target = gen
            self.fp = Fingerprint(gen.fingerprint)
            self.pending = b""

    def append(self, body: Body, start: int, end: int) -> None:
        gen = self.target
        body.file.seek(start)
        remaining = end - start
        while remaining > 0:
            chunk = body.file.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            if gen.head_known and gen.received < HEAD_BYTES:
                gen.head += chunk[: HEAD_BYTES - gen.received]
            self.fp.update(chunk)
            gen.received += len(chunk)
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            for line in lines:
                self._row(line)
            while len(self.pending) > MAX_LINE_BYTES:  # same pieces as _row cuts a complete line into
                self._row(self.pending[:MAX_LINE_BYTES])
                self.pending = self.pending[MAX_LINE_BYTES:]
        gen.fingerprint = self.fp.value
        gen.checkpoints[gen.received] = gen.fingerprint

    def rotate(self) -> None:
        """The phone's file is none of those stored: keep the current generation among the earlier ones (its
        unfinished line becomes a row) and start a new one."""
        if self.pending:
            self._row(self.pending)
        self._flush()
        old = self.current
        s = self.state
        LogGeneration.insert(
            mac=s.mac, name=s.name, generation=old.number, received=old.received, fingerprint=old.fingerprint,
            checkpoints=old.checkpoints_json(), head=old.head,
        ).execute()
        LogGeneration.delete().where(
            LogGeneration.mac == s.mac, LogGeneration.name == s.name,
            LogGeneration.generation <= old.number - KEEP_GENERATIONS,
        ).execute()
        self.current = self.target = Generation(old.number + 1, 0, EMPTY, {0: EMPTY}, b"")
        self.fp = Fingerprint()
        self.pending = b""

    def save(self) -> None:
        if self.target is not self.current:
            self._save_earlier(self.target)
        self._flush()
        state, gen = self.state, self.current
        state.generation = gen.number
        state.received = gen.received
        state.fingerprint = gen.fingerprint
        state.checkpoints = gen.checkpoints_json()
        state.head = gen.head
        if self.target is self.current:
            state.pending = self.pending
        state.updated = self.now
        state.save()

    def _save_earlier(self, gen: Generation) -> None:
        """An earlier generation is not the phone's file any more: its unfinished line is stored now."""
        if self.pending:
            self._row(self.pending)
        LogGeneration.update(
            received=gen.received, fingerprint=gen.fingerprint, checkpoints=gen.checkpoints_json(), head=gen.head,
        ).where(
            LogGeneration.mac == self.state.mac, LogGeneration.name == self.state.name,
            LogGeneration.generation == gen.number,
        ).execute()

    def _row(self, raw: bytes) -> None:
        while len(raw) > MAX_LINE_BYTES:
            self._row(raw[:MAX_LINE_BYTES])
            raw = raw[MAX_LINE_BYTES:]
        rec = self.parse(clean_text(raw.removesuffix(b"\r")), self.now)
        s = self.state
        self.rows.append((
            s.mac, s.name, self.target.number, self.now, rec.parsed, rec.stamp, rec.phone_time, rec.uptime,
            rec.module, rec.level, rec.missed, rec.message,
        ))
        if len(self.rows) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            insert_rows(self.db, LogLine, _ROW_FIELDS, self.rows)
            self.added += len(self.rows)
            self.rows = []


