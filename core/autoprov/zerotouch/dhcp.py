"""DHCP configuration that hands the provisioning URL to phones only: ``autoprov dhcp isc|kea|dnsmasq``.

Phones are picked by the MAC prefixes (OUIs) the installed models declare plus ``[dhcp] extra_ouis``; they get
``[http] public_url`` (with ``[dhcp] user``/``password`` in it, if set) as option 66 (the TFTP/boot server name,
which SIP phones read as a URL) and option 160 (Polycom's provisioning-server option). Other clients on the
network get neither.

A value is never pasted into a daemon's syntax unchecked: the URL must be made of RFC 3986 characters (a quote,
a backslash, a space or a control character is refused), credentials are percent-encoded into it, and Kea gets
the bytes in hex.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from autoprov.config import Settings
from autoprov.devices import DeviceModel

# RFC 3986: unreserved, reserved and percent-escapes; nothing else may stand in a URL a phone is handed.
_URL_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
MAX_OPTION_BYTES = 255  # one DHCP option's length octet
CLASS_NAME = "autoprov-phones"
OPTION_160_NAME = "autoprov-boot-server"  # ISC dhcpd knows no name for code 160: the snippet declares one
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class DhcpError(ValueError):
    """The settings cannot be written into a DHCP configuration; the message names the setting."""


@dataclass(frozen=True)
class Oui:
    """A MAC prefix (6 lowercase hex digits) and who asked for it: model names, or the configuration."""

    prefix: str
    owners: tuple[str, ...]

    @property
    def octets(self) -> tuple[str, str, str]:
        return self.prefix[0:2], self.prefix[2:4], self.prefix[4:6]

    @property
    def comment(self) -> str:
        return ", ".join(_SAFE_NAME.sub("?", o) for o in self.owners)


@dataclass(frozen=True)
class Offer:
    """What a DHCP server hands out, to whom."""

    url: str
    ouis: tuple[Oui, ...]
    has_credentials: bool = False


def provisioning_url(settings: Settings) -> tuple[str, bool]:
    """``[http] public_url`` with ``[dhcp]`` credentials in it, checked safe for any DHCP server's syntax;
    and whether it carries credentials. DhcpError says which setting is wrong."""
    url = settings.public_url
    if not _URL_CHARS.fullmatch(url):
        bad = sorted({c for c in url if not re.fullmatch(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]", c)})
        what = ", ".join(repr(c) for c in bad) if bad else "a '%' not followed by two hex digits"
        raise DhcpError(f"http.public_url: {url!r} cannot go to phones over DHCP: {what} is not allowed in a URL "
                        "(percent-encode it)")
    parts = urlsplit(url)
    user, password = settings.dhcp.user, settings.dhcp.password
    if password and not user:
        raise DhcpError("dhcp.password is set without dhcp.user")
    if user:
        if parts.username is not None:
            raise DhcpError("http.public_url already holds a user name: set the credentials in one place only")
        login = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        url = parts._replace(netloc=f"{login}@{parts.netloc}").geturl()
    size = len(url.encode("ascii"))
    if size > MAX_OPTION_BYTES:
        raise DhcpError(f"the provisioning URL is {size} bytes; a DHCP option holds at most {MAX_OPTION_BYTES}")
    return url, bool(user or parts.username)


def phone_ouis(models: Iterable[DeviceModel], extra: Iterable[str]) -> tuple[Oui, ...]:
    """Every MAC prefix to match, sorted, each once with the models (or the configuration) naming it."""
    owners: dict[str, list[str]] = {}
    for model in models:
        for prefix in model.mac_ouis:
            owners.setdefault(_normal_oui(prefix, f"model {model.name}"), []).append(model.name)
    for prefix in extra:
        owners.setdefault(_normal_oui(prefix, "dhcp.extra_ouis"), []).append("[dhcp] extra_ouis")
    return tuple(Oui(p, tuple(dict.fromkeys(o))) for p, o in sorted(owners.items()))


def _normal_oui(prefix: str, where: str) -> str:
    digits = re.sub(r"[:-]", "", prefix).lower()
    if not re.fullmatch(r"[0-9a-f]{6}", digits):
        raise DhcpError(f"{where}: {prefix!r} is not a MAC prefix of 6 hex digits")
    return digits


def build_offer(settings: Settings, models: Iterable[DeviceModel]) -> Offer:
    url, credentials = provisioning_url(settings)
    ouis = phone_ouis(models, settings.dhcp.extra_ouis)
    if not ouis:
        raise DhcpError("no MAC prefix to match: no installed model declares one and [dhcp] extra_ouis is empty")
    return Offer(url, ouis, credentials)


def _header(offer: Offer, mark: str, how: str) -> list[str]:
    lines = [f"{mark} autoprov: the provisioning URL for phones only (option 66 and 160), matched by MAC prefix.",
             f"{mark} {how}"]
    if offer.has_credentials:
        lines.append(f"{mark} It holds the provisioning password: keep this file readable by the DHCP server only.")
    return lines


def isc(offer: Offer) -> str:
    """For ISC dhcpd: ``include "/etc/dhcp/autoprov.conf";`` at the top level of dhcpd.conf."""
    match = "\n        or ".join(f"substring(hardware, 1, 3) = {':'.join(o.octets)}  # {o.comment}"
                                for o in offer.ouis)
    # A comment ends the line, so the closing ';' goes on a line of its own.
    lines = _header(offer, "#", 'Generated by `autoprov dhcp isc`; include "<this file>"; from dhcpd.conf.')
    lines += [
        f"option {OPTION_160_NAME} code 160 = text;",
        "",
        f'class "{CLASS_NAME}" {{',
        f"    match if {match}\n        ;",
        f'    option tftp-server-name "{offer.url}";',
        f'    option {OPTION_160_NAME} "{offer.url}";',
        "    # Sent even to a phone that did not list them in its request (66 = 0x42, 160 = 0xa0).",
        "    if exists dhcp-parameter-request-list {",
        "        option dhcp-parameter-request-list = concat(option dhcp-parameter-request-list, 42, a0);",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def dnsmasq(offer: Offer) -> str:
    """For dnsmasq: a file in /etc/dnsmasq.d/ (or ``conf-file=``)."""
    lines = _header(offer, "#", "Generated by `autoprov dhcp dnsmasq`; put it in /etc/dnsmasq.d/ or name it in "
                                "conf-file=.")
    for o in offer.ouis:
        lines.append(f"# {o.comment}")
        lines.append(f"dhcp-mac=set:{CLASS_NAME},{':'.join(o.octets)}:*:*:*")
    # -force: sent even to a phone that did not list the option in its request.
    lines.append(f'dhcp-option-force=tag:{CLASS_NAME},66,"{offer.url}"')
    lines.append(f'dhcp-option-force=tag:{CLASS_NAME},160,"{offer.url}"')
    return "\n".join(lines) + "\n"


def kea(offer: Offer) -> str:
    """For Kea's DHCPv4 server: the ``client-classes`` member of the ``Dhcp4`` map, to be included in it with
    ``<?include "/etc/kea/autoprov-dhcp4.json" ?>,`` (merge by hand if the map already has client-classes).

    The URL goes as hex (``csv-format`` false): Kea splits text option data at commas, which URLs may hold.
    """
    test = " or ".join(f"substring(pkt4.mac, 0, 3) == 0x{o.prefix.upper()}" for o in offer.ouis)
    data = offer.url.encode("ascii").hex().upper()
    options = [{"code": code, "csv-format": False, "data": data, "always-send": True,
                "comment": f"{what}: {offer.url}"}
               for code, what in ((66, "boot server"), (160, "provisioning server"))]
    klass = {"name": CLASS_NAME, "test": test, "option-data": options}
    lines = _header(offer, "//", 'Generated by `autoprov dhcp kea`; inside "Dhcp4": <?include "<this file>" ?>,')
    lines += [f"// {o.prefix}: {o.comment}" for o in offer.ouis]
    lines.append('"client-classes": ' + json.dumps([klass], indent=4))
    return "\n".join(lines) + "\n"


WRITERS: dict[str, Callable[[Offer], str]] = {"isc": isc, "kea": kea, "dnsmasq": dnsmasq}
