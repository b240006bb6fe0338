"""Grandstream P-values: which parameter number holds what, per account, and the time zone as the phone takes it.

Account 1 has its own numbers (P271, P270, P47, ...); accounts 2-4 and 5-6 use a block per account in which
the same field sits at the same offset: account 2 at 400 (P401 active, P402 SIP server, ...), 3 at 500, 4 at
600, 5 at 1700, 6 at 1800. Sources and what could not be confirmed: docs/vendors/grandstream.md.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from autoprov.devices import PhoneLine
from autoprov.timezones import REFERENCE_YEAR, Transition, zone_rule

# Fields of an account, by name: account 1's own P-number, and the offset within the block of accounts 2+.
ACCOUNT_FIELDS: dict[str, tuple[int, int]] = {
    "active": (271, 1),
    "sip_server": (47, 2),
    "user_id": (35, 4),
    "auth_id": (36, 5),
    "password": (34, 6),
    "display_name": (3, 7),
    "dns_mode": (103, 8),
    "register_expiration": (32, 12),  # minutes
    "account_name": (270, 17),
    "voicemail": (33, 26),
    "transport": (130, 48),
}
ACCOUNT_BLOCKS = {2: 400, 3: 500, 4: 600, 5: 1700, 6: 1800}
MAX_ACCOUNTS = 1 + len(ACCOUNT_BLOCKS)

# The site's [sip] transport as P130 (0 UDP, 1 TCP, 2 TLS) and DNS mode P103 (0 A record, 2 NAPTR/SRV).
TRANSPORTS = {"UDPOnly": (0, 0), "TCPOnly": (1, 0), "TLS": (2, 0), "DNSnaptr": (0, 2)}

NTP_SERVER = 30
TIME_ZONE = 64  # "customize": the phone then reads the POSIX TZ string in P246
CUSTOM_TIME_ZONE = 246
CUSTOM_TIME_ZONE_LIMIT = 64  # characters P246 holds
FIRMWARE_SERVER_PATH = 192
CONFIG_VIA = 212  # 0 TFTP, 1 HTTP, 2 HTTPS
CONFIG_SERVER_PATH = 237  # host[:port][/path], no scheme
# HTTP/HTTPS login for the config server ("HTTP/HTTPS User Name" / "Password" under Maintenance > Upgrade
# and Provisioning, as FusionPBX's guide fusionpbx/fusionpbx-docs source/applications/provision/
# provision_auto_grandstream.rst names the fields). The numbers: public provisioning templates found with the
# code search, e.g. a Laravel gs_provision template writing <P1360>http_auth_username</P1360>
# <P1361>http_auth_password</P1361>, and a TypeScript renderer mapping provHttpUsername/Password to the
# same; not confirmed in Grandstream's own P-value list (docs/vendors/grandstream.md).
CONFIG_USER, CONFIG_PASSWORD = 1360, 1361
PHONEBOOK_DOWNLOAD = 330  # 0 off, 1 HTTP, 2 TFTP, 3 HTTPS
PHONEBOOK_SERVER_PATH = 331  # host/path; the phone appends /phonebook.xml

Params = list[tuple[int, str]]


def account_number(field: str, account: int) -> int:
    """The P-number of ``field`` for account ``account`` (1-based)."""
    own, offset = ACCOUNT_FIELDS[field]
    if account == 1:
        return own
    return ACCOUNT_BLOCKS[account] + offset


def account_params(account: int, line: PhoneLine | None) -> Params:
    """One account's P-values; an account with no line is switched off (it may hold a removed line's login)."""
    if line is None:
        return [(account_number("active", account), "0")]
    transport, dns_mode = TRANSPORTS[line.transport]
    values = {
        "active": "1",
        "account_name": line.display_name,
        "sip_server": f"{line.server}:{line.port}",
        "user_id": line.user_id,
        "auth_id": line.user_id,
        "password": line.secret,
        "display_name": line.display_name,
        "voicemail": line.mailbox,
        "register_expiration": str(max(1, line.expires // 60)),
        "transport": str(transport),
        "dns_mode": str(dns_mode),
    }
    return [(account_number(field, account), values[field]) for field in ACCOUNT_FIELDS]


# --- Time zone -----------------------------------------------------------------------------------------------

_ABBREVIATION = re.compile(r"[A-Za-z]{3,}")


def _offset(seconds_east: int) -> str:
    """A POSIX TZ offset: hours west of UTC, with minutes (and seconds) only when there are any."""
    west = -seconds_east
    sign = "-" if west < 0 else ""
    hours, rest = divmod(abs(west), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours}"
    if minutes or seconds:
        text += f":{minutes:02d}"
    if seconds:
        text += f":{seconds:02d}"
    return text


def _change(t: Transition) -> str:
    """``Mm.w.d/hh:mm:ss``: month, week of the month (5: the last), weekday (0 Sunday), local time."""
    week = 5 if t.last_in_month else (t.week_start - 1) // 7 + 1
    return f"M{t.month}.{week}.{t.weekday % 7}/{t.hour:02d}:{t.minute:02d}:00"


def _abbreviations(name: str, standard: int, daylight: int | None) -> tuple[str, str]:
    """The zone's own abbreviations (CET, CEST) where they are letters; POSIX needs 3+ letters, so zones
    abbreviated "+03" get neutral STD/DST (the phone shows the time, not the name)."""
    zone = ZoneInfo(name)
    found = {}
    for month in (1, 7):
        moment = datetime(REFERENCE_YEAR, month, 1, tzinfo=zone)
        offset = moment.utcoffset()
        found[int(offset.total_seconds()) if offset is not None else 0] = moment.tzname() or ""
    std, dst = found.get(standard, ""), found.get(daylight, "") if daylight is not None else ""
    return (std if _ABBREVIATION.fullmatch(std) else "STD", dst if _ABBREVIATION.fullmatch(dst) else "DST")


@lru_cache(maxsize=64)
def posix_time_zone(name: str) -> str:
    """An IANA zone as the POSIX TZ string P246 takes: ``CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00``."""
    rule = zone_rule(name)
    std, dst = _abbreviations(name, rule.standard_offset, rule.dst_offset)
    text = f"{std}{_offset(rule.standard_offset)}"
    if rule.start is not None and rule.end is not None and rule.dst_offset is not None:
        text += f"{dst}{_offset(rule.dst_offset)},{_change(rule.start)},{_change(rule.end)}"
    return text


def time_params(zone: str, ntp_server: str) -> Params:
    return [(NTP_SERVER, ntp_server), (TIME_ZONE, "customize"), (CUSTOM_TIME_ZONE, posix_time_zone(zone))]
