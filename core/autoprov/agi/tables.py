"""The tables call scripts read: caller-ID names and incoming-call routes."""

from __future__ import annotations

import re

import peewee

from autoprov import hookimpl
from autoprov.db import BaseModel
from autoprov.schema import Migration, create_tables

_NUMBER_NOISE = re.compile(r"[\s().\-/]")


def normalize_number(number: str) -> str:
    """A caller ID as stored and looked up: ``(555) 123-4567`` and ``555.123.4567`` are ``5551234567``."""
    return _NUMBER_NOISE.sub("", number or "")


_CALLER_NUMBER = re.compile(r"\+?[0-9A-Za-z*#]{1,64}\Z")


def caller_number(value: str) -> str | None:
    """``value`` normalized if it can be a caller-ID number of the table, else None (nothing can match it:
    a byte that is not UTF-8, which could not even be sent to the database, or any other stray character)."""
    number = normalize_number(value)
    return number if _CALLER_NUMBER.match(number) else None


class CallerName(BaseModel):
    """Caller-ID substitution: calls from ``number`` show ``name``."""

    number = peewee.CharField(max_length=64, unique=True)
    name = peewee.CharField(max_length=80)


class Route(BaseModel):
    """Where an incoming call goes: the first matching route (by priority) whose time rule holds.

    ``pattern`` is a DID (``5551000``) or an Asterisk pattern (``_555XXXX``, ``_X.``). ``dest_type`` is
    ``extension`` (``1001``), ``group`` (``1001,1002``: rung together) or ``external`` (``+15551234``).
    The optional time rule is ``days`` (``mon-fri``, ``sat,sun``; empty for every day) and
    ``start``-``end`` (``HH:MM``; a window past midnight is allowed) in ``time_zone`` (empty: the site's).
    ``fallback_type``/``fallback`` is dialled when the destination does not answer.
    """

    pattern = peewee.CharField(max_length=64, index=True)
    priority = peewee.IntegerField(default=100)
    dest_type = peewee.CharField(max_length=16)
    destination = peewee.CharField(max_length=255)
    ring_timeout = peewee.IntegerField(default=30)
    days = peewee.CharField(max_length=64, default="")
    start = peewee.CharField(max_length=5, default="")
    end = peewee.CharField(max_length=5, default="")
    time_zone = peewee.CharField(max_length=64, default="")
    fallback_type = peewee.CharField(max_length=16, default="")
    fallback = peewee.CharField(max_length=255, default="")
    description = peewee.CharField(max_length=255, default="")


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [
        Migration(
            component="agi",
            version=1,
            description="caller-ID names and incoming-call routes",
            apply=create_tables(CallerName, Route),
        )
    ]
