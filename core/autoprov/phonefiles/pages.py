"""Phonefiles' panels on a phone's admin page: its stored overrides and contacts (current file, every version
with what it changed, clear), and its uploaded log lines with level, time and text filters."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import click
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from autoprov import hookimpl
from autoprov.adminui import AdminPage, PhoneSection, templates_beside
from autoprov.adminui.app import AdminRequest
from autoprov.mac import InvalidMac, normalize_mac
from autoprov.phonefiles import logquery, storedfiles
from autoprov.phonefiles.cli import format_line, parse_since, phone_zone
from autoprov.phonefiles.storedfiles import CONTACTS, OVERRIDES, Kind
from autoprov.phonefiles.tables import LogFile

templates = templates_beside(__file__)
KINDS = {kind.directory: kind for kind in (OVERRIDES, CONTACTS)}
LOG_LIMIT = 200
LEVELS = [("", "any"), ("1", "1 and above"), ("2", "2 and above"), ("3", "3 and above"), ("4", "warnings and above"),
          ("5", "errors and above"), ("6", "fatal")]


@dataclass(frozen=True)
class Version:
    number: int
    stored_at: str
    source: str
    cleared: bool
    size: int
    diff: list[tuple[str, str]]  # (css class, line) of a unified diff against the version before


def _versions(mac: str, kind: Kind, name: str) -> list[Version]:
    """Every version of one file, newest first, each with what it changed."""
    out: list[Version] = []
    old: list[str] = []
    for row in storedfiles.history(mac, kind, name):
        text = b"" if row.content is None else storedfiles.content_of(row)
        lines = text.decode("utf-8", "replace").splitlines()
        diff = [(("add" if d.startswith("+") else "del" if d.startswith("-") else ""), d)
                for d in difflib.unified_diff(old, lines, f"v{row.version - 1}", f"v{row.version}", lineterm="", n=1)
                if not d.startswith(("---", "+++"))]
        out.append(Version(row.version, f"{row.stored_at:%Y-%m-%d %H:%M:%S}", row.source, row.content is None,
                           row.size, diff))
        old = lines
    return out[::-1]


def _stored_panel(kind: Kind):  # type: ignore[no-untyped-def]
    def render(ui: AdminRequest, mac: str) -> str:
        files = []
        for name in storedfiles.names(mac, kind):
            row = storedfiles.current(mac, kind, name)
            body = storedfiles.content_of(row).decode("utf-8", "replace") if row is not None else None
            files.append((name, body, _versions(mac, kind, name)))
        return templates.text(ui, "pf_stored.mako", kind=kind, mac=mac, files=files)

    return render


def _logs_panel(ui: AdminRequest, mac: str) -> str:
    level, since_text, grep, file = ui.args("log_level"), ui.args("log_since").strip(), ui.args("log_grep"), \
        ui.args("log_file")
    zone = phone_zone(ui.site, mac)
    error = ""
    since = None
    if since_text:
        try:
            since = parse_since(since_text, zone)
        except click.BadParameter as exc:
            error = exc.message
    min_level = int(level) if level.isdigit() and int(level) <= 6 else None
    names = [f.name for f in LogFile.select(LogFile.name).where(LogFile.mac == mac).order_by(LogFile.name)]
    file = file if file in names else ""
    lines: list[tuple[str, bool]] = []
    if not error and names:
        rows = list(logquery.query_lines(mac, file or None, min_level, since, grep or None, LOG_LIMIT))
        pending = logquery.pending_lines(mac, file or None, logquery.line_filter(min_level, since, grep or None))
        lines = [(format_line(line, zone), incomplete)
                 for line, incomplete in logquery.with_pending(rows, pending, limited=True)]
    return templates.text(ui, "pf_logs.mako", mac=mac, names=names, lines=lines, zone=zone.key, error=error,
                          values={"log_level": level, "log_since": since_text, "log_grep": grep, "log_file": file},
                          levels=LEVELS, limit=LOG_LIMIT)


def clear_stored(ui: AdminRequest, mac: str, directory: str) -> Response:
    """Stop serving a phone's overrides or contacts (one file or all); the history keeps what they held."""
    kind = KINDS.get(directory)
    try:
        mac = normalize_mac(mac)
    except InvalidMac:
        raise NotFound() from None
    if kind is None:
        raise NotFound()
    name = ui.form("name")
    names = (name,) if name in storedfiles.names(mac, kind) else None
    cleared = storedfiles.clear(ui.site.db, mac, kind, names)
    if cleared:  # after the clear's own transaction: storedfiles retries it on a concurrent write
        ui.audit(f"{directory} clear", mac, ", ".join(cleared))
    return ui.redirect("phone", f"Cleared {', '.join(cleared)}." if cleared else "Nothing to clear.", mac=mac)


@hookimpl
def autoprov_admin_pages() -> list[AdminPage]:
    return [AdminPage("phones/<mac>/stored/<directory>/clear", "stored_clear", clear_stored, methods=("POST",))]


@hookimpl
def autoprov_admin_phone_sections() -> list[PhoneSection]:
    return [
        PhoneSection("Overrides (settings changed on the phone)", _stored_panel(OVERRIDES), order=50),
        PhoneSection("Contacts (the phone's own directory)", _stored_panel(CONTACTS), order=60),
        PhoneSection("Logs", _logs_panel, order=70),
    ]
