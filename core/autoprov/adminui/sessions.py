"""Session cookies: signed (HMAC-SHA256) with a key kept in the database, generated on first use and shared
by every worker. A cookie names the user, the user's session epoch (logout and a password change move it
on, ending every open session), when it was issued (it expires after SESSION_LIFETIME) and a random nonce
from which the CSRF token of every form is derived."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from autoprov.adminui.tables import AdminKey

COOKIE = "autoprov_admin"
LOGIN_COOKIE = "autoprov_admin_login"  # a nonce for the login form's CSRF token, before there is a session
SESSION_LIFETIME = 8 * 3600  # seconds: a working day, then log in again


def signing_key() -> bytes:
    """The site's signing key, created on first use (the first worker to insert it wins)."""
    row = AdminKey.get_or_none(AdminKey.name == "session")
    if row is None:
        AdminKey.insert(name="session", value=secrets.token_hex(32)).on_conflict_ignore().execute()
        row = AdminKey.get(AdminKey.name == "session")
    return bytes.fromhex(row.value)


def _mac(key: bytes, data: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class Session:
    user_id: int
    epoch: int
    issued: int  # Unix time
    nonce: str

    def encode(self, key: bytes) -> str:
        payload = json.dumps([self.user_id, self.epoch, self.issued, self.nonce], separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{_mac(key, body.encode())}"

    @staticmethod
    def decode(value: str, key: bytes, now: float | None = None) -> Session | None:
        """The session in a cookie, or None if it is forged, malformed or expired."""
        body, _, sig = value.partition(".")
        if not sig or not hmac.compare_digest(sig, _mac(key, body.encode())):
            return None
        try:
            user_id, epoch, issued, nonce = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None
        now = time.time() if now is None else now
        if not (isinstance(issued, int) and issued <= now + 60 and now - issued < SESSION_LIFETIME):
            return None
        return Session(user_id, epoch, issued, nonce)

    def csrf_token(self, key: bytes) -> str:
        return csrf_token(key, self.nonce)


def new_session(user_id: int, epoch: int, now: float | None = None) -> Session:
    return Session(user_id, epoch, int(time.time() if now is None else now), secrets.token_urlsafe(16))


def csrf_token(key: bytes, nonce: str) -> str:
    return _mac(key, b"csrf:" + nonce.encode())


def csrf_ok(key: bytes, nonce: str | None, token: str | None) -> bool:
    return bool(nonce and token) and hmac.compare_digest(csrf_token(key, nonce), token)

