"""``route``: send an incoming call where the route table says, at this time of day, with a fallback.

Dialplan: ``same => n,AGI(agi://127.0.0.1/route?fallback=PJSIP/operator)``. Parameters (all optional):
``did`` (default: the extension, or the DNID when the extension is ``s``), ``tech`` (PJSIP), ``outbound``
(the context external numbers are dialled through, default ``outbound``) and ``fallback`` (a Dial string
used when no route matches or the database is unavailable).

Afterwards ``ROUTE_STATUS`` is ROUTED, FALLBACK (the route's fallback was dialled), NOROUTE or
UNAVAILABLE (the database did not answer), and ``ROUTE_DIALSTATUS`` is the last Dial's DIALSTATUS.
"""

from __future__ import annotations

from autoprov.agi.context import DatabaseUnavailable, ScriptContext
from autoprov.agi.routing import choose_route, dial_string, ring_timeout, safe_name
from autoprov.agi.session import AGISession
from autoprov.agi.tables import Route

ANSWERED = "ANSWER"


def load_routes() -> list[Route]:
    return list(Route.select().order_by(Route.priority, Route.id))


def _did(session: AGISession, ctx: ScriptContext) -> str:
    if ctx.params.get("did"):
        return ctx.params["did"]
    extension = session.env.get("extension", "")
    if extension in ("", "s"):
        dnid = session.env.get("dnid", "")
        return "" if dnid == "unknown" else dnid
    return extension


def _dial(session: AGISession, target: str, timeout: int) -> str:
    session.exec("Dial", target, timeout)
    return session.get_variable("DIALSTATUS") or ""


def _plan(ctx: ScriptContext, chosen: Route, tech: str, outbound: str) -> tuple[str, str, int] | None:
    """The route's Dial string, its fallback's ('' for none) and ring time, every database value checked
    (rows may be edited behind the command line's back); None when the route cannot be dialled."""
    try:
        target = dial_string(chosen.dest_type, chosen.destination, tech=tech, outbound=outbound)
        timeout = ring_timeout(chosen.ring_timeout)
    except ValueError as exc:
        ctx.log.error("route %s: %s", chosen.id, exc)
        return None
    fallback = ""
    if chosen.fallback:
        try:
            fallback = dial_string(chosen.fallback_type, chosen.fallback, tech=tech, outbound=outbound)
        except ValueError as exc:
            ctx.log.error("route %s fallback: %s", chosen.id, exc)
    return target, fallback, timeout


def _dialplan_timeout(ctx: ScriptContext) -> int:
    try:
        return ring_timeout(ctx.params.get("timeout", ""))
    except ValueError:
        return 30


def route(session: AGISession, ctx: ScriptContext) -> None:
    tech = safe_name(ctx.params.get("tech"), "PJSIP")
    outbound = safe_name(ctx.params.get("outbound"), "outbound")
    did = _did(session, ctx)
    try:
        chosen = choose_route(ctx.query(load_routes), did, ctx.clock(), ctx.settings.time.time_zone)
        status = "ROUTED" if chosen else "NOROUTE"
    except DatabaseUnavailable:
        chosen, status = None, "UNAVAILABLE"

    dialstatus = ""
    plan = _plan(ctx, chosen, tech, outbound) if chosen is not None else None
    if plan is not None:
        target, fallback, timeout = plan
        ctx.log.info("%s: DID %s -> %s", session.name, did, target)
        dialstatus = _dial(session, target, timeout)
        if dialstatus != ANSWERED and fallback and not session.hung_up:
            status = "FALLBACK"
            dialstatus = _dial(session, fallback, timeout)
    else:
        if chosen is not None:
            status = "NOROUTE"
        if ctx.params.get("fallback") and not session.hung_up:
            dialstatus = _dial(session, ctx.params["fallback"], _dialplan_timeout(ctx))
    session.set_variable("ROUTE_STATUS", status)
    session.set_variable("ROUTE_DIALSTATUS", dialstatus)
