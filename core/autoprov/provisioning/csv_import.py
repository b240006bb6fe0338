"""Bulk import of extensions and phones from one CSV file, all or nothing (``autoprov import FILE.csv``).

One row is one extension, optionally placed on a line of a phone; a phone with two lines is two rows with
the same MAC. Every row is checked before anything is written, and every bad row is reported as
``line N: message`` with N the line of the file where the row starts. Then everything is inserted in one
transaction with a handful of bulk statements, so 100,000 phones take seconds, not hours. The rules and
columns are documented in docs/import.md.
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from autoprov.atrest import keyring_of
from autoprov.bulk import insert_rows
from autoprov.provisioning.admin import (
    AdminError,
    ExtensionData,
    check_model,
    check_time_zone,
    check_with_model,
    parse_mac,
)
from autoprov.site import Site
from autoprov.tables import Extension, Phone, PhoneLine, utcnow

EXTENSION_COLUMNS = ("secret", "first_name", "last_name", "mailbox", "directory", "sip_server", "sip_port")
PHONE_COLUMNS = ("model", "time_zone", "notes")
COLUMNS = ("extension", *EXTENSION_COLUMNS, "mac", *PHONE_COLUMNS, "line")

_BOOLEANS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}

class ImportFailed(Exception):
    """The file was refused; nothing was written. ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


@dataclass
class ImportResult:
    extensions: int  # new extensions created
    phones: int
    lines: int


@dataclass(slots=True)  # one per extension or phone: 100,000s of them
class _Ext:
    line: int  # first row that mentions it
    values: dict[str, Any] = field(default_factory=dict)  # column -> parsed value, blank columns absent
    where: dict[str, int] = field(default_factory=dict)  # column -> line that set it
    phone_rows: list[int] = field(default_factory=list)


@dataclass(slots=True)  # one per extension or phone: 100,000s of them
class _Phone:
    line: int
    values: dict[str, str] = field(default_factory=dict)
    where: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[int, str, int | None]] = field(default_factory=list)  # (line, user_id, position or None)


