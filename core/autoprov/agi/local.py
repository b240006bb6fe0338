"""A local AGI: Asterisk's ``AGI(program)`` runs us with stdin/stdout as the AGI streams.

Anything but protocol on stdout corrupts the conversation, so ``sys.stdout`` is pointed at stderr for the
whole run (a stray ``print`` in a plugin ends up in Asterisk's log, not in the protocol).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping
from types import FrameType

import peewee

from autoprov.agi.context import ConnectionPool
from autoprov.agi.runner import Script, run_session
from autoprov.agi.session import AGISession
from autoprov.config import Settings

log = logging.getLogger(__name__)


def run_local(script: str, scripts: Mapping[str, Script], settings: Settings, db: peewee.Database | None) -> int:
    """Run ``script`` on this process's stdin/stdout; returns the exit code (0 unless the script failed)."""
    session = AGISession.from_stdio(name=f"agi {script}")
    sys.stdout = sys.stderr  # from here on, only the session writes to the real stdout

    def on_sighup(signum: int, frame: FrameType | None) -> None:
        # Asterisk signals a hangup with SIGHUP (unless AGISIGHUP=no): note it, the next command gets 511.
        session.hung_up = True

    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_sighup)
    pool = ConnectionPool(db, max_idle=0, query_timeout=settings.agi.database_timeout) if db is not None else None
    status = run_session(session, scripts, settings, pool, script=script)
    log.debug("agi %s ended: %s", script, status)
    return 0 if status in ("SUCCESS", "HANGUP") else 1
