"""Provisioning commands: extension, phone, render, import, sightings (init, serve, models: autoprov.sitecommands)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from autoprov import hookimpl
from autoprov.cli import one_line, pass_site
from autoprov.devices import GENERATED, PHONE
from autoprov.mac import format_mac
from autoprov.phones import phone_view
from autoprov.provisioning import admin, affected
from autoprov.provisioning.admin import ExtensionData
from autoprov.site import Site
from autoprov.tables import Extension, Phone, PhoneLine, Sighting


@click.group()
def extension() -> None:
    """SIP accounts (extensions)."""


@extension.command("add")
@click.argument("user_id")
@click.option("--secret", help="SIP password (default: a random one, printed once).")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option(
    "--mailbox", default="", help="What the phone subscribes to for message waiting: 1001 or 1001@pbx.example.com."
)
@click.option("--server", help="SIP server host (default: [sip] server).")
@click.option("--port", type=int, help="SIP server port (default: [sip] port).")
@click.option("--directory/--no-directory", default=True, help="List in the company directory.")
@pass_site
def extension_add(
    site: Site,
    user_id: str,
    secret: str | None,
    first_name: str,
    last_name: str,
    mailbox: str,
    server: str | None,
    port: int | None,
    directory: bool,
) -> None:
    """Add an extension."""
    data = ExtensionData(user_id, secret, first_name, last_name, mailbox, server, port, directory)
    ext = admin.add_extension(data)
    click.echo(f"added extension {ext.user_id}")
    if secret is None:
        click.echo(f"secret: {ext.secret}")


@extension.command("update")
@click.argument("user_id")
@click.option("--secret", help="New SIP password.")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--mailbox")
@click.option("--server", help="SIP server host ('' for the site default).")
@click.option("--port", type=int)
@click.option("--directory/--no-directory", default=None, help="List in the company directory or not.")
@click.option("--notify", is_flag=True, help="Make the phones whose config changed re-read it now (check-sync).")
@pass_site
def extension_update(site: Site, user_id: str, directory: bool | None, notify: bool, **options: object) -> None:
    """Change an extension; options not given stay as they are. Says which phones' config changed."""
    changes = {k: v for k, v in options.items() if v is not None}
    if directory is not None:
        changes["in_directory"] = directory
    if not changes:
        raise click.UsageError("nothing to change")
    before = affected.served(site, affected.of_extension(user_id))
    admin.update_extension(user_id, site, **changes)
    click.echo(f"updated extension {user_id}: {', '.join(sorted(changes))}")
    affected.tell(site, affected.changed(site, before), notify)


@extension.command("list")
@pass_site
def extension_list(site: Site) -> None:
    """List extensions (secrets are not shown)."""
    for ext in Extension.select().order_by(Extension.user_id):
        server = f"{ext.server}:{ext.port or ''}".rstrip(":") if ext.server else "(site default)"
        listed = "" if ext.in_directory else "  [not in directory]"
        click.echo(f"{ext.user_id}\t{ext.display_name}\t{server}{listed}")


@extension.command("show")
@click.argument("user_id")
@click.option("--secret", "show_secret", is_flag=True, help="Also print the SIP password.")
@pass_site
def extension_show(site: Site, user_id: str, show_secret: bool) -> None:
    """One extension: its settings, the phones and lines it is on, and its secret only with --secret."""
    ext = Extension.get_or_none(Extension.user_id == user_id)
    if ext is None:
        raise click.ClickException(f"no extension {user_id}")
    click.echo(f"extension {ext.user_id}: {ext.display_name}")
    click.echo(f"first name: {ext.first_name}\nlast name: {ext.last_name}\nmailbox: {ext.mailbox or '-'}")
    server = f"{ext.server or site.settings.sip.server}:{ext.port or site.settings.sip.port}"
    click.echo(f"server: {server}{'' if ext.server else ' (site default)'}")
    click.echo(f"in directory: {'yes' if ext.in_directory else 'no'}")
    click.echo(f"secret: {ext.secret}" if show_secret else "secret: (hidden; --secret shows it)")
    rows = PhoneLine.select(PhoneLine, Phone).join(Phone).where(PhoneLine.extension == ext)
    for row in sorted(rows, key=lambda r: (r.phone.mac, r.position)):
        click.echo(f"phone {row.phone.mac} ({row.phone.model}) line {row.position}")
    if not rows:
        click.echo("on no phone")


