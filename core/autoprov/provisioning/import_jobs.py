"""CSV imports from the admin UI run as background jobs, with their progress in the database.

An upload is stored as a job; a thread of the worker that received it checks every row (and, when asked,
imports them all or nothing with the same plan as ``autoprov import``), writing how many rows it has checked
and each error as it is found. Any worker can then show the progress, so a page served by another gunicorn
worker or Apache process sees the same job. One job runs at a time per database: the ``running`` column is
unique and set only while a job runs, so a second one is refused by the database itself, whichever worker
gets it. A job whose worker died (no progress written for ``STALE_AFTER``) is marked failed and no longer
blocks the next one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator

import peewee

from autoprov.adminui.tables import AuditEntry
from autoprov.db import BaseModel
from autoprov.provisioning import csv_import
from autoprov.schema import Migration, create_tables
from autoprov.site import Site
from autoprov.tables import utcnow

log = logging.getLogger(__name__)

# Without a word of progress for this long, a running job's worker is taken to be gone. The longest step
# without progress is writing a whole file in one transaction: seconds for 100,000 phones.
STALE_AFTER = dt.timedelta(minutes=2)
KEEP_FOR = dt.timedelta(days=1)  # finished jobs (and the CSV text they hold) are deleted after this
PROGRESS_EVERY = 0.25  # seconds between two progress writes
RUNNING = ("checking", "importing")


class ImportJob(BaseModel):
    """One uploaded CSV: checked, and imported if asked, in the background."""

    created = peewee.DateTimeField(default=utcnow)
    updated = peewee.DateTimeField(default=utcnow)  # the last progress written: a heartbeat
    username = peewee.CharField(max_length=64)
    ip = peewee.CharField(max_length=45, default="")
    source = peewee.CharField(max_length=255)  # the file's name, or "pasted text"
    pasted = peewee.BooleanField(default=False)
    text = peewee.TextField()  # the CSV; emptied once imported (it holds SIP passwords)
    # checking, importing (running); checked, imported, failed (finished)
    state = peewee.CharField(max_length=16)
    then_import = peewee.BooleanField(default=False)  # import as soon as the check finds no error
    running = peewee.IntegerField(null=True, unique=True)  # 1 while running: one running job per database
    rows_total = peewee.IntegerField(null=True)  # known once the file is counted
    rows_checked = peewee.IntegerField(default=0)
    error_count = peewee.IntegerField(default=0)
    problem = peewee.TextField(default="")  # why a job failed as a whole
    result = peewee.TextField(default="")  # what was imported

    @property
    def is_running(self) -> bool:
        return self.state in RUNNING


class ImportJobError(BaseModel):
    """One error of a job's file, stored as soon as it is found; ``line`` is None for the file as a whole."""

    job = peewee.ForeignKeyField(ImportJob, on_delete="CASCADE", index=True)
    line = peewee.IntegerField(null=True)
    message = peewee.TextField()


MIGRATIONS = [Migration("csv_import_jobs", 1, "CSV imports of the admin UI as background jobs",
                        create_tables(ImportJob, ImportJobError))]


class Busy(Exception):
    """Another import runs; ``job`` is it."""

    def __init__(self, job: ImportJob | None) -> None:
        super().__init__("another import is running")
        self.job = job


class NotReady(Exception):
    """The job cannot be imported (not checked, has errors, or already imported); the message says why."""


def running_job() -> ImportJob | None:
    return ImportJob.get_or_none(ImportJob.running == 1)


