"""``autoprov agi serve|run``, ``autoprov cid add|list|remove``, ``autoprov route add|list|remove``."""

from __future__ import annotations

import logging
import re
import signal
import sys
from types import FrameType
from typing import Any

import click

from autoprov import hookimpl
from autoprov.agi.routing import (
    DEST_TYPES,
    RING_TIMEOUT,
    parse_days,
    validate_destination,
    validate_pattern,
    validate_window,
    validate_zone,
)
from autoprov.agi.runner import collect_scripts
from autoprov.agi.tables import CallerName, Route, caller_number
from autoprov.cli import LazySite, pass_site
from autoprov.config import DEFAULT_CONFIG_PATH, Settings
from autoprov.db import sqlite_path
from autoprov.site import Site

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@click.group("agi")
def agi_group() -> None:
    """Serve the call scripts to Asterisk (FastAGI) or run one as a local AGI."""


@agi_group.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: agi.host, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default: agi.port, 4573).")
@click.option("--grace", default=30.0, show_default=True, help="Seconds live calls get to finish on shutdown.")
@click.pass_context
def agi_serve(ctx: click.Context, host: str | None, port: int | None, grace: float) -> None:
    """Run the FastAGI server: agi://HOST[:PORT]/<script>?k=v reaches a registered script."""
    from autoprov.agi.server import FastAGIServer

    site: Site = ctx.find_object(LazySite).get()
    scripts = collect_scripts(site.plugins)
    server = FastAGIServer(scripts, site.settings, site.db, host=host, port=port)
    try:
        server.bind()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {server.host}:{server.port}: {exc}") from None

    def stop(signum: int, frame: FrameType | None) -> None:
        # The handler must return at once: the accept loop ends, serve_forever returns, shutdown runs below.
        log.warning("signal %s: no new calls; live calls get %g s to finish", signum, grace)
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"FastAGI on {server.host}:{server.port}: {', '.join(sorted(scripts))}", err=True)
    server.serve_forever()
    server.shutdown(grace)