@extension.command("remove")
@click.argument("user_id")
@pass_site
def extension_remove(site: Site, user_id: str) -> None:
    """Remove an extension that is on no phone."""
    admin.remove_extension(user_id)
    click.echo(f"removed extension {user_id}")


@click.group()
def phone() -> None:
    """Phones and their lines."""


@phone.command("add")
@click.argument("mac")
@click.option("--model", required=True, help="Model name, as `autoprov models` lists it.")
@click.option("--line", "lines", multiple=True, help="Extension for the next line (repeat, line 1 first).")
@click.option("--time-zone", help="IANA zone overriding the site's for this phone.")
@click.option("--notes", default="")
@click.option("--notify", is_flag=True, help="Make the phones whose config changed re-read it now (check-sync).")
@pass_site
def phone_add(site: Site, mac: str, model: str, lines: tuple[str, ...], time_zone: str | None, notes: str,
              notify: bool) -> None:
    """Add a phone: autoprov phone add 0004f2aabbcc --model polycom_ip330 --line 1001 --line 1002"""
    before = affected.served(site, [admin.parse_mac(mac)])
    p = admin.add_phone(site, mac, model, lines, time_zone, notes)
    click.echo(f"added phone {p.mac} ({p.model}) with {len(lines)} line(s)")
    affected.tell(site, affected.changed(site, before), notify, quiet=True)


@phone.command("update")
@click.argument("mac")
@click.option("--model", help="Model name, as `autoprov models` lists it.")
@click.option("--line", "lines", multiple=True, help="Replace the lines: extension for line 1, 2, ... (repeat).")
@click.option("--no-lines", is_flag=True, help="Remove every line.")
@click.option("--time-zone", help="IANA zone for this phone ('' for the site's).")
@click.option("--notes")
@click.option("--notify", is_flag=True, help="Make the phones whose config changed re-read it now (check-sync).")
@pass_site
def phone_update(
    site: Site,
    mac: str,
    model: str | None,
    lines: tuple[str, ...],
    no_lines: bool,
    time_zone: str | None,
    notes: str | None,
    notify: bool,
) -> None:
    """Change a phone; options not given stay as they are. Says whether its config changed."""
    if lines and no_lines:
        raise click.UsageError("--line and --no-lines contradict each other")
    new_lines = [] if no_lines else (list(lines) if lines else None)
    if model is None and new_lines is None and time_zone is None and notes is None:
        raise click.UsageError("nothing to change")
    before = affected.served(site, [admin.parse_mac(mac)])
    p = admin.update_phone(site, mac, model, new_lines, time_zone, notes)
    click.echo(f"updated phone {p.mac} ({p.model})")
    affected.tell(site, affected.changed(site, before), notify)


@phone.command("list")
@pass_site
def phone_list(site: Site) -> None:
    """List phones with their lines."""
    lines: dict[int, list[str]] = {}
    for row in PhoneLine.select(PhoneLine, Extension).join(Extension).order_by(PhoneLine.position):
        lines.setdefault(row.phone_id, []).append(row.extension.user_id)
    problems = {s.mac for s in Sighting.select(Sighting.mac).where(Sighting.problem != "")}
    for p in Phone.select().order_by(Phone.mac):
        flag = "  [problem: see phone show]" if p.mac in problems else ""
        click.echo(f"{p.mac}\t{p.model}\t{','.join(lines.get(p.id, [])) or '-'}{flag}")


@phone.command("show")
@click.argument("mac")
@pass_site
def phone_show(site: Site, mac: str) -> None:
    """A phone's lines, settings and what the server saw of it."""
    p = admin.get_phone(mac)
    click.echo(f"phone {p.mac} ({format_mac(p.mac)})")
    click.echo(f"model: {p.model}{'' if p.model in site.models else ' (NOT INSTALLED)'}")
    click.echo(f"time zone: {p.time_zone or site.settings.time.time_zone + ' (site)'}")
    if p.notes:
        click.echo(f"notes: {p.notes}")
    for line in phone_view(p, site.settings).lines:
        click.echo(f"line {line.index}: {line.user_id} {line.display_name!r} via {line.server}:{line.port}")
    for s in Sighting.select().where(Sighting.mac == p.mac).order_by(Sighting.last_seen.desc()):
        first = f" (first from {s.first_ip})" if s.first_ip and s.first_ip != s.ip else ""
        click.echo(f"seen {s.last_seen:%Y-%m-%d %H:%M:%S} UTC from {s.ip}{first} ({s.count}x): {s.user_agent}")
        if s.problem:
            click.echo(f"  PROBLEM: {s.problem}")
        if s.flag:
            click.echo(f"  FLAGGED: {s.flag}")


