"""Changing extensions and phones, with the checks every front end shares (command line, CSV import, admin UI).

Every refusal is an :class:`AdminError` whose message is one line a person can act on.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, fields

import peewee

from autoprov.atrest import PREFIX as SEALED_PREFIX
from autoprov.config import HOST
from autoprov.devices import PhoneView
from autoprov.mac import InvalidMac, normalize_mac
from autoprov.phones import line_of
from autoprov.refused import Refused
from autoprov.site import Site
from autoprov.tables import Extension, Phone, PhoneLine
from autoprov.timezones import is_valid_zone

# SIP user part characters Asterisk endpoints use in practice; no spaces, quotes or '@'.
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")


class AdminError(Refused):
    """A refused change to extensions or phones; ``field`` names the form field it concerns, if one does."""


@dataclass
class ExtensionData:
    user_id: str
    secret: str | None = None
    first_name: str = ""
    last_name: str = ""
    mailbox: str = ""
    server: str | None = None
    port: int | None = None
    in_directory: bool = True

    def validate(self) -> None:
        if not _USER_ID.fullmatch(self.user_id):
            raise AdminError(f"extension {self.user_id!r}: use letters, digits and _.+- only")
        for label, value in (("secret", self.secret or ""), ("first name", self.first_name),
                             ("last name", self.last_name), ("mailbox", self.mailbox)):
            if _is_not_utf8(value):
                raise AdminError(f"extension {self.user_id}: the {label} is not valid UTF-8")
        # A character the phone's XML cannot carry would be dropped from the secret on the way to the phone,
        # leaving phone and Asterisk with different passwords: refuse it instead.
        if self.secret is not None and (not self.secret or any(_unprintable(c) for c in self.secret)):
            raise AdminError(f"extension {self.user_id}: the secret must be non-empty, printable and on one line")
        if self.secret is not None and len(self.secret) > 128:  # encrypted, it still fits the column
            raise AdminError(f"extension {self.user_id}: the secret is longer than 128 characters")
        if self.secret is not None and self.secret.startswith(SEALED_PREFIX):
            raise AdminError(f"extension {self.user_id}: a secret may not begin with {SEALED_PREFIX!r} "
                             "(the mark of an encrypted one)")
        if self.server and not HOST.fullmatch(self.server):
            raise AdminError(f"extension {self.user_id}: {self.server!r} is not a host name or address")
        if self.port is not None and not 0 < self.port < 65536:
            raise AdminError(f"extension {self.user_id}: port {self.port} is out of range")
        for label, value in (("first name", self.first_name), ("last name", self.last_name)):
            if "\x00" in value:  # no database stores it in text, and no phone shows it
                raise AdminError(f"extension {self.user_id}: {label} contains a NUL character")
            if len(value) > 100:
                raise AdminError(f"extension {self.user_id}: {label} is longer than 100 characters")
        if len(self.mailbox) > 80:
            raise AdminError(f"extension {self.user_id}: mailbox is longer than 80 characters")
        box, at, domain = self.mailbox.partition("@")
        if self.mailbox and not _USER_ID.fullmatch(box):
            raise AdminError(f"extension {self.user_id}: mailbox {self.mailbox!r} is not valid")
        if at and not (HOST.fullmatch(domain) and ("." in domain or domain.startswith("["))):
            # The phone subscribes to this for message waiting: Asterisk's box@context is not a SIP address.
            raise AdminError(
                f"extension {self.user_id}: mailbox {self.mailbox!r}: give the number the phone subscribes to "
                f"({box}) or a SIP address ({box}@pbx.example.com); Asterisk's box@context stays in Asterisk"
            )


def _is_not_utf8(value: str) -> bool:
    """Command-line bytes that are not UTF-8 arrive as lone surrogates, which no database or phone can store."""
    return any("\ud800" <= c <= "\udfff" for c in value)


def _unprintable(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Cs") or c in "\ufffe\uffff"


def new_secret() -> str:
    """A SIP password for people who did not choose one: 128 bits, URL- and config-safe."""
    return secrets.token_urlsafe(16)


def add_extension(data: ExtensionData) -> Extension:
    data.validate()
    if Extension.get_or_none(Extension.user_id == data.user_id) is not None:
        raise AdminError(f"extension {data.user_id} already exists")
    return Extension.create(
        user_id=data.user_id,
        secret=data.secret or new_secret(),
        first_name=data.first_name,
        last_name=data.last_name,
        mailbox=data.mailbox,
        server=data.server or None,
        port=data.port,
        in_directory=data.in_directory,
    )


def remove_extension(user_id: str) -> None:
    ext = Extension.get_or_none(Extension.user_id == user_id)
    if ext is None:
        raise AdminError(f"no extension {user_id}")
    macs = [line.phone.mac for line in PhoneLine.select(PhoneLine, Phone).join(Phone).where(PhoneLine.extension == ext)]
    if macs:
        raise AdminError(f"extension {user_id} is on phone(s) {', '.join(sorted(macs))}; remove it from them first")
    ext.delete_instance()


def parse_mac(value: str) -> str:
    try:
        return normalize_mac(value)
    except InvalidMac as exc:
        raise AdminError(str(exc), field="mac") from None


def check_model(site: Site, model: str, line_count: int) -> None:
    if model not in site.models:
        installed = ", ".join(site.models) or "none"
        raise AdminError(f"unknown model {model!r} (installed: {installed})", field="model")
    limit = site.models[model].line_count
    if line_count > limit:
        raise AdminError(f"{model} has {limit} line(s); {line_count} given", field="lines")


def check_with_model(site: Site, model: str, mac: str, extensions: list[ExtensionData],
                     time_zone: str | None) -> None:
    """Ask the phone's model whether it can render these lines: a value its format cannot carry is refused now,
    with the field it concerns, rather than discovered when the phone asks."""
    device = site.models[model]
    lines = tuple(line_of(position, e.user_id, e.secret or "x", e.first_name, e.last_name, e.server, e.port,
                          e.mailbox, site.settings) for position, e in enumerate(extensions, start=1))
    try:
        refusals = device.check_phone(PhoneView(mac, model, lines, time_zone or None))
    except Exception as exc:  # a plugin's bug must not block the admin: reported, and the change goes on
        site.plugins.report_broken(model, "check_phone", exc)
        return
    if refusals:
        first = refusals[0]
        raise AdminError(f"phone {mac}: {device.label} cannot take this: {first}", field=first.field)


def data_of(ext: Extension) -> ExtensionData:
    return ExtensionData(ext.user_id, ext.secret, ext.first_name, ext.last_name, ext.mailbox, ext.server, ext.port,
                         ext.in_directory)


def check_time_zone(time_zone: str | None) -> None:
    if time_zone and not is_valid_zone(time_zone):
        raise AdminError(f"unknown time zone {time_zone!r} (use an IANA name such as Europe/London)",
                         field="time_zone")


def add_phone(
    site: Site,
    mac: str,
    model: str,
    lines: Iterable[str],
    time_zone: str | None = None,
    notes: str = "",
) -> Phone:
    """Add a phone with its lines in order (line 1 first); all or nothing."""
    mac = parse_mac(mac)
    user_ids = list(lines)
    check_model(site, model, len(user_ids))
    check_time_zone(time_zone)
    if Phone.get_or_none(Phone.mac == mac) is not None:
        raise AdminError(f"phone {mac} already exists", field="mac")
    found = _extensions(user_ids)
    check_with_model(site, model, mac, [data_of(found[u]) for u in user_ids], time_zone)
    try:
        with site.db.atomic():
            phone = Phone.create(mac=mac, model=model, time_zone=time_zone or None, notes=notes)
            _set_lines(phone, [found[u] for u in user_ids])
    except peewee.IntegrityError as exc:  # a concurrent add of the same MAC
        raise AdminError(f"phone {mac} could not be added: {exc}") from None
    return phone


def _extensions(user_ids: list[str]) -> dict[str, Extension]:
    """The extensions named, by user id; AdminError naming every one that does not exist."""
    found = {e.user_id: e for e in Extension.select().where(Extension.user_id.in_(user_ids))} if user_ids else {}
    missing = [u for u in user_ids if u not in found]
    if missing:
        raise AdminError(f"unknown extension(s): {', '.join(missing)}", field="lines")
    return found


def _set_lines(phone: Phone, extensions: list[Extension]) -> None:
    PhoneLine.delete().where(PhoneLine.phone == phone).execute()
    for position, ext in enumerate(extensions, start=1):
        PhoneLine.create(phone=phone, position=position, extension=ext)


def update_phone(
    site: Site,
    mac: str,
    model: str | None = None,
    lines: Iterable[str] | None = None,
    time_zone: str | None = None,
    notes: str | None = None,
) -> Phone:
    """Change what is given (None: keep). ``lines`` replaces all lines; ``time_zone`` "" returns to the site's."""
    phone = get_phone(mac)
    user_ids = list(lines) if lines is not None else [row.extension.user_id for row in phone.lines]
    check_model(site, model or phone.model, len(user_ids))
    check_time_zone(time_zone)
    found = _extensions(user_ids)
    zone = phone.time_zone if time_zone is None else time_zone
    check_with_model(site, model or phone.model, phone.mac, [data_of(found[u]) for u in user_ids], zone)
    with site.db.atomic():
        if model is not None:
            phone.model = model
        if time_zone is not None:
            phone.time_zone = time_zone or None
        if notes is not None:
            phone.notes = notes
        phone.save()
        if lines is not None:
            _set_lines(phone, [found[u] for u in user_ids])
    return phone


