"""Core tables: extensions (SIP accounts), phones and their lines, and sightings of every phone seen.

Every feature reads them; they live in core so that no feature imports another to reach them.
"""

from __future__ import annotations

import datetime as dt

import peewee
from playhouse.migrate import SchemaMigrator

from autoprov import hookimpl
from autoprov.atrest import SecretField
from autoprov.db import BaseModel
from autoprov.revision import create_counter, watch_tables
from autoprov.schema import Migration, add_column, create_tables


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def display_name(first: str, last: str, user_id: str) -> str:
    """What a phone shows for an extension: its names, else its number."""
    return " ".join(p for p in (first, last) if p) or user_id


class Extension(BaseModel):
    """A SIP account. ``secret`` is the SIP password: it is sent only in that phone's own config."""

    user_id = peewee.CharField(max_length=80, unique=True)  # the extension number / SIP user
    secret = SecretField(max_length=1024)  # up to 128 characters, encrypted when [secrets] key_file is set
    server = peewee.CharField(max_length=255, null=True)  # None: the site's [sip] server
    port = peewee.IntegerField(null=True)
    first_name = peewee.CharField(max_length=100, default="")
    last_name = peewee.CharField(max_length=100, default="")
    mailbox = peewee.CharField(max_length=80, default="")
    in_directory = peewee.BooleanField(default=True)

    @property
    def display_name(self) -> str:
        return display_name(self.first_name, self.last_name, self.user_id)


class Phone(BaseModel):
    mac = peewee.CharField(max_length=12, unique=True)  # normalised: 12 lowercase hex digits
    model = peewee.CharField(max_length=100)
    time_zone = peewee.CharField(max_length=64, null=True)  # None: the site's time zone
    notes = peewee.TextField(default="")
    created = peewee.DateTimeField(default=utcnow)


class PhoneLine(BaseModel):
    phone = peewee.ForeignKeyField(Phone, backref="lines", on_delete="CASCADE")
    position = peewee.IntegerField()  # 1-based line key
    extension = peewee.ForeignKeyField(Extension, backref="phone_lines", on_delete="RESTRICT")

    class Meta:
        indexes = ((("phone", "position"), True),)


class Sighting(BaseModel):
    """One row per (MAC, User-Agent) the server has seen; MAC is '' when the request did not carry one."""

    mac = peewee.CharField(max_length=12, default="")
    user_agent = peewee.CharField(max_length=255)
    model = peewee.CharField(max_length=100, null=True)  # what the User-Agent says, if a plugin knows it
    firmware = peewee.CharField(max_length=64, null=True)
    ip = peewee.CharField(max_length=45, null=True)  # the latest request's
    first_ip = peewee.CharField(max_length=45, null=True)  # the first request's: later ones never change it
    flag = peewee.TextField(default="")  # first contact from a far network or another User-Agent family
    last_path = peewee.CharField(max_length=255, default="")
    problem = peewee.TextField(default="")  # e.g. a model mismatch, for the admin to see
    first_seen = peewee.DateTimeField(default=utcnow)
    last_seen = peewee.DateTimeField(default=utcnow, index=True)
    count = peewee.IntegerField(default=1)
    served_etag = peewee.CharField(max_length=64, null=True)  # of the phone config last served to it
    etag_since = peewee.DateTimeField(null=True)  # when it was first served that one

    class Meta:
        indexes = ((("mac", "user_agent"), True),)


def _change_counter(db: peewee.Database, migrator: SchemaMigrator) -> None:
    create_counter(db)
    watch_tables(db, Extension, Phone, PhoneLine)
    add_column(db, migrator, Sighting.served_etag)
    add_column(db, migrator, Sighting.etag_since)


def _first_contact(db: peewee.Database, migrator: SchemaMigrator) -> None:
    add_column(db, migrator, Sighting.first_ip)
    add_column(db, migrator, Sighting.flag)
    Sighting.update(first_ip=Sighting.ip).where(Sighting.first_ip.is_null()).execute()


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [
        Migration(
            "core", 1, "extensions, phones, lines, sightings", create_tables(Extension, Phone, PhoneLine, Sighting)
        ),
        Migration("core", 2, "a change counter for cached renders; the ETag each phone last fetched",
                  _change_counter),
        Migration("core", 3, "sightings keep their first address and flag a first contact from afar",
                  _first_contact),
    ]
