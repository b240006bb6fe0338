"""HTTP credentials for provisioning: the site-wide login and each phone's own, stored, rotated and checked.

One table, ``access_credential``: a row per phone (``owner`` its MAC), one for the site-wide login (``site``)
and one holding the key that signs Digest nonces (so every worker and server sharing the database accepts the
nonces of the others). A phone's row is made the first time its config is rendered under ``[access]
credentials = "site"`` or ``"phone"``: user = its MAC, a random password. The password is kept as the phone
must get it (its model writes it into the phone's config), like a SIP password.

Rotation keeps the previous password valid for ``[access] credentials_grace`` seconds: a phone holding the
old one fetches its config with it and gets the new one. ``confirmed`` is when the phone first
authenticated with its login: from then on, a request for its files without credentials gets 401.

The table is watched by the change counter (``autoprov.revision``): a rotation re-renders the phones'
configs and refreshes every process's cached :class:`Login` within ``[http] change_check_interval``.
Checking a password never hashes it with a slow KDF per request: a cached Login holds keyed hashes
(HMAC-SHA256 under a key random per process) of its passwords, and a request costs one HMAC and a
constant-time compare (README, "Security: HTTP credentials").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field

import peewee

from autoprov import hookimpl
from autoprov.atrest import PREFIX, SecretField
from autoprov.db import BaseModel
from autoprov.revision import watch_tables
from autoprov.schema import Migration
from autoprov.tables import utcnow

SITE = "site"
NONCE_KEY = "~digest-nonce-key"
PASSWORD_BYTES = 18  # 24 URL-safe characters
VERIFIED_LIMIT = 8  # Basic headers remembered per login (a phone sends one)

# Keyed hashes of cached passwords: compared in constant time, never the password itself.
_PROCESS_KEY = os.urandom(32)


class AccessCredential(BaseModel):
    owner = peewee.CharField(max_length=32, unique=True)  # a phone's MAC, "site", or the nonce key's name
    user = peewee.CharField(max_length=128)
    # Encrypted like SIP passwords when [secrets] key_file is set (autoprov.atrest); at most 128 characters.
    password = SecretField(max_length=1024)
    previous_password = SecretField(max_length=1024, default="")  # valid until rotated + grace
    rotated = peewee.DateTimeField(default=utcnow)
    confirmed = peewee.DateTimeField(null=True)  # first request authenticated with it

    class Meta:
        table_name = "access_credential"


def _create(db: peewee.Database, migrator: object) -> None:
    db.create_tables([AccessCredential], safe=True)
    watch_tables(db, AccessCredential)
    _insert_nonce_key()


@hookimpl
def autoprov_migrations() -> list[Migration]:
    return [Migration("access", 1, "HTTP credentials: site-wide, per phone, Digest nonce key", _create)]


def keyed(password: str) -> bytes:
    return hmac.new(_PROCESS_KEY, password.encode("utf-8"), hashlib.sha256).digest()


def digest_ha1(user: str, realm: str, password: str) -> str:
    """RFC 7616 HA1 for MD5 (what phones' firmware speaks)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 (the protocol's hash)


