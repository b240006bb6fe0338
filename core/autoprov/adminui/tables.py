"""The admin UI's tables: admin accounts, failed logins (for throttling), the audit trail, and the key that
signs session cookies."""

from __future__ import annotations

import datetime as dt

import peewee

from autoprov import hookimpl
from autoprov.db import BaseModel
from autoprov.schema import Migration, create_tables


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class AdminUser(BaseModel):
    username = peewee.CharField(max_length=64, unique=True)
    password_hash = peewee.CharField(max_length=255)  # argon2id, in the PHC string format
    created = peewee.DateTimeField(default=utcnow)
    last_login = peewee.DateTimeField(null=True)
    # Part of every session cookie: logout and a password change add one, which ends every open session.
    session_epoch = peewee.IntegerField(default=0)


class LoginFailure(BaseModel):
    """One failed login; recent ones (by user name or by address) throttle further attempts."""

    username = peewee.CharField(max_length=64, index=True)
    ip = peewee.CharField(max_length=45, index=True)
    at = peewee.DateTimeField(default=utcnow, index=True)


class AuditEntry(BaseModel):
    """One admin change: who, when, what (``action`` on ``target``) and the details (old -> new)."""

    at = peewee.DateTimeField(default=utcnow, index=True)
    username = peewee.CharField(max_length=64)
    ip = peewee.CharField(max_length=45, default="")
    action = peewee.CharField(max_length=64)
    target = peewee.CharField(max_length=255, default="")
    details = peewee.TextField(default="")


class AdminKey(BaseModel):
    """Secrets the admin UI generates on first use (the cookie signing key), shared by every worker."""

    name = peewee.CharField(max_length=32, primary_key=True)
    value = peewee.CharField(max_length=128)


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [
        Migration("adminui", 1, "admin users, failed logins, audit trail, signing key",
                  create_tables(AdminUser, LoginFailure, AuditEntry, AdminKey)),
    ]
