"""Commands: ``autoprov logs show|files|prune``, ``autoprov overrides|contacts show|history|clear``."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from zoneinfo import ZoneInfo

import click

from autoprov import hookimpl
from autoprov.cli import parse_mac, pass_site
from autoprov.devices import DeviceModel
from autoprov.phonefiles import logquery, logs, storedfiles
from autoprov.phonefiles.files import line_parser
from autoprov.phonefiles.storedfiles import CONTACTS, OVERRIDES, Kind
from autoprov.phonefiles.tables import LogFile, LogLine, StoredFile
from autoprov.site import Site
from autoprov.tables import Phone, Sighting, utcnow

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LEVELS = "debug, 1, 2, 3, 4 (warning), 5 (error), 6 (fatal)"
INCOMPLETE = "[incomplete: no newline yet]"


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 30d, 12h or 90m")
    return dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_since(text: str, zone: dt.tzinfo) -> logquery.Since:
    """A duration back from now (``2h``) or a date/time in the phone's ``zone`` (``2025-01-31``,
    ``2025-01-31T08:00``; one with an offset, ``...T08:00+00:00``, is taken as it says)."""
    if _DURATION.fullmatch(text.strip()):
        return logquery.Since.at((utcnow() - parse_duration(text)).replace(tzinfo=dt.UTC), zone)
    try:
        return logquery.Since.at(dt.datetime.fromisoformat(text), zone)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (2h, 7d) nor a date (2025-01-31T08:00)") from None


def phone_zone(site: Site, mac: str) -> ZoneInfo:
    """The zone of the phone's clock: its own time zone, else the site's (``[time] time_zone``)."""
    phone = Phone.get_or_none(Phone.mac == mac)
    return ZoneInfo(phone.time_zone if phone is not None and phone.time_zone else site.settings.time.time_zone)


def format_line(line: LogLine, zone: dt.tzinfo) -> str:
    """One line, its time on the phone's clock (a line without a time of its own: when it was uploaded)."""
    if not line.parsed:
        uploaded = line.received_at.replace(tzinfo=dt.UTC).astimezone(zone)
        return f"{uploaded:%Y-%m-%d %H:%M:%S} {line.file} RAW {line.message}"
    if line.phone_time is not None:
        when = f"{line.phone_time:%Y-%m-%d %H:%M:%S}"
    elif line.uptime is not None:
        when = f"boot+{line.uptime:.3f}s"
    else:
        when = line.stamp or "?"
    level = "*" if line.level is None else str(line.level)
    return f"{when} {line.file} {line.module or '':<5} {level} {line.message}"


# --- logs -------------------------------------------------------------------------------------------------

@click.group("logs")
def logs_group() -> None:
    """Log files phones upload, stored line by line."""


@logs_group.command("show")
@click.argument("mac")
@click.option("--file", "file", help="Only this file: app, boot, ... (<mac>-<file>.log).")
@click.option("--level", type=click.IntRange(0, 6), help=f"Only lines at this level or above ({LEVELS}).")
@click.option("--since", help="Only lines since a time ago (2h, 7d) or a date/time in the phone's zone "
              "(2025-01-31T08:00).")
@click.option("--grep", help="Only lines whose message contains this text (case-insensitive).")
@click.option("--limit", default=200, show_default=True, help="The newest N lines; 0 for all.")
@pass_site
def logs_show(site: Site, mac: str, file: str | None, level: int | None, since: str | None, grep: str | None,
              limit: int) -> None:
    """A phone's log lines, oldest first, times in the phone's zone: its own clock where it wrote one, else
    when the line was uploaded. A file's last line without its newline yet is shown after that file's
    newest line, marked incomplete."""
    mac = parse_mac(mac)
    zone = phone_zone(site, mac)
    since_time = parse_since(since, zone) if since else None
    rows = list(logquery.query_lines(mac, file, level, since_time, grep, limit or None))
    model = phone_model(site, mac)
    pending = logquery.pending_lines(mac, file, logquery.line_filter(level, since_time, grep),
                                     line_parser(site, model) if model else logs.unparsed)
    if not rows and not pending:
        _no_lines(mac, file)
        return
    click.echo(f"# {mac}: times in {zone.key}, the phone's zone (RAW lines: when they were uploaded)")
    for line, incomplete in logquery.with_pending(rows, pending, limited=bool(limit)):
        click.echo(format_line(line, zone) + (f" {INCOMPLETE}" if incomplete else ""))


def _no_lines(mac: str, file: str | None) -> None:
    """Nothing to show: an error if nothing is stored (as for overrides and contacts), else a note."""
    query = LogFile.select().where(LogFile.mac == mac)
    if file:
        query = query.where(LogFile.name == file)
    what = f"{mac}-{file}.log" if file else f"logs of {mac}"
    if not query.exists():
        raise click.ClickException(f"no {what} stored (`autoprov logs files` lists those there are)")
    click.echo(f"no line of the {what} matches", err=True)


@logs_group.command("files")
@click.argument("mac", required=False)
@pass_site
def logs_files(site: Site, mac: str | None) -> None:
    """Log files uploaded (all phones, or one): stored length, generation, last upload (UTC)."""
    query = LogFile.select().order_by(LogFile.mac, LogFile.name)
    if mac:
        query = query.where(LogFile.mac == parse_mac(mac))
    for f in query:
        updated = f"{f.updated:%Y-%m-%d %H:%M:%S} UTC"
        click.echo(f"{f.mac}-{f.name}.log\t{f.received} bytes\tgeneration {f.generation}\tupdated {updated}")