def update_extension(user_id: str, site: Site | None = None, **changes: object) -> Extension:
    """Change the given fields of an extension (names as in ExtensionData), with the same checks as adding;
    with ``site``, each phone carrying it is checked with its model too."""
    ext = Extension.get_or_none(Extension.user_id == user_id)
    if ext is None:
        raise AdminError(f"no extension {user_id}")
    editable = [f.name for f in fields(ExtensionData) if f.name != "user_id"]
    unknown = set(changes) - set(editable)
    if unknown:
        raise AdminError(f"cannot change {', '.join(sorted(unknown))} of an extension")
    data = ExtensionData(user_id, **{k: getattr(ext, k) for k in editable})
    for key, value in changes.items():
        setattr(data, key, value)
    data.validate()
    if site is not None:
        _check_phones_carrying(site, ext, data)
    for key in changes:
        setattr(ext, key, getattr(data, key))
    ext.server = ext.server or None  # "" means the site's SIP server
    ext.save()
    return ext


def _check_phones_carrying(site: Site, ext: Extension, data: ExtensionData) -> None:
    carrying = Phone.select().join(PhoneLine).where(PhoneLine.extension == ext).distinct()
    for phone in carrying:
        if phone.model not in site.models:
            continue
        rows = PhoneLine.select(PhoneLine, Extension).join(Extension).where(PhoneLine.phone == phone)
        extensions = [data if row.extension.id == ext.id else data_of(row.extension)
                      for row in rows.order_by(PhoneLine.position)]
        check_with_model(site, phone.model, phone.mac, extensions, phone.time_zone)


def remove_phone(mac: str) -> None:
    phone = get_phone(mac)
    with Phone._meta.database.atomic():
        PhoneLine.delete().where(PhoneLine.phone == phone).execute()
        phone.delete_instance()


def get_phone(mac: str) -> Phone:
    phone = Phone.get_or_none(Phone.mac == parse_mac(mac))
    if phone is None:
        raise AdminError(f"no phone {parse_mac(mac)}")
    return phone