def import_file(site: Site, path: Path | str) -> ImportResult:
    """Check the whole file, then add its extensions, phones and lines in one transaction; raise
    :class:`ImportFailed` listing every problem, having written nothing."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([f"{path}: {exc.strerror or exc}"]) from None
    return import_text(site, _decode(path, raw), str(path))


def import_text(site: Site, text: str, name: str = "<csv>") -> ImportResult:
    """:func:`import_file` on text already read."""
    with site.db.connection_context(), _no_gc_pauses():
        plan = _Plan(site)
        plan.read(_rows(text, name), name)
        if plan.errors:
            raise ImportFailed(plan.errors)
        return plan.write(site.db)


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Hold off the cycle collector: the plan allocates millions of objects that all stay alive, so its
    passes over them free nothing and cost a third of the run time; none of them form cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw:
        raise ImportFailed([f"{path}: not a CSV text file (it contains NUL bytes; a spreadsheet must be saved as CSV)"])
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            [f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as CSV UTF-8"]
        ) from None


def _rows(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells) for each record; quoted fields may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFailed([f"{name}: line {start}: not valid CSV: {exc}"]) from None


def _columns(cells: list[str]) -> tuple[list[str | None], list[str]]:
    """Header cells -> known column name (or None for a blank trailing header), and errors."""
    names: list[str | None] = []
    errors: list[str] = []
    for cell in cells:
        name = cell.strip().lower().replace(" ", "_").replace("-", "_")
        if not name:
            names.append(None)
        elif name not in COLUMNS:
            hint = " (the file must be comma-separated)" if any(c in cell for c in ";\t") else ""
            errors.append(f"line 1: unknown column {cell.strip()!r}{hint}; known columns: {', '.join(COLUMNS)}")
            names.append(None)
        elif name in names:
            errors.append(f"line 1: column {name!r} appears twice")
            names.append(None)
        else:
            names.append(name)
    if "extension" not in names and not errors:
        errors.append("line 1: the header has no 'extension' column (the first line must name the columns)")
    return names, errors


class _Plan:
    """Everything the file asks for, checked against itself and the database before anything is written."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.errors: list[str] = []
        self.exts: dict[str, _Ext] = {}
        self.phones: dict[str, _Phone] = {}
        self._zones: dict[str, str | None] = {}  # zone -> error message or None; thousands of rows share a few
        # One query each: what the file must not collide with or may refer to.
        keys = keyring_of(site.db)  # _fetch reads rows raw: secrets as stored
        self.existing_exts = {
            row[0]: (keys.unseal(row[1]), *row[2:])
            for row in _fetch(Extension.select(
                Extension.user_id, Extension.secret, Extension.first_name, Extension.last_name, Extension.mailbox,
                Extension.in_directory, Extension.server, Extension.port,
            ))
        }
        self.existing_macs = {mac for (mac,) in _fetch(Phone.select(Phone.mac))}

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"line {line}: {message}")

    # -- reading -------------------------------------------------------------------------------------------

    def read(self, rows: Iterator[tuple[int, list[str]]], name: str) -> None:
        header = next(rows, None)
        if header is None:
            raise ImportFailed([f"{name}: the file is empty; its first line must name the columns (extension, ...)"])
        names, errors = _columns(header[1])
        if errors:
            raise ImportFailed(errors)  # rows cannot be read against a wrong header
        width = len(names)
        unnamed = [i for i, n in enumerate(names) if n is None]  # blank header cells spreadsheets leave
        for line, cells in rows:
            if not any(c.strip() for c in cells):
                continue  # blank lines, and the ",,,," rows spreadsheets leave behind
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                self.error(line, f"{len(cells)} fields but the header names {width}")
                continue
            lost = [i + 1 for i in unnamed if i < len(cells) and cells[i].strip()]
            if lost:
                self.error(line, f"a value in field {lost[0]}, which has no column name in the header")
                continue
            # Short rows: spreadsheets drop trailing empty cells. The secret is kept exactly as written.
            row = {
                name: (cells[i] if name == "secret" else cells[i].strip())
                for i, name in enumerate(names)
                if name is not None and i < len(cells) and cells[i].strip()
            }
            self._row(line, row)
        self._finish()

    def _row(self, line: int, row: dict[str, str]) -> None:
        user_id = row.get("extension", "")
        if not user_id:
            self.error(line, "the extension column is empty")
            return
        values = self._extension_values(line, user_id, row)
        if values is not None:
            ext = self.exts.get(user_id)
            if ext is None:
                ext = self.exts[user_id] = _Ext(line)
            self._merge(line, f"extension {user_id}", ext.values, ext.where, values)
        mac_text = row.get("mac")
        if mac_text is None:
            stray = [c for c in (*PHONE_COLUMNS, "line") if c in row]
            if stray:
                self.error(line, f"{', '.join(stray)} given without a mac")
            return
        try:
            mac = parse_mac(mac_text)
        except AdminError as exc:
            self.error(line, str(exc))
            return
        position = None
        if "line" in row:
            position = int(row["line"]) if _is_number(row["line"]) else 0
            if position < 1:
                self.error(line, f"line position {row['line']!r} is not a whole number from 1")
                return
        phone_values = {c: row[c] for c in PHONE_COLUMNS if c in row}
        if "time_zone" in phone_values and not self._zone_ok(line, phone_values["time_zone"]):
            return
        phone = self.phones.get(mac)
        if phone is None:
            phone = self.phones[mac] = _Phone(line)
        self._merge(line, f"phone {mac}", phone.values, phone.where, phone_values)
        phone.rows.append((line, user_id, position))
        if values is not None:
            self.exts[user_id].phone_rows.append(line)

    def _extension_values(self, line: int, user_id: str, row: dict[str, str]) -> dict[str, Any] | None:
        """The row's extension columns parsed and checked by admin's rules; None (reported) if invalid."""
        values: dict[str, Any] = {c: row[c] for c in EXTENSION_COLUMNS if c in row}
        try:
            if "directory" in values:
                flag = _BOOLEANS.get(values["directory"].lower())
                if flag is None:
                    raise AdminError(f"directory {values['directory']!r}: use yes or no")
                values["directory"] = flag
            if "sip_port" in values:
                if not _is_number(values["sip_port"]):
                    raise AdminError(f"sip_port {values['sip_port']!r} is not a number")
                values["sip_port"] = int(values["sip_port"])
            _extension_data(user_id, values).validate()
        except AdminError as exc:
            self.error(line, str(exc))
            return None
        return values

    def _zone_ok(self, line: int, zone: str) -> bool:
        if zone not in self._zones:
            try:
                check_time_zone(zone)
                self._zones[zone] = None
            except AdminError as exc:
                self._zones[zone] = str(exc)
        if self._zones[zone] is not None:
            self.error(line, self._zones[zone])
            return False
        return True

    def _merge(self, line: int, what: str, into: dict[str, Any], where: dict[str, int], values: dict[str, Any]) -> None:
        """Rows that repeat an extension or phone may leave its columns blank or repeat them, never differ."""
        for column, value in values.items():
            if column not in into:
                into[column] = value
                where[column] = line
            elif into[column] == value:
                continue
            elif column == "secret":  # not echoed to a terminal or a log
                self.error(line, f"{what}: secret differs from line {where[column]}")
            else:
                self.error(line, f"{what}: {column} {_show(value)} differs from line {where[column]} "
                                 f"({_show(into[column])})")

    # -- whole-file checks ---------------------------------------------------------------------------------

    def _finish(self) -> None:
        for user_id, ext in self.exts.items():
            existing = self.existing_exts.get(user_id)
            if existing is not None:
                current = dict(zip(("secret", "first_name", "last_name", "mailbox", "directory", "sip_server",
                                    "sip_port"), existing, strict=True))
                current["directory"] = bool(current["directory"])  # SQLite gives 0/1
                for column, value in ext.values.items():
                    if current[column] != value:
                        self.error(ext.where[column], f"extension {user_id} already exists with a different "
                                                      f"{column}; leave its columns blank to put it on a phone")
            elif "secret" not in ext.values:
                if ext.values or not ext.phone_rows:
                    self.error(ext.line, f"extension {user_id} is new and needs a secret (the PBX's SIP password)")
                else:
                    for line in ext.phone_rows:
                        self.error(line, f"unknown extension {user_id} (not in the file or the database)")
        for mac, phone in self.phones.items():
            self._finish_phone(mac, phone)
        self.errors.sort(key=_line_of)

    def _finish_phone(self, mac: str, phone: _Phone) -> None:
        if mac in self.existing_macs:
            self.error(phone.line, f"duplicate MAC: phone {mac} already exists")
        taken: dict[int, int] = {}
        for line, _, position in phone.rows:
            if position is None:
                continue
            if position in taken:
                self.error(line, f"phone {mac}: line {position} is already given on line {taken[position]}")
            else:
                taken[position] = line
        # Rows without a position take the lowest free ones, in file order.
        free = (p for p in range(1, len(phone.rows) + len(taken) + 1) if p not in taken)
        phone.rows = [(line, u, p if p is not None else next(free)) for line, u, p in phone.rows]
        model = phone.values.get("model")
        if model is None:
            self.error(phone.line, f"phone {mac} needs a model")
            return
        try:
            check_model(self.site, model, len(phone.rows))
        except AdminError as exc:
            # Too many lines: point at the first row that does not fit, not at the one naming the model.
            line = phone.rows[self.site.models[model].line_count][0] if model in self.site.models else None
            self.error(line or phone.where["model"], f"phone {mac}: {exc}")
            return
        limit = self.site.models[model].line_count
        for line, _, position in phone.rows:
            if position > limit:
                self.error(line, f"phone {mac}: {model} has {limit} line(s); there is no line {position}")
        extensions = [self._extension_data(user_id) for _, user_id, _ in sorted(phone.rows, key=lambda r: r[2])]
        if None not in extensions:
            try:
                check_with_model(self.site, model, mac, extensions, phone.values.get("time_zone"))
            except AdminError as exc:
                self.error(phone.line, str(exc))

    def _extension_data(self, user_id: str) -> ExtensionData | None:
        """An extension as the phone will carry it: from the file, else from the database (None: neither)."""
        existing = self.existing_exts.get(user_id)
        if existing is not None:
            secret, first, last, mailbox, listed, server, port = existing
            return ExtensionData(user_id, secret, first, last, mailbox, server, port, bool(listed))
        ext = self.exts.get(user_id)
        if ext is None or "secret" not in ext.values:
            return None
        v = ext.values
        return ExtensionData(user_id, v["secret"], v.get("first_name", ""), v.get("last_name", ""),
                             v.get("mailbox", ""), v.get("sip_server"), v.get("sip_port"))

    # -- writing -------------------------------------------------------------------------------------------

    def write(self, db: peewee.Database) -> ImportResult:
        new_exts = [
            (
                user_id,
                e.values["secret"],
                e.values.get("first_name", ""),
                e.values.get("last_name", ""),
                e.values.get("mailbox", ""),
                e.values.get("directory", True),
                e.values.get("sip_server"),
                e.values.get("sip_port"),
            )
            for user_id, e in self.exts.items()
            if user_id not in self.existing_exts
        ]
        now = utcnow()
        new_phones = [
            (mac, p.values["model"], p.values.get("time_zone"), p.values.get("notes", ""), now)
            for mac, p in self.phones.items()
        ]
        ext_fields = [Extension.user_id, Extension.secret, Extension.first_name, Extension.last_name,
                      Extension.mailbox, Extension.in_directory, Extension.server, Extension.port]
        phone_fields = [Phone.mac, Phone.model, Phone.time_zone, Phone.notes, Phone.created]
        line_fields = [PhoneLine.phone, PhoneLine.position, PhoneLine.extension]
        try:
            with db.atomic():
                insert_rows(db, Extension, ext_fields, new_exts)
                insert_rows(db, Phone, phone_fields, new_phones)
                # Ids of what was just inserted, one query per table rather than one per row.
                ext_ids = dict(_fetch(Extension.select(Extension.user_id, Extension.id)))
                wanted = self.phones.keys()
                phone_ids = {mac: pk for mac, pk in _fetch(Phone.select(Phone.mac, Phone.id)) if mac in wanted}
                lines = [
                    (phone_ids[mac], position, ext_ids[user_id])
                    for mac, p in self.phones.items()
                    for _, user_id, position in p.rows
                ]
                insert_rows(db, PhoneLine, line_fields, lines)
        except peewee.IntegrityError as exc:  # someone added the same MAC or extension meanwhile
            raise ImportFailed([f"the database refused the import, nothing was imported: {exc}"]) from None
        return ImportResult(extensions=len(new_exts), phones=len(new_phones), lines=len(lines))


def _extension_data(user_id: str, v: dict[str, Any]) -> ExtensionData:
    return ExtensionData(
        user_id=user_id,
        secret=v.get("secret"),
        first_name=v.get("first_name", ""),
        last_name=v.get("last_name", ""),
        mailbox=v.get("mailbox", ""),
        server=v.get("sip_server"),
        port=v.get("sip_port"),
        in_directory=v.get("directory", True),
    )


def _fetch(query: peewee.Select) -> list[tuple]:
    """All rows as the driver returns them: peewee's row wrapping triples the time of a 200,000-row read."""
    return query.model._meta.database.execute_sql(*query.sql()).fetchall()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value)


def _line_of(error: str) -> int:
    return int(error.split(":", 1)[0].removeprefix("line "))


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²", which int() then refuses."""
    return text.isascii() and text.isdigit()
