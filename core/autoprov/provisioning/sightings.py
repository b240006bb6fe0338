"""Recording every phone the server sees, known or not, so an admin can watch a new phone arrive."""

from __future__ import annotations

import logging

import peewee
from werkzeug.wrappers import Request

from autoprov.db import is_unavailable
from autoprov.logthrottle import log_throttled
from autoprov.provisioning.tables import Sighting, utcnow
from autoprov.site import Site

log = logging.getLogger(__name__)

USER_AGENT_LIMIT = 255


def record_sighting(
    site: Site,
    request: Request,
    mac: str = "",
    problem: str | None = None,
    required: bool = True,
) -> None:
    """Upsert the (MAC, User-Agent) row. ``problem`` None leaves the stored one; "" clears it.

    With ``required`` False a database failure is logged rather than raised (the answer does not depend on it).
    """
    user_agent = _storable(request.headers.get("User-Agent") or "")[:USER_AGENT_LIMIT]
    model = site.identify(user_agent)
    now = utcnow()
    row = {
        Sighting.mac: mac,
        Sighting.user_agent: user_agent,
        Sighting.model: model.name if model else None,
        Sighting.firmware: model.firmware_version(user_agent) if model else None,
        Sighting.ip: request.remote_addr,
        Sighting.last_path: _storable(request.path)[:255],
        Sighting.last_seen: now,
        Sighting.first_seen: now,
    }
    # By name: a peewee field compared with ``in`` builds an expression (always true) instead of comparing.
    update = {k: v for k, v in row.items() if k.name not in ("mac", "user_agent", "first_seen")}
    update[Sighting.count] = Sighting.count + 1
    if problem is not None:
        problem = _storable(problem)  # may quote the path
        row[Sighting.problem] = problem
        update[Sighting.problem] = problem
        if problem:
            log.warning("phone %s (%s): %s", mac or "?", user_agent, problem)
    try:
        Sighting.insert(row).on_conflict(conflict_target=[Sighting.mac, Sighting.user_agent], update=update).execute()
    except peewee.PeeweeException as exc:
        if required or not is_unavailable(exc):
            raise
        log_throttled(log, logging.WARNING, type(exc), "could not record a sighting of %s %r: %s", mac or "?",
                      user_agent, " ".join(str(exc).split()))


def _storable(text: str) -> str:
    """What a client sent, storable in any database: PostgreSQL text refuses NUL (``%00`` in a path)."""
    return text.replace("\x00", "\ufffd")
