"""``autoprov audit``: the audit trail with filters, and ``autoprov audit prune``."""

from __future__ import annotations

import datetime as dt
import json
import re

import click

from autoprov import hookimpl
from autoprov.audit import OUTCOMES, AccessRecord, prune, query
from autoprov.cli import parse_mac, pass_site
from autoprov.site import Site
from autoprov.tables import utcnow

_AGO = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str | None, name: str) -> dt.datetime | None:
    """A time in UTC: ``2026-11-30``, ``2026-11-30 10:15[:00]``, or an age (``30m``, ``2h``, ``7d``)."""
    if not value:
        return None
    text = value.strip()
    ago = _AGO.match(text)
    if ago:
        return utcnow() - dt.timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        when = dt.datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected 2026-11-30, 2026-11-30 10:15 (UTC) or an age such as "
                                 "30m, 2h, 7d", param_hint=name) from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def as_dict(r: AccessRecord) -> dict[str, object]:
    return {"at": r.at.strftime("%Y-%m-%dT%H:%M:%SZ"), "outcome": r.outcome, "status": r.status, "mac": r.mac,
            "client": r.client, "user_agent": r.user_agent, "method": r.method, "path": r.path,
            "reason": r.reason, "count": r.count}


def as_line(r: AccessRecord) -> str:
    times = f" (x{r.count})" if r.count > 1 else ""
    request = f"{r.method} {r.path}" if r.path else "-"
    return (f"{r.at:%Y-%m-%d %H:%M:%S} UTC\t{r.outcome}\t{r.status or '-'}\t{r.mac or '-'}\t{r.client or '-'}\t"
            f"{request}\t{r.user_agent or '-'}\t{r.reason}{times}")


@click.group(invoke_without_command=True)
@click.option("--mac", help="Only this phone's records.")
@click.option("--client", help="Only this client address (a prefix ending in *, e.g. 10.1.*).")
@click.option("--since", help="From this time (UTC) or age: 2026-11-30, '2026-11-30 10:15', 2h, 7d.")
@click.option("--until", help="Before this time (UTC) or age.")
@click.option("--outcome", type=click.Choice(OUTCOMES), multiple=True, help="allowed, refused, throttled, "
              "flagged (repeatable).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def audit(ctx: click.Context, mac: str | None, client: str | None, since: str | None, until: str | None,
          outcome: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Secrets served, requests refused (401/403), clients throttled for guessing MACs (429) and phones
    flagged on a first contact from afar; newest first, times in UTC. Written by the server every
    [audit] flush_interval seconds."""
    if ctx.invoked_subcommand is not None:
        return
    ctx.invoke(_show, mac=parse_mac(mac) if mac else None, client=client, since=parse_when(since, "--since"),
               until=parse_when(until, "--until"), outcomes=outcome, limit=limit, as_json=as_json)


@pass_site
def _show(site: Site, mac: str | None, client: str | None, since: dt.datetime | None, until: dt.datetime | None,
          outcomes: tuple[str, ...], limit: int, as_json: bool) -> None:
    for r in query(mac, client, since, until, outcomes, limit):
        click.echo(json.dumps(as_dict(r)) if as_json else as_line(r))


@audit.command("prune")
@pass_site
def prune_command(site: Site) -> None:
    """Delete records older than [audit] keep_days (and the oldest past max_rows); the server does it too."""
    settings = site.settings.audit
    deleted = prune(site.db, settings.keep_days, settings.max_rows)
    click.echo(f"pruned {deleted} audit record(s) (keeping {settings.keep_days} days"
               + (f", at most {settings.max_rows} records)" if settings.max_rows else ")"))


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(audit)
