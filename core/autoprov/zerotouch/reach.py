"""Reaching phones for check-sync: where each phone is (its registration with Asterisk, else the address it
last fetched a file from), sending the NOTIFY (by autoprov itself or through the AMI), and the core hook
``autoprov_notify_phones`` that the provisioning CLI and the admin UI call.

Registrations: ``[asterisk] registrations``. "ami": ``PJSIPShowContacts`` (one ``ContactList`` event per
contact: ``ObjectName`` ``<aor>;@<hash>``, ``Uri``, ``ViaAddr``/``ViaPort``); "ps_contacts": the realtime
table Asterisk writes contacts into (columns ``id``, ``uri``, ``via_addr``, ``via_port``); "auto":
ps_contacts when the (PostgreSQL) database has that table, else none (the AMI only when asked: it is one more
session per notify). The aor is named by
the extension (``autoprov asterisk pjsip``), so a phone's contact is one of its first line's aor; when several
phones share that extension, the contact at the phone's last seen address is taken, and with none of them
there, the sighting decides.
"""

from __future__ import annotations

import ipaddress
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import peewee

from autoprov import hookimpl
from autoprov.checksync import NotifyResult
from autoprov.site import Site
from autoprov.tables import Extension, Phone, PhoneLine, Sighting
from autoprov.zerotouch import ami, notify

# sip:user@host:port;params, sip:host, sip:user@[v6]:port
_URI = re.compile(r"sips?:(?:[^@;>]*@)?(\[[0-9A-Fa-f:.]+\]|[^:;>]+)(?::(\d+))?")


@dataclass(frozen=True)
class Contact:
    aor: str
    host: str
    port: int
    source: str  # for the report: "registered (AMI)", ...


