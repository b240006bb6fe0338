"""SIP passwords encrypted at rest (optional, off by default): ``[secrets] key_file`` names a file of Fernet keys
kept outside the database, the first one encrypting, every one decrypting (``MultiFernet``, for rotation).

A stored value is either the password as given (no key file, or a row written before encryption was turned
on) or ``fernet:<token>``. Every ORM read and write of ``Extension.secret`` goes through :class:`SecretField`;
the phone lookup, which runs its SQL as text, calls :func:`unseal` itself. The render cache keeps rendered
bytes, so a phone's passwords are decrypted once per render, not once per request.

The keys of a database are found through the database object (:func:`bind`), so two Sites in one process, or a
command's own Site, each use their own.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

import peewee

from autoprov.privatefiles import create_private, replace_private

PREFIX = "fernet:"  # what marks a stored value as encrypted; no password may start with it


class SecretsUnavailable(Exception):
    """A stored password cannot be read or written as configured: the key file is missing, unreadable,
    open to other users, or holds no key that decrypts it. Phones get 503 until the admin fixes it."""


class Keyring:
    """The keys of ``[secrets] key_file`` (None: encryption off). The file is read when first needed, and read
    again when a token does not decrypt and the file has changed since (a key added by ``autoprov secrets
    keygen --add`` while servers run: they decrypt what ``rotate`` re-encrypted without a restart)."""

    def __init__(self, key_file: str | None) -> None:
        self.key_file = key_file or None
        self._lock = threading.Lock()
        self._multi: Any = None
        self._stamp: tuple[int, int, int] | None = None
        self.count = 0

    @property
    def enabled(self) -> bool:
        return self.key_file is not None

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.key_file)  # type: ignore[arg-type]
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _load(self) -> Any:
        from cryptography.fernet import Fernet, MultiFernet

        where = f"[secrets] key_file {self.key_file}"
        try:
            stamp = self._stat()
            mode = os.stat(self.key_file).st_mode  # type: ignore[arg-type]
            text = Path(self.key_file).read_text(encoding="ascii")  # type: ignore[arg-type]
        except FileNotFoundError:
            raise SecretsUnavailable(f"{where} does not exist (create it: autoprov secrets keygen)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretsUnavailable(f"{where} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
        if mode & 0o077:
            raise SecretsUnavailable(f"{where} is open to other users (mode {mode & 0o777:o}): chmod 600 it")
        keys = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        try:
            fernets = [Fernet(key.encode("ascii")) for key in keys]
        except ValueError:
            raise SecretsUnavailable(f"{where} holds a line that is not a Fernet key") from None
        if not fernets:
            raise SecretsUnavailable(f"{where} holds no key")
        self._stamp, self.count = stamp, len(fernets)
        return MultiFernet(fernets)

    def _keys(self) -> Any:
        with self._lock:
            if self._multi is None:
                self._multi = self._load()
            return self._multi

    def _reloaded(self) -> bool:
        """Read the file again if it changed since it was read; whether it did."""
        with self._lock:
            try:
                if self._stat() == self._stamp:
                    return False
            except OSError:
                return False
            self._multi = self._load()
            return True

    def check(self) -> None:
        """Raise SecretsUnavailable now if the key file is unusable (``serve`` at start-up, ``secrets status``)."""
        if self.enabled:
            self._keys()

    def seal(self, password: str) -> str:
        """How ``password`` is stored: encrypted with the first key, or as given when encryption is off."""
        if not self.enabled:
            return password
        return PREFIX + self._keys().encrypt(password.encode("utf-8")).decode("ascii")

    def unseal(self, stored: str) -> str:
        """The password a stored value holds."""
        if not stored.startswith(PREFIX):
            return stored  # never encrypted (encryption off, or a row from before it was turned on)
        if not self.enabled:
            raise SecretsUnavailable("SIP passwords in the database are encrypted, but [secrets] key_file is not set")
        from cryptography.fernet import InvalidToken

        token = stored[len(PREFIX):].encode("ascii", "replace")
        try:
            return self._keys().decrypt(token).decode("utf-8")
        except InvalidToken:
            if self._reloaded():
                return self.unseal(stored)
            raise SecretsUnavailable(f"no key in [secrets] key_file {self.key_file} decrypts a stored SIP password "
                                     "(was a key removed before `autoprov secrets rotate`?)") from None

    def reseal(self, stored: str) -> str:
        """``stored`` encrypted with the first key now (a plain one encrypted; unchanged with encryption off)."""
        return self.seal(self.unseal(stored))


_KEYRINGS: weakref.WeakKeyDictionary[peewee.Database, Keyring] = weakref.WeakKeyDictionary()
_OFF = Keyring(None)


def bind(db: peewee.Database, keyring: Keyring) -> None:
    """Make ``keyring`` the one used for ``db``'s stored passwords."""
    _KEYRINGS[db] = keyring


def keyring_of(db: peewee.Database | None) -> Keyring:
    return _KEYRINGS.get(db, _OFF) if db is not None else _OFF


def unseal(db: peewee.Database, stored: str | None) -> str | None:
    """A stored password read by raw SQL, decrypted with ``db``'s keys."""
    return None if stored is None else keyring_of(db).unseal(stored)


class SecretField(peewee.CharField):
    """A CharField stored sealed: written through :meth:`Keyring.seal`, read through :meth:`Keyring.unseal`.
    Comparing it in SQL is meaningless (each encryption differs); nothing does."""

    def _keyring(self) -> Keyring:
        return keyring_of(self.model._meta.database.obj if self.model else None)

    def db_value(self, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return super().db_value(value)
        return super().db_value(self._keyring().seal(value))

    def python_value(self, value: Any) -> Any:
        if value is None:
            return None
        return self._keyring().unseal(super().python_value(value))


# --- The key file -----------------------------------------------------------------------------------------

def new_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


def create_key_file(path: str | os.PathLike[str]) -> None:
    """A new key file (0600) with one key; FileExistsError if there is one."""
    create_private(path, b"# autoprov SIP password keys: the first encrypts, every one decrypts\n" + new_key() + b"\n")


def add_key(path: str | os.PathLike[str]) -> int:
    """Put a new key first in an existing key file (the others still decrypt); the number of keys now."""
    lines = Path(path).read_text(encoding="ascii").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    text = "\n".join([*comments, new_key().decode("ascii"), *keys]) + "\n"
    replace_private(path, text.encode("ascii"))
    return len(keys) + 1


def keep_first_key(path: str | os.PathLike[str]) -> int:
    """Drop every key but the first (after ``rotate``); how many were dropped."""
    lines = Path(path).read_text(encoding="ascii").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    replace_private(path, ("\n".join([*comments, *keys[:1]]) + "\n").encode("ascii"))
    return len(keys) - 1