def _retire_stale(now: dt.datetime) -> None:
    stale = ImportJob.select(ImportJob.id).where((ImportJob.running == 1) & (ImportJob.updated < now - STALE_AFTER))
    for job_id in [j.id for j in stale]:
        log.warning("CSV import job %s made no progress for %s: marked failed", job_id, STALE_AFTER)
        ImportJob.update(state="failed", running=None, text="",
                         problem="The server stopped while this job ran; nothing was imported. Start it again.",
                         ).where((ImportJob.id == job_id) & (ImportJob.running == 1)).execute()
    old = ImportJob.select(ImportJob.id).where((ImportJob.running.is_null()) & (ImportJob.updated < now - KEEP_FOR))
    ImportJobError.delete().where(ImportJobError.job.in_(old)).execute()
    ImportJob.delete().where((ImportJob.running.is_null()) & (ImportJob.updated < now - KEEP_FOR)).execute()


def start_check(site: Site, username: str, ip: str, source: str, text: str, pasted: bool,
                then_import: bool = False) -> ImportJob:
    """Store the file as a job and check it in a background thread (then import it if ``then_import`` and
    every row is good). Raises :class:`Busy` while another job runs."""
    now = utcnow()
    _retire_stale(now)
    try:
        with site.db.atomic():
            job = ImportJob.create(created=now, updated=now, username=username[:64], ip=ip[:45],
                                   source=source[:255], pasted=pasted, text=text, state="checking",
                                   then_import=then_import, running=1)
    except peewee.IntegrityError:
        raise Busy(running_job()) from None
    _spawn(site, job.id)
    return job


def start_import(site: Site, job_id: int, username: str, ip: str) -> ImportJob:
    """Import a checked job's file: checked once more against the database as it is now, then written in one
    transaction, or nothing is. Raises :class:`Busy` or :class:`NotReady`."""
    now = utcnow()
    _retire_stale(now)
    try:
        with site.db.atomic():
            changed = (ImportJob.update(state="importing", running=1, updated=now, rows_checked=0, then_import=True,
                                        username=username[:64], ip=ip[:45])
                       .where((ImportJob.id == job_id) & (ImportJob.state == "checked")
                              & (ImportJob.error_count == 0)).execute())
    except peewee.IntegrityError:
        raise Busy(running_job()) from None
    if not changed:
        job = ImportJob.get_or_none(ImportJob.id == job_id)
        if job is None:
            raise NotReady("This import is gone (finished jobs are kept for a day); upload the file again.")
        if job.state == "imported":
            raise NotReady("This file was imported already.")
        if job.is_running:
            raise NotReady("This import is already running.")
        raise NotReady("Only a file checked without errors can be imported; correct it and check it again.")
    _spawn(site, job_id)
    return ImportJob.get_by_id(job_id)


def _spawn(site: Site, job_id: int) -> None:
    threading.Thread(target=run, args=(site, job_id), name=f"csv-import-{job_id}", daemon=True).start()


def run(site: Site, job_id: int) -> None:
    """The job's thread: check (and import) its file, writing progress as it goes."""
    with site.activated(), site.db.connection_context():
        try:
            _run(site, ImportJob.get_by_id(job_id))
        except Exception as exc:
            log.exception("CSV import job %s failed", job_id)
            ImportJob.update(state="failed", running=None, text="",
                             problem=f"The job failed ({type(exc).__name__}); nothing was imported. "
                                     "See the server log.").where(ImportJob.id == job_id).execute()


