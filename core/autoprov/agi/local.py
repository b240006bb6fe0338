"""A local AGI: Asterisk's ``AGI(program)`` runs us with stdin/stdout as the AGI streams.

Anything but protocol on stdout corrupts the conversation, so ``sys.stdout`` is pointed at stderr for the
whole run. Asterisk does not log what an AGI writes to stderr (a daemonised Asterisk loses it), so the
log also goes where an admin looks: syslog, or the file named by ``agi.log``.
"""

from __future__ import annotations

import logging
import logging.handlers
import signal
import socket
import sys
from collections.abc import Mapping
from types import FrameType

import peewee

from autoprov.agi.context import ConnectionPool
from autoprov.agi.runner import Script, run_session
from autoprov.agi.session import AGISession
from autoprov.config import Settings

log = logging.getLogger(__name__)

SYSLOG_SOCKET = "/dev/log"
_FORMAT = "autoprov-agi[%(process)d]: %(levelname)s %(name)s: %(message)s"


def log_to(spec: str) -> logging.Handler | None:
    """Add a log handler for ``agi.log``: "syslog" (facility daemon), "syslog:<socket path>", or a file
    (appended to). When it cannot be opened, say so on stderr and go on: the call must still be answered."""
    if not spec:
        return None
    try:
        if spec == "syslog" or spec.startswith("syslog:"):
            address = spec.partition(":")[2] or SYSLOG_SOCKET
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:  # the handler would not say
                probe.connect(address)
            handler: logging.Handler = logging.handlers.SysLogHandler(
                address, facility=logging.handlers.SysLogHandler.LOG_DAEMON, socktype=socket.SOCK_DGRAM
            )
            handler.setFormatter(logging.Formatter(_FORMAT))
        else:
            handler = logging.FileHandler(spec, encoding="utf-8", delay=False)
            handler.setFormatter(logging.Formatter("%(asctime)s " + _FORMAT))
    except OSError as exc:
        log.warning("agi.log: cannot log to %s (%s); logging to stderr only", spec, exc)
        return None
    logging.getLogger().addHandler(handler)
    return handler


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