@dataclass(frozen=True)
class Login:
    """A credential as the access policy checks it; cached until the table changes."""

    owner: str
    user: str
    password: str  # handed to the phone by its model
    confirmed: bool
    previous_until: float  # epoch seconds the previous password is valid until (0: none)
    hashes: tuple[bytes, ...]  # keyed hashes: current, then previous
    ha1: tuple[str, ...]  # Digest HA1: current, then previous
    # Basic Authorization headers already verified -> which password (0 current, 1 previous): a phone sends
    # the same header every time, so it is decoded and hashed once per change of the login, not per request.
    verified: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, row: AccessCredential, realm: str, grace: int) -> Login:
        until = 0.0
        passwords = [row.password]
        if row.previous_password:
            until = row.rotated.replace(tzinfo=dt.UTC).timestamp() + grace
            passwords.append(row.previous_password)
        return cls(row.owner, row.user, row.password, row.confirmed is not None, until,
                   tuple(keyed(p) for p in passwords), tuple(digest_ha1(row.user, realm, p) for p in passwords))

    def _valid(self) -> int:
        """How many of the passwords are valid now (the previous one only during the grace period)."""
        return 2 if len(self.hashes) > 1 and time.time() < self.previous_until else 1

    def check_password(self, user: str, password: str) -> int | None:
        """Which password ``password`` is (0 current, 1 previous within the grace period); None: neither."""
        if not hmac.compare_digest(user.encode("utf-8"), self.user.encode("utf-8")):
            return None
        given = keyed(password)
        return next((i for i, h in enumerate(self.hashes[: self._valid()]) if hmac.compare_digest(given, h)), None)

    def remembered(self, header: str) -> bool:
        """Whether this exact Basic header was verified and is still valid (a previous password expires)."""
        which = self.verified.get(header)
        return which is not None and which < self._valid()

    def remember(self, header: str, which: int) -> None:
        if len(self.verified) >= VERIFIED_LIMIT:
            self.verified.clear()
        self.verified[header] = which

    def valid_ha1(self) -> tuple[str, ...]:
        return self.ha1[: self._valid()]


def load(owner: str, realm: str, grace: int) -> Login | None:
    row = AccessCredential.get_or_none(AccessCredential.owner == owner)
    return Login.of(row, realm, grace) if row is not None else None


def phone_login(mac: str, realm: str, grace: int) -> Login:
    """Phone ``mac``'s login, made (user = its MAC, a random password) if it has none yet."""
    found = load(mac, realm, grace)
    if found is not None:
        return found
    AccessCredential.insert(owner=mac, user=mac, password=new_password()).on_conflict_ignore().execute()
    found = load(mac, realm, grace)
    assert found is not None
    return found


def nonce_key() -> bytes:
    row = AccessCredential.get_or_none(AccessCredential.owner == NONCE_KEY)
    if row is None:  # a table emptied by hand: make a key again
        _insert_nonce_key()
        row = AccessCredential.get(AccessCredential.owner == NONCE_KEY)
    return row.user.encode()


def _insert_nonce_key() -> None:
    # In the plain `user` column: it signs nonces and is no one's password, and a site whose key file is not
    # there yet (`init` before `secrets keygen`) must still be able to make it.
    plain = peewee.Value("", converter=False)
    AccessCredential.insert(owner=NONCE_KEY, user=secrets.token_hex(32), password=plain,
                            previous_password=plain).on_conflict_ignore().execute()


def confirm(owner: str) -> None:
    """Record that a phone authenticated: from now on its files need credentials."""
    (AccessCredential.update(confirmed=utcnow())
     .where((AccessCredential.owner == owner) & AccessCredential.confirmed.is_null()).execute())


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def login_problem(value: str, user: bool = False) -> str | None:
    """Why ``value`` cannot be a provisioning user (``user``) or password: every vendor's format must carry it,
    and Basic splits ``user:password`` at the first colon."""
    if not value:
        return "is empty"
    if len(value) > 128:
        return "is longer than 128 characters"
    if any(ord(c) < 32 or ord(c) == 127 or c in "\u0085\u2028\u2029" for c in value):
        return "contains a line break or control character"
    if value != value.strip():
        return "starts or ends with a blank"
    if not user and value.startswith(PREFIX):
        return f"starts with {PREFIX!r}, the mark of an encrypted value"
    if user and ":" in value:
        return "contains a colon, which HTTP Basic cannot carry in a user name"
    return None


def rotate(owner: str, password: str | None = None, user: str | None = None) -> AccessCredential:
    """A new password for ``owner`` (made if absent); the old one stays valid for the grace period."""
    password = password or new_password()
    row = AccessCredential.get_or_none(AccessCredential.owner == owner)
    if row is None:
        return AccessCredential.create(owner=owner, user=user or owner, password=password)
    row.previous_password = row.password
    row.password = password
    row.user = user or row.user
    row.rotated = utcnow()
    row.save()
    return row


def phones_with_logins() -> list[AccessCredential]:
    return list(AccessCredential.select().where(~AccessCredential.owner.in_([SITE, NONCE_KEY]))
                .order_by(AccessCredential.owner))
