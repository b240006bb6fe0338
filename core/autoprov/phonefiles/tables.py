"""Tables for what phones upload. Everything keys on the MAC string, not on ``Phone``: a phone that is not
(yet) in the database still has its uploads kept."""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator

from autoprov import hookimpl
from autoprov.db import BaseModel
from autoprov.revision import watch_tables
from autoprov.schema import Migration, add_column, create_tables
from autoprov.tables import utcnow


class LogFile(BaseModel):
    """Upload state of one phone's log file (``<mac>-<name>.log``): what has been received, so every line is
    stored exactly once however the phone uploads (see ``autoprov.phonefiles.logs``)."""

    mac = peewee.CharField(max_length=12)
    name = peewee.CharField(max_length=64)  # "app", "boot", ...
    generation = peewee.IntegerField(default=1)  # +1 when the phone's file was rotated (content no longer a prefix)
    received = peewee.BigIntegerField(default=0)  # bytes of this generation received, pending included
    fingerprint = peewee.CharField(max_length=16, default="")  # of those bytes; see logs.Fingerprint
    checkpoints = peewee.TextField(default="{}")  # JSON {length: fingerprint} where recent uploads ended
    pending = peewee.BlobField(default=b"")  # the last line so far, no newline yet
    head = peewee.BlobField(default=b"")  # its first bytes (logs.HEAD_BYTES), to recognise a late upload
    updated = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("mac", "name"), True),)


class LogGeneration(BaseModel):
    """One of the few generations of a log file before the current one, as ``LogFile`` held it when the
    file rotated: enough to recognise a late upload of it (see ``autoprov.phonefiles.logs``)."""

    mac = peewee.CharField(max_length=12)
    name = peewee.CharField(max_length=64)
    generation = peewee.IntegerField()
    received = peewee.BigIntegerField()
    fingerprint = peewee.CharField(max_length=16)
    checkpoints = peewee.TextField(default="{}")
    head = peewee.BlobField(default=b"")

    class Meta:
        indexes = ((("mac", "name", "generation"), True),)


class LogLine(BaseModel):
    """One line of a phone's log. Unparsed lines have ``parsed`` False and the whole line in ``message``."""

    id = peewee.BigAutoField()
    mac = peewee.CharField(max_length=12)
    file = peewee.CharField(max_length=64)
    generation = peewee.IntegerField()
    received_at = peewee.DateTimeField(index=True)  # upload time (UTC): pruning and the fallback for --since
    parsed = peewee.BooleanField()
    stamp = peewee.CharField(max_length=32, null=True)  # the time field as the phone wrote it
    phone_time = peewee.DateTimeField(null=True)  # decoded wall-clock time, phone's local zone
    uptime = peewee.DoubleField(null=True)  # seconds since boot, for lines written before the clock was set
    module = peewee.CharField(max_length=16, null=True)
    level = peewee.SmallIntegerField(null=True)  # 0 debug .. 6 fatal; None for "*" and for unparsed lines
    missed = peewee.IntegerField(null=True)
    message = peewee.TextField()

    class Meta:
        # One phone's lines in order, with or without a file: stays fast with millions of lines.
        indexes = ((("mac", "id"), False), (("mac", "file", "id"), False))


class StoredFile(BaseModel):
    """One version of a file a phone wrote (overrides, contacts). The newest version is what is served;
    ``content`` None is a version that clears the file (the admin's ``clear``)."""

    mac = peewee.CharField(max_length=12)
    directory = peewee.CharField(max_length=32)  # "overrides" or "contacts"
    name = peewee.CharField(max_length=64)  # the {name} of the model's upload rule; contacts: CONTACTS_NAME
    version = peewee.IntegerField()
    content = peewee.BlobField(null=True)
    size = peewee.IntegerField(default=0)
    sha256 = peewee.CharField(max_length=64, default="")
    stored_at = peewee.DateTimeField(default=utcnow)
    source = peewee.CharField(max_length=300, default="")  # who wrote it: IP and User-Agent, or "admin"
    # A contacts upload sorted out when it arrived (JSON, see ``directory.Classified``); None for overrides,
    # clears, and contacts stored before autoprov sorted them out.
    classified = peewee.TextField(null=True)

    class Meta:
        indexes = ((("mac", "directory", "name", "version"), True),)


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [
        Migration(
            "phonefiles", 1, "phone log lines and upload state, stored overrides and contacts",
            create_tables(LogFile, LogLine, StoredFile),
        ),
        Migration("phonefiles", 2, "log file heads and earlier generations, to recognise late uploads", _add_heads),
        Migration("phonefiles", 3, "contacts uploads sorted out into company and personal entries as they arrive",
                  lambda db, migrator: add_column(db, migrator, StoredFile.classified)),
        Migration("phonefiles", 4, "uploaded contacts change what phones are served (the change counter)",
                  lambda db, migrator: watch_tables(db, StoredFile)),
    ]


def _add_heads(db: peewee.Database, migrator: SchemaMigrator) -> None:
    add_column(db, migrator, LogFile.head)
    db.create_tables([LogGeneration], safe=True)