@phone.command("remove")
@click.argument("mac")
@pass_site
def phone_remove(site: Site, mac: str) -> None:
    """Remove a phone (its extensions stay)."""
    admin.remove_phone(mac)
    click.echo(f"removed phone {admin.parse_mac(mac)}")


@click.command()
@click.argument("mac")
@click.option("--file", "which", metavar="NAME",
              help="Another file the phone's model generates, by the name it declares (see `autoprov models`).")
@pass_site
def render(site: Site, mac: str, which: str | None) -> None:
    """Print a phone's config as the phone would get it (includes its SIP passwords)."""
    p = admin.get_phone(mac)
    model = site.models.get(p.model)
    if model is None:
        raise click.ClickException(f"phone {p.mac} is a {p.model}, which is not installed")
    declared = site.files_of(model)
    rules = [r for r in declared if (r.role == PHONE if which is None else r.pattern == which and
                                     r.role in (PHONE, GENERATED))]
    if not rules:
        names = ", ".join(r.pattern for r in declared if r.role in (PHONE, GENERATED))
        raise click.ClickException(f"{model.name} generates no file {which!r} (it generates: {names})")
    rule = rules[0]
    try:
        # With the provisioning login the phone is handed ([access] credentials), as the route renders it.
        view = replace(phone_view(p, site.settings), login=site.access.handed_login(p.mac))
        body = model.render(rule, view if rule.role == PHONE else None)
    except Exception as exc:  # the plugin's bug, in one line: the phone gets a 500 and a sighting for it
        raise click.ClickException(one_line(f"{model.name} failed to render {rule.pattern}: "
                                            f"{type(exc).__name__}: {exc}")) from None
    click.echo(body.decode("utf-8"), nl=False)


@click.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--notify", is_flag=True, help="Make the phones whose config changed re-read it now (check-sync).")
@pass_site
def import_csv(site: Site, csv_file: Path, notify: bool) -> None:
    """Add extensions and phones from a CSV file, all or nothing (columns: docs/import.md). Names the new
    phones that already asked for their config."""
    from autoprov.provisioning.csv_import import ImportFailed, import_file

    existing = {mac for (mac,) in Phone.select(Phone.mac).tuples()}
    try:
        result = import_file(site, csv_file)
    except ImportFailed as exc:
        for error in exc.errors:
            click.echo(error, err=True)
        raise click.ClickException(f"{len(exc.errors)} error(s); nothing was imported") from None
    click.echo(f"imported {result.extensions} extension(s), {result.phones} phone(s), {result.lines} line(s)")
    # An import only adds: existing phones keep their files; new ones were served nothing before.
    new = sorted({mac for (mac,) in Phone.select(Phone.mac).tuples()} - existing)
    affected.tell(site, affected.changed(site, dict.fromkeys(new)), notify, quiet=True)


@click.command()
@click.option("--unknown", is_flag=True, help="Only MACs that are not in the database.")
@click.option("--limit", default=50, show_default=True)
@pass_site
def sightings(site: Site, unknown: bool, limit: int) -> None:
    """Phones the server has seen, newest first (new phones arriving show up here); times in UTC."""
    query = Sighting.select().order_by(Sighting.last_seen.desc()).limit(limit)
    if unknown:
        query = query.where(Sighting.mac.not_in(Phone.select(Phone.mac)))
    for s in query:
        problem = (f"  PROBLEM: {s.problem}" if s.problem else "") + (f"  FLAGGED: {s.flag}" if s.flag else "")
        click.echo(
            f"{s.last_seen:%Y-%m-%d %H:%M:%S} UTC\t{s.mac or '-'}\t{s.ip}\t{s.model or '?'}\t"
            f"{s.firmware or '?'}\t{s.user_agent}{problem}"
        )


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    for command in (extension, phone, render, import_csv, sightings):
        cli.add_command(command)