class _Progress:
    """Counts the rows the plan reads and writes the count and the new errors every PROGRESS_EVERY."""

    def __init__(self, job_id: int, plan: csv_import._Plan) -> None:
        self.job_id = job_id
        self.plan = plan
        self.checked = 0
        self.stored: Counter[str] = Counter()  # errors already in ImportJobError
        self.stored_count = 0
        self.next_write = time.monotonic() + PROGRESS_EVERY

    def rows(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        for row in rows:
            yield row
            self.checked += 1
            if time.monotonic() >= self.next_write:
                self.write()

    def write(self, **more: object) -> None:
        errors = self.plan.errors
        if len(errors) > self.stored_count:  # errors are only appended while rows are read
            new = errors[self.stored_count:]
            self.store(new)
            self.stored.update(new)
            self.stored_count = len(errors)
        # The header is a row of the file, not one to check.
        ImportJob.update(rows_checked=max(self.checked - 1, 0), error_count=self.stored_count, updated=utcnow(),
                         **more).where(ImportJob.id == self.job_id).execute()
        self.next_write = time.monotonic() + PROGRESS_EVERY

    def store(self, errors: list[str]) -> None:
        rows = [{"job": self.job_id, "line": _line(e), "message": _message(e)} for e in errors]
        for i in range(0, len(rows), 500):
            ImportJobError.insert_many(rows[i:i + 500]).execute()

    def finish(self, errors: list[str], **more: object) -> None:
        """Store the errors not stored yet (the whole-file checks add some at the end) and the final count."""
        missing = Counter(errors)
        missing.subtract(self.stored)
        self.store([e for e, n in missing.items() for _ in range(max(n, 0))])
        ImportJob.update(rows_checked=max(self.checked - 1, 0), error_count=len(errors), updated=utcnow(),
                         **more).where(ImportJob.id == self.job_id).execute()


def count_rows(text: str, name: str) -> int:
    """Records of the file below its header (quoted fields may span lines); raises ImportFailed."""
    return max(sum(1 for _ in csv_import._rows(text, name)) - 1, 0)


def _run(site: Site, job: ImportJob) -> None:
    name = job.source
    text = job.text
    ImportJobError.delete().where(ImportJobError.job == job.id).execute()  # an import checks the file again
    ImportJob.update(error_count=0, rows_checked=0).where(ImportJob.id == job.id).execute()
    plan = csv_import._Plan(site)
    progress = _Progress(job.id, plan)
    try:
        ImportJob.update(rows_total=count_rows(text, name), updated=utcnow()).where(ImportJob.id == job.id).execute()
        plan.read(progress.rows(csv_import._rows(text, name)), name)
    except csv_import.ImportFailed as exc:  # the file as a whole: nothing can be checked row by row
        progress.finish(exc.errors, state="checked" if job.state == "checking" else "failed", running=None)
        return
    if plan.errors or not job.then_import:
        progress.finish(plan.errors, running=None, state="failed" if job.state == "importing" else "checked")
        return
    progress.finish([], state="importing")
    try:
        with site.db.atomic():  # the rows, the audit entry and the job's outcome: all, or none of them
            result = plan.write(site.db)
            summary = (f"{result.extensions} extension(s), {result.phones} phone(s), {result.lines} line(s) "
                       f"from {progress.checked - 1} row(s)")
            # Not the file itself: it may hold SIP passwords.
            AuditEntry.create(username=job.username, ip=job.ip, action="csv import", target="",
                              details=f"{summary}; {name}; file sha256 {_sha256(text)}")
            ImportJob.update(state="imported", running=None, text="", updated=utcnow(),
                             result=f"Imported {result.extensions} extension(s), {result.phones} phone(s) and "
                                    f"{result.lines} line(s).").where(ImportJob.id == job.id).execute()
    except csv_import.ImportFailed as exc:
        progress.finish(exc.errors, state="failed", running=None)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _line(error: str) -> int | None:
    try:
        return csv_import._line_of(error)
    except ValueError:
        return None


def _message(error: str) -> str:
    return error.split(":", 1)[1].strip() if _line(error) is not None else error


def errors_of(job_id: int, after: int | None = None, limit: int | None = None) -> list[ImportJobError]:
    """The job's errors in the order of the file's lines (those of the whole file first); with ``after``, only
    those stored after the error of that id (0: all), in the order they were found, for a page that polls."""
    query = ImportJobError.select().where(ImportJobError.job == job_id)
    if after is not None:
        query = query.where(ImportJobError.id > after).order_by(ImportJobError.id)
    else:
        query = query.order_by(ImportJobError.line.is_null(False), ImportJobError.line, ImportJobError.id)
    if limit is not None:
        query = query.limit(limit)
    return list(query)
