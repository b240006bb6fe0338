"""A Grandstream GXP phone: the XML P-value file ``cfg<mac>.xml`` at the server root, and what it tries around it.

A booting phone asks for ``cfg<mac>`` (the legacy binary format, which autoprov does not write: 404),
``cfg<mac>.xml`` (its own config), then, if that failed, ``cfg<model>.xml`` and the generic ``cfg.xml``
(Grandstream's provisioning guide). Everything a phone needs is in ``cfg<mac>.xml``; ``cfg.xml`` carries
the site-wide part (time, where to provision and fetch the phonebook) for a phone not yet in the database.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mako.lookup import TemplateLookup

from autoprov.config import Settings
from autoprov.devices import (
    DIRECTORY,
    FALLBACK,
    GENERATED,
    MODEL,
    PHONE,
    ROOT,
    DeviceModel,
    DirectoryEntry,
    FileRule,
    PhoneView,
    Refusal,
)
from autoprov_grandstream_gxp import pvalues
from autoprov_grandstream_gxp.pvalues import Params

TEMPLATES = Path(__file__).parent / "templates"
XML = "application/xml; charset=utf-8"

# Grandstream's IEEE registrations seen in phones' User-Agents (DevId) in public captures.
GRANDSTREAM_OUIS = ("000b82", "c074ad", "ec74d7")

# HTTP file requests: "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872";
# SIP: "Grandstream GXP2160 1.0.11.7".
_VERSION = re.compile(r"\bSW ([0-9][0-9A-Za-z.]*)|^Grandstream [A-Za-z0-9-]+ ([0-9][0-9A-Za-z.]*)")
_DEV_ID = re.compile(r"\bDevId ((?:[0-9A-Fa-f]{2}:?){5}[0-9A-Fa-f]{2})\b")
_LINE_BREAKS = re.compile(r"[\t\r\n]+")


class GrandstreamModel(DeviceModel):
    vendor = "Grandstream"
    mac_ouis = GRANDSTREAM_OUIS
    check_sync_event = "check-sync"  # what wazo-provd sends Grandstreams to re-provision

    def __init__(self, settings: Settings, plugin_settings: object, name: str, label: str, token: str,
                 line_count: int) -> None:
        self.name = name
        self.label = label
        self.token = token
        self.user_agent_tokens = (token,)
        self.line_count = min(line_count, pvalues.MAX_ACCOUNTS)
        super().__init__(settings, plugin_settings)

    # --- User-Agent -------------------------------------------------------------------------------------
    def firmware_version(self, user_agent: str) -> str | None:
        m = _VERSION.search(user_agent)
        return (m.group(1) or m.group(2)) if m else None

    def serial_mac(self, user_agent: str) -> str | None:
        m = _DEV_ID.search(user_agent)
        return m.group(1).replace(":", "").lower() if m else None

    # No certificate_mac: no Grandstream document found says its phones carry a per-device certificate that
    # names the MAC, so a Grandstream's client certificate names no phone (the access policy decides).

    # --- Files ------------------------------------------------------------------------------------------
    def files(self) -> tuple[FileRule, ...]:
        login = bool(urlsplit(self.settings.public_url).username)  # cfg.xml then hands out the login
        return (
            FileRule("cfg{mac}", FALLBACK, ROOT),
            FileRule("cfg{mac}.bin", FALLBACK, ROOT),  # the binary format's name on newer firmware
            FileRule("cfg{mac}.xml", PHONE, ROOT, "phone.xml.mako", secret=True, media_type=XML),
            FileRule(f"cfg{self.token.lower()}.xml", FALLBACK, ROOT),
            FileRule("cfg.xml", GENERATED, ROOT, "site.xml.mako", secret=login, media_type=XML),
            FileRule("phonebook.xml", DIRECTORY, MODEL, media_type=XML),
        )

    # --- Rendering --------------------------------------------------------------------------------------
    @cached_property
    def templates(self) -> TemplateLookup:
        return TemplateLookup(directories=[str(TEMPLATES)], default_filters=["xml_attr"],
                              imports=["from autoprov.xmlsafe import xml_attr"], input_encoding="utf-8",
                              strict_undefined=True)

    def _render(self, template: str, **context: object) -> bytes:
        text = self.templates.get_template(template).render_unicode(model=self, **context)
        return text.encode("utf-8")

    def render(self, rule: FileRule, phone: PhoneView | None = None) -> bytes:
        if phone is None:
            return self._render(rule.template or "", mac=None, params=self.site_params(None))
        return self._render(rule.template or "", mac=phone.mac, params=self.phone_params(phone))

    def site_params(self, time_zone: str | None) -> Params:
        """What every phone of the site gets: time, and where to provision, upgrade and fetch the phonebook."""
        url = urlsplit(self.settings.public_url)
        host_path = url.netloc.rpartition("@")[2] + url.path.rstrip("/")
        secure = url.scheme == "https"
        params = pvalues.time_params(time_zone or self.settings.time.time_zone, self.settings.time.sntp_server)
        params += [
            (pvalues.CONFIG_VIA, "2" if secure else "1"),
            (pvalues.CONFIG_SERVER_PATH, host_path),
            (pvalues.FIRMWARE_SERVER_PATH, host_path + self.base_path.rstrip("/")),
            (pvalues.PHONEBOOK_DOWNLOAD, "3" if secure else "1"),
            (pvalues.PHONEBOOK_SERVER_PATH, host_path + self.base_path.rstrip("/")),
        ]
        if url.username:
            params += [(pvalues.CONFIG_USER, unquote(url.username)), (pvalues.CONFIG_PASSWORD,
                                                                     unquote(url.password or ""))]
        return params

    def phone_params(self, phone: PhoneView) -> Params:
        """The whole config of one phone: every account of the model (unused ones off), then the site's part."""
        lines = {line.index: line for line in phone.lines}
        params: Params = []
        for account in range(1, self.line_count + 1):
            params += pvalues.account_params(account, lines.get(account))
        params += self.site_params(phone.time_zone)
        if phone.login:
            # The phone's own login replaces the one the public URL may carry.
            own = {int(k.lstrip("P")): v for k, v in self.provisioning_credentials(*phone.login).items()}
            params = [(n, v) for n, v in params if n not in own] + list(own.items())
        return params

    def provisioning_credentials(self, user: str, password: str) -> dict[str, str]:
        """The config server's HTTP/HTTPS user name and password (P1360, P1361; see pvalues.CONFIG_USER)."""
        return {f"P{pvalues.CONFIG_USER}": user, f"P{pvalues.CONFIG_PASSWORD}": password}

    # --- Phonebook --------------------------------------------------------------------------------------
    def render_directory(self, entries: list[DirectoryEntry]) -> bytes:
        """``phonebook.xml`` (Grandstream's AddressBook format); a name is one line on the phone's screen."""
        items = [(_one_line(e.first_name), _one_line(e.last_name), _one_line(e.contact)) for e in entries]
        return self._render("phonebook.xml.mako", items=items)

    # --- Refusing what the format cannot carry -------------------------------------------------------------
    def check_phone(self, phone: PhoneView) -> list[Refusal]:
        refusals = super().check_phone(phone)
        for line in phone.lines:
            # Names go into the SIP From header and the account's line key: no line breaks, no control codes.
            for field, value in (("first_name", line.first_name), ("last_name", line.last_name)):
                if any(_cannot_carry(c) for c in value):
                    refusals.append(Refusal(field, f"line {line.index} ({line.user_id}): a {self.label} cannot "
                                                   "show a line break, tab or control character in a name"))
        zone = phone.time_zone or self.settings.time.time_zone
        if len(pvalues.posix_time_zone(zone)) > pvalues.CUSTOM_TIME_ZONE_LIMIT:
            refusals.append(Refusal("time_zone", f"{zone} does not fit in the phone's {pvalues.CUSTOM_TIME_ZONE_LIMIT}"
                                                 "-character time zone setting"))
        return refusals


def _cannot_carry(c: str) -> bool:
    """A control character, or one XML cannot hold at all (it would be dropped, changing the name)."""
    return unicodedata.category(c) in ("Cc", "Cs") or c in "\ufffe\uffff"


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text).strip()