@logs_group.command("prune")
@click.option("--older-than", "older_than", help="Age, e.g. 30d (default: [uploads] log_retention_days).")
@pass_site
def logs_prune(site: Site, older_than: str | None) -> None:
    """Delete log lines uploaded longer ago than this."""
    if older_than:
        age = parse_duration(older_than)
    elif site.settings.uploads.log_retention_days > 0:
        age = dt.timedelta(days=site.settings.uploads.log_retention_days)
    else:
        raise click.ClickException("log_retention_days is 0 (keep forever): give --older-than")
    removed = logquery.prune(site.db, age)
    click.echo(f"pruned {removed} log line(s) uploaded before {utcnow() - age:%Y-%m-%d %H:%M:%S} UTC")


# --- overrides and contacts: one group per kind, built by one function ----------------------------------

def _nothing_stored(kind: Kind, mac: str) -> str:
    return f"nothing stored in {kind.directory}/ for {mac}"


def _stored_version(mac: str, kind: Kind, name: str, version: int | None) -> StoredFile | None:
    """That version of the file, or its newest (a clear too); None if there is no such version."""
    if version is None:
        return storedfiles.latest(mac, kind, name)
    return StoredFile.get_or_none(StoredFile.mac == mac, StoredFile.directory == kind.directory,
                                  StoredFile.name == name, StoredFile.version == version)


def stored_files_group(kind: Kind, help_text: str, show_help: str) -> click.Group:
    group = click.Group(kind.directory, help=help_text)
    file_option = click.option("--file", "name", help="One file by name, e.g. phone.cfg (default: all stored).")

    @group.command("show", help=show_help)
    @click.argument("mac")
    @file_option
    @click.option("--version", type=int, help="An earlier version (see history).")
    @pass_site
    def show(site: Site, mac: str, name: str | None, version: int | None) -> None:
        mac = parse_mac(mac)
        shown, cleared = False, []
        for file_name in (name,) if name else storedfiles.names(mac, kind):
            row = _stored_version(mac, kind, file_name, version)
            if row is None:
                continue
            path, when = f"{kind.directory}/{mac}-{file_name}", f"{row.stored_at:%Y-%m-%d %H:%M:%S} UTC"
            if row.content is None:
                cleared.append(f"{path} was cleared (version {row.version}, {when})")
                continue
            click.echo(f"==> {path} (version {row.version}, {when})")
            click.echo(storedfiles.content_of(row).decode("utf-8", errors="replace"))
            shown = True
        if cleared:
            note = f"{'; '.join(cleared)}: `autoprov {kind.directory} history {mac} --diff` shows what it held"
            if not shown:
                raise click.ClickException(note)
            click.echo(note, err=True)
        elif not shown:
            versions = sorted({row.version for row in storedfiles.history(mac, kind, name)})
            if version is not None and versions:
                raise click.ClickException(
                    f"{kind.directory}/ of {mac} has no version {version} (versions stored: "
                    f"{', '.join(map(str, versions))}; `autoprov {kind.directory} history {mac}` lists them)"
                )
            raise click.ClickException(_nothing_stored(kind, mac))

    @group.command("history")
    @click.argument("mac")
    @file_option
    @click.option("--diff", is_flag=True, help="Show what each version changed.")
    @pass_site
    def history(site: Site, mac: str, name: str | None, diff: bool) -> None:
        """Every version the phone (or the admin's clear) stored, oldest first."""
        mac = parse_mac(mac)
        rows = storedfiles.history(mac, kind, name)
        if not rows:
            raise click.ClickException(_nothing_stored(kind, mac))
        previous: dict[str, tuple[str, list[str]]] = {}
        for row in rows:
            what = "CLEARED" if row.content is None else f"{row.size} bytes sha256 {row.sha256[:12]}"
            label = f"{row.name} v{row.version} {row.stored_at:%Y-%m-%d %H:%M:%S}"
            click.echo(f"{label} UTC {what} from {row.source}")
            if diff:
                text = b"" if row.content is None else storedfiles.content_of(row)
                lines = text.decode("utf-8", "replace").splitlines()
                before, old = previous.get(row.name, (f"{row.name} (none)", []))
                for d in difflib.unified_diff(old, lines, before, label, lineterm="", n=1):
                    click.echo(f"    {d}")
                previous[row.name] = label, lines

    @group.command("clear")
    @click.argument("mac")
    @file_option
    @pass_site
    def clear(site: Site, mac: str, name: str | None) -> None:
        """Stop serving the phone's files (history is kept)."""
        mac = parse_mac(mac)
        cleared = storedfiles.clear(site.db, mac, kind, (name,) if name else None)
        click.echo(f"cleared {', '.join(cleared)} for {mac}" if cleared else f"nothing to clear for {mac}")

    return group


@hookimpl
def autoprov_register_commands(cli: click.Group) -> None:
    cli.add_command(logs_group)
    cli.add_command(stored_files_group(
        OVERRIDES, "Settings users changed on their phones (served back at boot).",
        "Print the phone's stored overrides, which it is served as they are (or an earlier version)."))
    cli.add_command(stored_files_group(
        CONTACTS, "Phones' own directories (merged with the company directory).",
        "Print the phone's contacts as it uploaded them (or an earlier version); the phone is served them "
        "merged with the company directory."))


def phone_model(site: Site, mac: str) -> DeviceModel | None:
    """The installed model of phone ``mac``: as the database has it, else as its User-Agent last said."""
    phone = Phone.get_or_none(Phone.mac == mac)
    name = phone.model if phone else None
    if name is None:
        seen = Sighting.select(Sighting.model).where(Sighting.mac == mac, Sighting.model.is_null(False))
        newest = seen.order_by(Sighting.last_seen.desc()).first()
        name = newest.model if newest else None
    return site.models.get(name) if name else None