@agi_group.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("script")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def agi_run(ctx: click.Context, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT as a local AGI on stdin/stdout (from the dialplan: AGI(autoprov,agi,run,SCRIPT)).

    ARGS are ignored here: the script reads them, with key=value parameters, from the AGI environment.
    """
    from autoprov.agi.local import log_to, run_local

    lazy: LazySite = ctx.find_object(LazySite)
    problem = ""
    try:
        site = lazy.get()
        settings, db = site.settings, site.db
    except click.ClickException as exc:
        # Still speak AGI, so the channel is not left waiting: the script runs without a database.
        settings, db, problem = Settings(), None, exc.message
    log_to(settings.agi.log)
    path = sqlite_path(db) if db is not None else None
    if path is not None and not path.is_file():
        # Asterisk runs this in its own working directory, maybe without AUTOPROV_CONFIG: never create an
        # empty database there (or anywhere) by accident.
        db = None
        problem = (f"no SQLite database at {path.resolve()} (database.url from {settings.source}); not creating "
                   f"one: give the site's configuration in {DEFAULT_CONFIG_PATH}, AUTOPROV_CONFIG or --config")
    if problem:
        log.error("agi run %s: %s", script, problem)
    scripts = collect_scripts(lazy.plugins)
    sys.exit(run_local(script, scripts, settings, db))


# -- caller-ID names ---------------------------------------------------------------------------------


@click.group("cid")
def cid_group() -> None:
    """Caller-ID names the cid-name script shows (number to name)."""


def _number(value: str) -> str:
    number = caller_number(value)
    if number is None:
        raise click.ClickException(f"not a caller-ID number: {value!r}")
    return number


@cid_group.command("add")
@click.argument("number")
@click.argument("name")
@pass_site
def cid_add(site: Site, number: str, name: str) -> None:
    """Show NAME for calls from NUMBER (replaces an existing name)."""
    number = _number(number)
    name = name.strip()
    if not name or len(name) > 80 or _CONTROL.search(name):
        raise click.ClickException("the name must be 1 to 80 printable characters")
    with site.db.atomic():
        CallerName.insert(number=number, name=name).on_conflict(
            conflict_target=[CallerName.number], update={CallerName.name: name}
        ).execute()
    click.echo(f"{number}\t{name}")


@cid_group.command("list")
@pass_site
def cid_list(site: Site) -> None:
    """List caller-ID names, by number."""
    for row in CallerName.select().order_by(CallerName.number):
        click.echo(f"{row.number}\t{row.name}")


@cid_group.command("remove")
@click.argument("number")
@pass_site
def cid_remove(site: Site, number: str) -> None:
    """Stop substituting a name for NUMBER."""
    number = _number(number)
    if not CallerName.delete().where(CallerName.number == number).execute():
        raise click.ClickException(f"no caller-ID name for {number}")
    click.echo(f"removed {number}")


# -- routes ------------------------------------------------------------------------------------------


def _known_extensions(numbers: list[str]) -> list[str]:
    """Numbers among ``numbers`` that are not provisioned extensions (empty when that table is absent)."""
    try:
        from autoprov.tables import Extension
    except ImportError:
        return []
    try:
        found = {e.user_id for e in Extension.select(Extension.user_id).where(Extension.user_id.in_(numbers))}
    except Exception:  # the provisioning schema may not be there yet; the route is still valid
        return []
    return [n for n in numbers if n not in found]


def _checked(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("route")
def route_group() -> None:
    """Routes the route script sends incoming calls by (DID or pattern to destination)."""


@route_group.command("add")
@click.argument("pattern")
@click.argument("dest_type", metavar="TYPE", type=click.Choice(DEST_TYPES))
@click.argument("destination")
@click.option("--priority", default=100, show_default=True, help="Lower is tried first.")
@click.option("--days", default="", help="Days the route holds: mon-fri, sat,sun (default every day).")
@click.option("--from", "start", default="", help="Start of the time window, HH:MM.")
@click.option("--to", "end", default="", help="End of the time window, HH:MM (may be past midnight).")
@click.option("--time-zone", default="", help="Zone of the window (default: the site's time.time_zone).")
@click.option("--ring-timeout", default=30, show_default=True, type=click.IntRange(*RING_TIMEOUT))
@click.option("--fallback", default="", help="TYPE:DESTINATION dialled when the destination does not answer.")
@click.option("--description", default="")
@pass_site
def route_add(
    site: Site, pattern: str, dest_type: str, destination: str, priority: int, days: str, start: str, end: str,
    time_zone: str, ring_timeout: int, fallback: str, description: str,
) -> None:
    """Send calls to PATTERN (a DID, or _X. style) to TYPE (extension, group, external) DESTINATION."""
    _checked(validate_pattern, pattern)
    destination = _checked(validate_destination, dest_type, destination)
    _checked(parse_days, days)
    _checked(validate_window, start, end)
    _checked(validate_zone, time_zone)
    fallback_type = ""
    if fallback:
        fallback_type, _, fallback = fallback.partition(":")
        fallback = _checked(validate_destination, fallback_type, fallback)
    if _CONTROL.search(description):
        raise click.ClickException("the description must be printable")
    members = [m for t, d in ((dest_type, destination), (fallback_type, fallback)) if t != "external" and d
               for m in d.split(",")]
    for missing in _known_extensions(members):
        click.echo(f"warning: extension {missing} is not provisioned", err=True)
    with site.db.atomic():
        row = Route.create(
            pattern=pattern, priority=priority, dest_type=dest_type, destination=destination,
            ring_timeout=ring_timeout, days=days, start=start, end=end, time_zone=time_zone,
            fallback_type=fallback_type, fallback=fallback, description=description,
        )
    click.echo(f"route {row.id}: {pattern} -> {dest_type} {destination}")


@route_group.command("list")
@pass_site
def route_list(site: Site) -> None:
    """List routes in the order they are tried."""
    for r in Route.select().order_by(Route.priority, Route.id):
        when = " ".join(x for x in (r.days, f"{r.start}-{r.end}" if r.start or r.end else "", r.time_zone) if x)
        fallback = f" else {r.fallback_type} {r.fallback}" if r.fallback else ""
        click.echo(f"{r.id}\t{r.priority}\t{r.pattern}\t{r.dest_type} {r.destination}{fallback}\t{when or 'always'}"
                   + (f"\t{r.description}" if r.description else ""))


@route_group.command("remove")
@click.argument("route_id", metavar="ID", type=int)
@pass_site
def route_remove(site: Site, route_id: int) -> None:
    """Remove the route with this ID (as autoprov route list shows it)."""
    if not Route.delete().where(Route.id == route_id).execute():
        raise click.ClickException(f"no route {route_id}")
    click.echo(f"removed route {route_id}")


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(agi_group)
    cli.add_command(cid_group)
    cli.add_command(route_group)
