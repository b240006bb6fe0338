"""Site-wide commands every installation has, whatever features are installed: ``init``, ``serve``,
``models`` and ``config show``."""

from __future__ import annotations

import json
import os
import re
import socket
from typing import Any

import click
import peewee

from autoprov.access import describe as access_policy
from autoprov.access import missing_site_login
from autoprov.atrest import SecretsUnavailable
from autoprov.cli import LazySite, one_line, pass_site
from autoprov.config import ENV_OVERRIDES, masked_settings
from autoprov.db import close_to_others, describe_database, is_schema_missing, is_unavailable, sqlite_path
from autoprov.devices import ROOT, DeviceModel, Refusal
from autoprov.schema import current_versions, outdated
from autoprov.site import Site
from autoprov.tables import Sighting

# `autoprov models` scores again at most this many distinct User-Agents seen, to show ties.
SCORED_USER_AGENTS = 1000


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database schema (safe to rerun)."""
    site = ctx.find_object(LazySite).get()
    where = describe_database(site.settings.database.url)
    path = sqlite_path(site.db)
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        for model in site.models.values():
            model.firmware_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(one_line(f"{where}: cannot create {exc.filename}: {exc.strerror}")) from None
    try:
        applied = site.init_database()
    except Exception as exc:
        raise click.ClickException(one_line(f"{where}: {exc}")) from None
    for m in applied:
        click.echo(f"applied {m.component} {m.version}: {m.description}")
    for change in close_to_others(path) if path is not None else ():
        click.echo(f"closed to other users (the database holds SIP passwords): {change}")
    click.echo(f"database {where} is up to date")


def schema_problem(site: Site) -> str | None:
    """Why phones would get 503 from this database right now (None: the schema is there and current)."""
    try:
        with site.activated(), site.db.connection_context():
            behind = outdated(site.db, site.migrations())
    except peewee.PeeweeException as exc:
        if is_schema_missing(exc):
            return "the database has no autoprov schema: run `autoprov init`"
        return one_line(f"database unavailable: {exc}")
    if not behind:
        return None
    if all(have == 0 for _, have, _ in behind) and len(behind) == len({m.component for m in site.migrations()}):
        return "the database has no autoprov schema: run `autoprov init`"
    parts = ", ".join(f"{component} {have} < {want}" for component, have, want in behind)
    return f"the database schema is older than the installed autoprov ({parts}): run `autoprov init`"


def check_port(host: str, port: int) -> None:
    """Fail with one line if ``host:port`` cannot be listened on (busy, or not this machine's address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            s.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@click.command()
@click.option("--host", help="Address to listen on (default: [http] host).")
@click.option("--port", type=int, help="Port (default: [http] port).")
@click.option("--workers", type=int, help="Worker processes (default: [http] workers).")
@click.option("--dev", is_flag=True, help="Werkzeug's single-process development server with reloader.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None, dev: bool) -> None:
    """Serve phones over HTTP (Granian, or gunicorn per [http] server, with several workers; --dev for
    Werkzeug's server)."""
    from autoprov.server import run

    site = ctx.find_object(LazySite).get()
    http = site.settings.http
    host, port = host or http.host, port or http.port
    check_port(host, port)
    click.echo(f"autoprov serve: configuration {site.settings.source}; "
               f"database {describe_database(site.settings.database.url)}", err=True)
    for line in access_policy(site.settings):
        click.echo(f"autoprov serve: access: {line}", err=True)
    warning = missing_site_login(site)
    if warning:
        click.echo(f"autoprov serve: access: {warning}", err=True)
    throttle = site.settings.throttle
    click.echo("autoprov serve: " + (f"a client asking for more than {throttle.unknown_macs} unknown MACs within "
                                     f"{throttle.window:g} s gets 429 for {throttle.block:g} s; see [throttle]"
                                     if throttle.unknown_macs else "MAC guessing is not throttled ([throttle] "
                                     "unknown_macs = 0)"), err=True)
    if site.settings.client_certificate.required:  # only Apache passes client certificates (autoprov.clientcert)
        click.echo("WARNING: [client_certificate] required is on, but `autoprov serve` gets no client certificates: "
                   "every file holding secrets will be refused (see deploy/apache/autoprov-mtls.conf)", err=True)
    if site.keyring.enabled:
        try:
            site.keyring.check()
        except SecretsUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"autoprov serve: SIP passwords encrypted at rest ({site.keyring.count} key(s) in "
                   f"{site.keyring.key_file})", err=True)
    problem = schema_problem(site)
    if problem:
        click.echo(f"WARNING: {problem} (until then phones get 503)", err=True)
    for model, generation, refusal in settings_refusals(site):
        click.echo(f"WARNING: {model.name}{f' ({generation})' if generation else ''}: {refusal} (its phones get 500 "
                   "for the file that would carry it)", err=True)
    run(site, host, port, workers or http.workers, dev=dev)


def settings_refusals(site: Site) -> list[tuple[DeviceModel, str | None, Refusal]]:
    """Site settings an installed model refuses, per firmware generation (``DeviceModel.check_settings``)."""
    return [(model, generation, refusal) for model in site.models.values()
            for generation in model.generations or (None,) for refusal in model.check_settings(generation)]


@click.command()
@pass_site
def models(site: Site) -> None:
    """Installed model plugins: User-Agent tokens, lines, firmware directory and files present; ties between
    models (the User-Agents seen so far are scored again, so a tie shows here, not only in the server's log)
    and broken plugins."""
    for user_agent in _seen_user_agents(site):
        site.identify(user_agent)
    refused = settings_refusals(site)
    for model in site.models.values():
        click.echo(f"{model.name}: {model.label} ({model.vendor})")
        click.echo(f"  user-agent tokens: {', '.join(model.user_agent_tokens)}")
        if model.family_tokens:
            click.echo(f"  family tokens: {', '.join(model.family_tokens)}")
        click.echo(f"  lines: {model.line_count}")
        if model.mac_ouis:
            click.echo(f"  MAC prefixes: {', '.join(model.mac_ouis)}")
        for rule in site.files_of(model):
            where = "/" if rule.where == ROOT else model.base_path
            flags = " (secret)" if rule.secret else ""
            click.echo(f"  file {where}{rule.shape}: {rule.role}{flags}")
        click.echo(f"  firmware: {model.firmware_dir}")
        for name in model.firmware_files:
            state = "present" if (model.firmware_dir / name).is_file() else "missing"
            click.echo(f"    {name}: {state}")
        for _, generation, refusal in (r for r in refused if r[0] is model):
            click.echo(f"  REFUSED SETTING{f' ({generation})' if generation else ''}: {refusal}")
    for tie in site.file_conflicts() + site.ties:
        click.echo(f"TIE {tie}")
    for broken in site.plugins.broken:
        click.echo(f"BROKEN {broken.name} ({broken.value}): {broken.error}")
    if not site.models:
        click.echo("no device models installed (pip install autoprov-polycom-ip330, ...)")


def _seen_user_agents(site: Site) -> list[str]:
    """Distinct User-Agents in the sightings; none before `autoprov init` or with the database down."""
    seen = Sighting.select(Sighting.user_agent).distinct().order_by(Sighting.user_agent).limit(SCORED_USER_AGENTS)
    try:
        with site.db.atomic():  # PostgreSQL: a failed query must not poison the connection for what follows
            return [ua for (ua,) in seen.tuples()]
    except peewee.PeeweeException as exc:
        if not is_unavailable(exc):
            raise
        return []


@click.group("config")
def config_group() -> None:
    """The configuration in use."""


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _toml_lines(name: str, table: dict[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    nested = []
    for key, value in table.items():
        shown = key if _BARE_KEY.match(key) else json.dumps(key)
        if isinstance(value, dict):
            nested.append((f"{name}.{shown}", value))
        else:
            lines.append(f"{shown} = {_toml_value(value)}")
    for sub, value in nested:
        lines += ["", *_toml_lines(sub, value)]
    return lines


def database_state(site: Site) -> str:
    """The schema versions recorded in the database, or why there are none."""
    try:
        with site.activated(), site.db.connection_context():
            versions = current_versions(site.db)
            behind = outdated(site.db, site.migrations())
    except peewee.PeeweeException as exc:
        return one_line(f"unavailable: {exc}")
    if not versions:
        return "no schema: run `autoprov init`"
    text = ", ".join(f"{component} {version}" for component, version in sorted(versions.items()))
    if behind:
        pending = ", ".join(f"{component} {have} < {want}" for component, have, want in behind)
        return f"{text} (behind the installed autoprov: {pending}: run `autoprov init`)"
    return f"{text} (up to date)"


@config_group.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """The configuration file in use, the effective settings (secrets masked as ***) and the database."""
    site = ctx.find_object(LazySite).get()
    s = site.settings
    if os.path.isabs(s.source):
        click.echo(f"# configuration file: {s.source} (relative paths in it: from {os.path.dirname(s.source)})")
    else:
        click.echo(f"# configuration file: none, {s.source} (relative paths: from {os.getcwd()})")
    overrides = [var for var in ENV_OVERRIDES if os.environ.get(var)]
    if overrides:
        click.echo(f"# environment overrides: {', '.join(overrides)}")
    click.echo(f"# database: {describe_database(s.database.url)}")
    path = sqlite_path(site.db)
    if path is not None and not path.exists():  # connecting would create an empty file
        click.echo("# schema: no schema, no file yet: run `autoprov init`")
    else:
        click.echo(f"# schema: {database_state(site)}")
    click.echo(f"# firmware: {os.path.abspath(s.firmware.root)}")
    for name, table in masked_settings(s).items():
        click.echo("")
        click.echo("\n".join(_toml_lines(name, table)))


SITE_COMMANDS = (init, serve, models, config_group)
