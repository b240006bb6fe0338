"""Running one call script on one session, the same way for FastAGI and a local AGI.

The policy: a script that raises, a database that is down, or a caller who hangs up never leaves the
channel stuck. The session always ends (the socket closes or the process exits) and AGISTATUS says how:
SUCCESS, or FAILURE (the script failed, the database was unavailable, or no such script), so the dialplan
goes on with its own default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import unquote

from autoprov.agi.context import ConnectionPool, DatabaseUnavailable, ScriptContext, SessionDatabase
from autoprov.agi.errors import AGIError, AGIHangup
from autoprov.agi.session import AGISession
from autoprov.config import Settings
from autoprov.plugins import PluginManager

log = logging.getLogger(__name__)

Script = Callable[[AGISession, ScriptContext], None]


def collect_scripts(plugins: PluginManager) -> dict[str, Script]:
    """Every plugin's scripts by name; a name provided twice keeps the first and is reported. A plugin whose
    hook raises is reported broken and skipped: the other scripts still run."""
    found: dict[str, Script] = {}
    for _, batch in plugins.each_result("autoprov_agi_scripts"):
        for name, script in (batch or {}).items():
            if name in found:
                log.error("AGI script %s is provided twice; keeping the first", name)
                continue
            found[name] = script
    return found


def split_script(path: str) -> tuple[str, dict[str, str]]:
    """``cid-name?x=1`` (or a local program's path) into the script's name and its parameters.

    The query is read as an Asterisk admin writes it in a dialplan, not as an HTML form: ``&`` separates
    parameters, ``%XX`` is a byte (``%26`` an ``&`` inside a value), and ``+`` and ``#`` are themselves.
    """
    where, _, query = path.partition("?")
    name = where.strip("/").rsplit("/", 1)[-1]
    params: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            params[unquote(key)] = unquote(value)
    return name, params


def run_session(
    session: AGISession,
    scripts: Mapping[str, Script],
    settings: Settings,
    pool: ConnectionPool | None,
    *,
    script: str | None = None,
    clock: Callable[[], datetime] | None = None,
    on_environment: Callable[[], object] | None = None,
) -> str:
    """Read the environment, run the script it names (or ``script``), and return the AGISTATUS it leads to.

    The caller closes the streams afterwards; this never raises for anything a call can do.
    """
    database = SessionDatabase(pool, settings.agi.database_timeout, session.name)
    try:
        session.read_environment()
        if on_environment is not None:
            on_environment()
        name, params = split_script(script or session.script)
        for arg in session.args:  # a local AGI(prog,...,key=value) passes parameters as arguments
            key, sep, value = arg.partition("=")
            if sep and key:
                params.setdefault(key, value)
        fn = scripts.get(name)
        if fn is None:
            log.error("%s: no AGI script named %r (have: %s)", session.name, name, ", ".join(sorted(scripts)))
            session.send_failure()
            return "FAILURE"
        ctx = ScriptContext(settings=settings, database=database, params=params, script=name)
        if clock is not None:
            ctx.clock = clock
        fn(session, ctx)
        if ctx.degraded:
            session.send_failure()
            return "FAILURE"
        return "SUCCESS"
    except AGIHangup as exc:
        log.info("%s: caller hung up (%s)", session.name, exc)
        return "HANGUP"
    except DatabaseUnavailable as exc:
        log.warning("%s: %s; the dialplan goes on", session.name, exc)
    except AGIError as exc:
        log.error("%s: AGI error: %s", session.name, exc)
    except Exception:
        log.exception("%s: AGI script failed; the dialplan goes on", session.name)
    session.send_failure()
    return "FAILURE"
