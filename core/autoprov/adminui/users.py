"""Admin accounts: argon2id password hashes, login with throttling of failed attempts."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from autoprov.adminui.tables import AdminUser, LoginFailure, utcnow

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
MIN_PASSWORD = 10
# Failed logins allowed per user name, and per client address, within the window before further attempts wait.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = dt.timedelta(minutes=15)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user name does not exist, so a wrong name takes as long as a wrong password. Made on
    first use, not at import: a hash costs ~0.2 s of CPU and 64 MiB, which every ``autoprov`` command paid."""
    return _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A refused account change; the message says what to do."""


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise UserError(f"user name {username!r}: 1 to 64 letters, digits and _.@- (starting with a letter or digit)")
    return username


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024 or any(ord(c) < 32 or "\ud800" <= c <= "\udfff" for c in password):
        raise UserError("the password must be printable text of at most 1024 characters")


def create_user(username: str, password: str) -> AdminUser:
    check_username(username)
    check_password(password)
    if AdminUser.get_or_none(AdminUser.username == username) is not None:
        raise UserError(f"user {username} already exists")
    return AdminUser.create(username=username, password_hash=_hasher.hash(password))


def set_password(username: str, password: str) -> AdminUser:
    """New password; every open session of the user ends."""
    user = get_user(username)
    check_password(password)
    user.password_hash = _hasher.hash(password)
    user.session_epoch += 1
    user.save()
    return user


def remove_user(username: str) -> None:
    get_user(username).delete_instance()


def get_user(username: str) -> AdminUser:
    user = AdminUser.get_or_none(AdminUser.username == username)
    if user is None:
        raise UserError(f"no user {username}")
    return user


class Throttled(Exception):
    def __init__(self, wait: dt.timedelta) -> None:
        super().__init__(f"too many failed logins; try again in {max(1, round(wait.total_seconds() / 60))} minute(s)")
        self.wait = wait


def authenticate(username: str, password: str, ip: str) -> AdminUser | None:
    """The user if the password is right. Raises Throttled, without checking the password, after
    THROTTLE_FAILURES failures for this user name or from this address within THROTTLE_WINDOW."""
    now = utcnow()
    since = now - THROTTLE_WINDOW
    recent = (LoginFailure.select(LoginFailure.at)
              .where((LoginFailure.at >= since) & ((LoginFailure.username == username) | (LoginFailure.ip == ip)))
              .order_by(LoginFailure.at.desc()).limit(THROTTLE_FAILURES))
    times = [row.at for row in recent]
    if len(times) >= THROTTLE_FAILURES:
        log.warning("admin login throttled: user %r from %s", username, ip)
        raise Throttled(times[-1] + THROTTLE_WINDOW - now)
    dummy = _dummy_hash()  # made before the look-up: the first login takes as long for any name
    user = AdminUser.get_or_none(AdminUser.username == username)
    try:
        _hasher.verify(user.password_hash if user else dummy, password)
        ok = user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok:
        log.warning("admin login failed: user %r from %s", username, ip)
        LoginFailure.create(username=username[:64], ip=ip[:45], at=now)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login = now
    user.save()
    LoginFailure.delete().where(LoginFailure.at < since).execute()  # keep the table small
    return user
