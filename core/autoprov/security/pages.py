"""The admin page of the audit trail: secrets served, refusals, throttled clients, flagged first contacts,
with the same filters as ``autoprov audit``."""

from __future__ import annotations

import click
from werkzeug.wrappers import Response

from autoprov import hookimpl
from autoprov.adminui import AdminPage, templates_beside
from autoprov.adminui.app import AdminRequest
from autoprov.audit import OUTCOMES, query
from autoprov.mac import InvalidMac, normalize_mac
from autoprov.security.cli import parse_when

templates = templates_beside(__file__)
PAGE = 200


def access_audit(ui: AdminRequest) -> Response:
    values = {name: ui.args(name).strip() for name in ("mac", "client", "since", "until", "outcome")}
    error, mac, since, until = "", None, None, None
    try:
        mac = normalize_mac(values["mac"]) if values["mac"] else None
        since = parse_when(values["since"], "since")
        until = parse_when(values["until"], "until")
    except InvalidMac as exc:
        error = str(exc)
    except click.BadParameter as exc:
        error = f"{exc.param_hint}: {exc.message}"
    outcome = values["outcome"] if values["outcome"] in OUTCOMES else ""
    try:
        before = int(ui.args("before") or 0)
    except ValueError:
        before = 0
    rows = [] if error else query(mac, values["client"] or None, since, until, (outcome,), PAGE + 1, before or None)
    more = rows[PAGE].id + 1 if len(rows) > PAGE else None
    return templates.page(ui, "security_audit.mako", rows=rows[:PAGE], values=values, outcomes=OUTCOMES,
                          error=error, more=more, status=400 if error else 200)


@hookimpl
def autoprov_admin_pages() -> list[AdminPage]:
    return [AdminPage("access-audit", "access_audit", access_audit, title="Access audit", order=890)]