def _address(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _contact(contact_id: str, uri: str, via_addr: str, via_port: str, source: str) -> Contact | None:
    aor = contact_id.split(";@", 1)[0]
    m = _URI.match(uri or "")
    host, port = (m.group(1), m.group(2)) if m else (via_addr, via_port)
    address = _address(host or "") or _address(via_addr or "")
    if not aor or address is None:
        return None
    try:
        number = int(port or via_port or notify.SIP_PORT)
    except ValueError:
        number = notify.SIP_PORT
    return Contact(aor, address, number, source)


def ami_contacts(site: Site) -> list[Contact]:
    s = site.settings.asterisk
    if not s.ami_user:
        raise ami.AmiError("set [asterisk] ami_user and ami_secret (manager.conf) to read registrations from the AMI")
    with ami.AmiClient(s.ami_host, s.ami_port, s.ami_timeout) as client:
        client.login(s.ami_user, s.ami_secret)
        events = client.action_list("PJSIPShowContacts")
    found = (_contact(e.get("objectname", ""), e.get("uri", ""), e.get("viaaddr", ""), e.get("viaport", ""),
                      "registered (AMI)") for e in events if e.get("event") == "ContactList")
    return [c for c in found if c is not None]


def table_contacts(site: Site) -> list[Contact]:
    with site.db.atomic():  # PostgreSQL: a failed query must not poison the connection for what follows
        rows = site.db.execute_sql("SELECT id, uri, via_addr, via_port FROM ps_contacts").fetchall()
    found = (_contact(str(i or ""), str(u or ""), str(a or ""), str(p or ""), "registered (ps_contacts)")
             for i, u, a, p in rows)
    return [c for c in found if c is not None]


def registrations(site: Site) -> tuple[dict[str, list[Contact]], str | None]:
    """Contacts by aor, and why there are none when a source was asked and failed (None: fine, or not asked)."""
    s = site.settings.asterisk
    source = s.registrations
    if source == "auto":
        source = "ps_contacts" if _has_ps_contacts(site) else "none"
    try:
        contacts = ami_contacts(site) if source == "ami" else table_contacts(site) if source == "ps_contacts" else []
    except (ami.AmiError, peewee.PeeweeException) as exc:
        return {}, f"registrations not read ({source}: {exc}); last sightings used"
    by_aor: dict[str, list[Contact]] = {}
    for c in contacts:
        by_aor.setdefault(c.aor, []).append(c)
    return by_aor, None


def _has_ps_contacts(site: Site) -> bool:
    return isinstance(site.db, peewee.PostgresqlDatabase) and site.db.table_exists("ps_contacts")


def target(site: Site, mac: str, port: int | None, reboot: bool,
           contacts: dict[str, list[Contact]]) -> notify.Target | str:
    """Where and what to send phone ``mac`` (its registration first, else its last sighting), or why not.
    ``port`` None: the registration's port, else 5060."""
    phone = Phone.get_or_none(Phone.mac == mac)
    seen = (Sighting.select().where(Sighting.mac == mac, Sighting.ip.is_null(False))
            .order_by(Sighting.last_seen.desc()).first())
    name = phone.model if phone is not None else seen.model if seen is not None else None
    model = site.models.get(name) if name else None
    first = (PhoneLine.select(Extension.user_id).join(Extension).where(PhoneLine.phone == phone)
             .order_by(PhoneLine.position).tuples().first()) if phone is not None else None
    user = first[0] if first else mac
    seen_at = _address(seen.ip or "") if seen is not None else None
    mine = contacts.get(user, []) if first else []
    contact = mine[0] if len(mine) == 1 else next((c for c in mine if c.host == seen_at), None)
    if contact is None and seen is None:
        return "never seen and not registered: no address to send to"
    if model is None:
        return f"model {name or 'unknown'} is not installed: no check-sync event known"
    try:
        event = notify.event_of(model, reboot)
    except notify.NotifyError as exc:
        return str(exc)
    if contact is not None:
        return notify.Target(mac, contact.host, port or contact.port, user, event, contact.source)
    if seen_at is None:
        return f"last seen from {seen.ip!r}, which is not an IP address"
    return notify.Target(mac, seen_at, port or notify.SIP_PORT, user, event, "last seen")


def send(site: Site, macs: list[str], reboot: bool, port: int | None = None, timeout: float = 4.0,
         via: str | None = None) -> list[NotifyResult]:
    """check-sync to each phone (inside a database connection); one result per MAC, in order."""
    contacts, problem = registrations(site)
    targets = {mac: target(site, mac, port, reboot, contacts) for mac in macs}
    sendable = [t for t in targets.values() if isinstance(t, notify.Target)]
    via = via or site.settings.asterisk.notify_via
    reports = _via_ami(site, sendable) if via == "ami" else _direct(sendable, timeout)
    results = []
    for mac, t in targets.items():
        ok, line = reports[mac] if isinstance(t, notify.Target) else (False, f"{mac}: not sent: {t}")
        if problem and not ok:
            line += f" [{problem}]"
        results.append(NotifyResult(mac, ok, line))
    return results


def _direct(sendable: list[notify.Target], timeout: float) -> dict[str, tuple[bool, str]]:
    """The NOTIFY sent by autoprov, to every phone at once; per MAC: whether it was answered 2xx, and a line."""
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(sendable)))) as pool:
        outcomes = list(pool.map(lambda t: notify.send_notify(t, timeout), sendable))
    reports = {}
    for o in outcomes:
        answer = f"{o.status} {o.reason}" if o.status is not None else o.reason
        t = o.target
        reports[t.mac] = (o.ok, f"{t.mac} {notify.uri_host(t.host)}:{t.port}{_source(t)}: sent {o.request} -> {answer}")
    return reports


def _via_ami(site: Site, sendable: list[notify.Target]) -> dict[str, tuple[bool, str]]:
    """PJSIPNotify per phone over one AMI session; a failed session fails every phone it had not reached."""
    s = site.settings.asterisk
    answers: dict[str, tuple[bool, str]] = {}
    try:
        if sendable:
            if not s.ami_user:
                raise ami.AmiError("set [asterisk] ami_user and ami_secret (manager.conf) to notify through the AMI")
            with ami.AmiClient(s.ami_host, s.ami_port, s.ami_timeout) as client:
                client.login(s.ami_user, s.ami_secret)
                for t in sendable:
                    answers[t.mac] = ami.pjsip_notify(client, _uri(t), t.event)
    except ami.AmiError as exc:
        for t in sendable:
            answers.setdefault(t.mac, (False, str(exc)))
    return {t.mac: (answers[t.mac][0], f"{t.mac} via AMI {s.ami_host}:{s.ami_port}{_source(t)}: sent PJSIPNotify "
                                       f"URI: {_uri(t)} Event: {t.event} -> {answers[t.mac][1]}") for t in sendable}


def _source(t: notify.Target) -> str:
    """Said when the address is a registration (a sighting's is the default)."""
    return f" ({t.found_by})" if t.found_by != "last seen" else ""


def _uri(t: notify.Target) -> str:
    return f"sip:{t.user}@{notify.uri_host(t.host)}:{t.port}"


@hookimpl
def autoprov_notify_phones(site: Site, macs: list[str], reboot: bool) -> list[NotifyResult]:
    return send(site, macs, reboot)
