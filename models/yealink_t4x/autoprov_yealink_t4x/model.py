"""A Yealink T4x phone: its User-Agent, its file protocol and its files.

A phone pointed at the server (DHCP option 66) asks, on firmware 81 and later, for ``<mac>.boot`` then
``y000000000000.boot``; finding neither (404), it reads the model's common file ``y0000000000NN.cfg`` and then
its own ``<mac>.cfg``, both at the server root, the second overriding the first. Both are answered under
``/prov/<model>/`` too, for phones whose provisioning URL names the model's path. The common file points
the phone at its firmware and at the company directory (``phonebook.xml``), served under the model's path.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote, urlsplit

from mako.lookup import TemplateLookup

from autoprov.clientcert import mac_in_common_name
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
from autoprov.xmlsafe import strip_forbidden
from autoprov_yealink_t4x.cfgvalue import problem
from autoprov_yealink_t4x.settings import YealinkSettings
from autoprov_yealink_t4x.timezone import yealink_time_settings

TEMPLATES = Path(str(files(__package__))) / "templates"

# "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc": vendor, model, firmware version, MAC.
_VERSION = re.compile(r"\s(\d+(?:\.\d+){3})(?:\s|$)")
_MAC = re.compile(r"(?<![0-9A-Fa-f:])((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})(?![0-9A-Fa-f:])")

# Yealink's MAC prefixes seen in public captures of its phones' User-Agents (see docs/vendors/yealink.md).
YEALINK_OUIS = ("001565", "805ec0")

# Yealink's transport_type numbers for core's [sip] transport.
TRANSPORTS = {"UDPOnly": "0", "TCPOnly": "1", "TLS": "2", "DNSnaptr": "3"}

XML = "application/xml; charset=utf-8"
BOOT = "y000000000000.boot"  # the common boot file: not served, so phones read the .cfg files


@dataclass(frozen=True)
class Spec:
    """One model: its User-Agent token, lines, common file number and firmware file names."""

    name: str
    token: str  # as in the User-Agent: "SIP-T46S" carries T46S
    line_count: int
    number: int  # the common file y0000000000NN.cfg; also the first part of its firmware version
    rom_tokens: tuple[str, ...]  # names the firmware file's name gives the model ("T46S(T48S,T42S,T41S)-66...")
    rom_numbers: tuple[int, ...]  # firmware version prefixes it runs
    firmware_subdir: str | None = None  # one directory for models sharing a firmware file


class YealinkModel(DeviceModel):
    vendor = "Yealink"
    family_tokens = ("Yealink",)
    mac_ouis = YEALINK_OUIS
    check_sync_event = "check-sync"
    settings_class = YealinkSettings

    def __init__(self, settings: Settings, plugin_settings: YealinkSettings | None, spec: Spec) -> None:
        self.spec = spec
        self.name = spec.name
        self.label = f"Yealink SIP-{spec.token}"
        self.line_count = spec.line_count
        self.user_agent_tokens = (spec.token,)
        self.firmware_subdir = spec.firmware_subdir
        super().__init__(settings, plugin_settings or YealinkSettings())
        self.options: YealinkSettings = self.plugin_settings

    # --- User-Agent -------------------------------------------------------------------------------
    def firmware_version(self, user_agent: str) -> str | None:
        m = _VERSION.search(user_agent)
        return m.group(1) if m else None

    def serial_mac(self, user_agent: str) -> str | None:
        m = _MAC.search(user_agent)
        return m.group(1).replace(":", "").lower() if m else None

    def certificate_mac(self, subject_cn: str, cert_pem: str) -> str | None:
        """A CN that is exactly one of its MACs. Yealink phones carry a "unique certificate ... based on the
        MAC address and issued by the Yealink Certificate Authority", and a generic one shared by every
        phone, sent when there is no unique one (Administrator's Guide for SIP-T2/T4/T5 Series, "Supported
        Trusted and Server Certificates"). The guides show no unique certificate's subject: this reads the
        CN as the MAC; any other layout, and the generic certificate, name no phone (no certificate, then).
        """
        return mac_in_common_name(subject_cn, self.mac_ouis)

    # --- Files --------------------------------------------------------------------------------------
    @property
    def common_file(self) -> str:
        return f"y{self.spec.number:012d}.cfg"

    def files(self) -> tuple[FileRule, ...]:
        # The common file holds a credential when the public URL carries a login or an admin password is set.
        common_secret = bool(urlsplit(self.settings.public_url).username or self.options.admin_password)
        rules = []
        for where in (ROOT, MODEL):
            rules += [
                FileRule("{mac}.boot", FALLBACK, where),
                FileRule(BOOT, FALLBACK, where),
                FileRule(self.common_file, GENERATED, where, "common.cfg.mako", secret=common_secret),
                FileRule("{mac}.cfg", PHONE, where, "phone.cfg.mako", secret=True),
            ]
        rules.append(FileRule("phonebook.xml", DIRECTORY, MODEL, media_type=XML))
        return tuple(rules)

    @property
    def firmware_files(self) -> tuple[str, ...]:
        """The firmware file the phones are pointed at, else the shape of its name (``autoprov models``)."""
        chosen = self.firmware_file
        if chosen is not None:
            return (chosen,)
        numbers = "|".join(str(n) for n in self.spec.rom_numbers)
        return (f"<{'|'.join(self.spec.rom_tokens)}...>-<{numbers}>.<version>.rom",)

    @property
    def firmware_file(self) -> str | None:
        """The newest firmware file for this model in its firmware directory, if any."""
        found = []
        try:
            names = [p.name for p in self.firmware_dir.iterdir() if p.is_file()]
        except OSError:
            return None
        for name in names:
            version = _rom_version(name, self.spec)
            if version is not None:
                found.append((version, name))
        return max(found)[1] if found else None

    # --- Rendering ----------------------------------------------------------------------------------
    @cached_property
    def templates(self) -> TemplateLookup:
        return TemplateLookup(
            directories=[str(TEMPLATES)],
            default_filters=["cfg"],
            imports=["from autoprov_yealink_t4x.cfgvalue import cfg", "from autoprov.xmlsafe import xml_attr"],
            input_encoding="utf-8",
            strict_undefined=True,
        )

    def _render(self, template: str, **context: object) -> bytes:
        text = self.templates.get_template(template).render_unicode(model=self, **context)
        return text.encode("utf-8")

    def render(self, rule: FileRule, phone: PhoneView | None = None) -> bytes:
        if phone is not None:
            zone = yealink_time_settings(phone.time_zone) if phone.time_zone else ()
            login = self.provisioning_credentials(*phone.login) if phone.login else None
            return self._render(rule.template or "", phone=phone, transport=TRANSPORTS[self.settings.sip.transport],
                                time_params=zone, login_params=login or {})
        return self._render(rule.template or "", **self._common())

    def _common(self) -> dict[str, object]:
        base = self.settings.public_url
        rom = self.firmware_file if self.options.upgrade_firmware else None
        polling = self.settings.polling
        return {
            "server_url": base + "/",
            "firmware_url": f"{base}{self.base_path}{quote(rom, safe='(),')}" if rom else None,
            "phonebook_url": f"{base}{self.base_path}phonebook.xml",
            "phonebook_name": self.options.phonebook_name,
            "admin_password": self.options.admin_password,
            "ntp_server": self.settings.time.sntp_server,
            "time_params": yealink_time_settings(self.settings.time.time_zone),
            "polling": polling,
            "repeat_minutes": max(1, polling.period // 60),
        }

    def provisioning_credentials(self, user: str, password: str) -> dict[str, str]:
        """The auto-provisioning login: the phone sends it to the provisioning server from its next request."""
        return {"static.auto_provision.server.username": user, "static.auto_provision.server.password": password}

    # --- Company directory ----------------------------------------------------------------------------
    def render_directory(self, entries: list[DirectoryEntry]) -> bytes:
        items = [(_one_line(" ".join(p for p in (e.first_name, e.last_name) if p) or e.contact), _one_line(e.contact))
                 for e in entries]
        return self._render("phonebook.xml.mako", items=items)

    def parse_directory(self, body: bytes) -> list[DirectoryEntry]:
        """Entries of a Yealink remote phone book; a name is kept whole as the first name."""
        entries = []
        for item in ET.fromstring(body).iter("DirectoryEntry"):
            name = (item.findtext("Name") or "").strip()
            for number in item.iter("Telephone"):
                entries.append(DirectoryEntry(first_name=name, last_name="", contact=(number.text or "").strip()))
        return entries

    # --- Refusing what the files cannot carry -----------------------------------------------------------
    def check_phone(self, phone: PhoneView) -> list[Refusal]:
        refusals = super().check_phone(phone)
        for line in phone.lines[: self.line_count]:
            where = f"line {line.index} ({line.user_id})"
            for field, value in (("first_name", line.first_name), ("last_name", line.last_name),
                                 ("user_id", line.user_id), ("secret", line.secret), ("mailbox", line.mailbox),
                                 ("server", line.server)):
                why = problem(value) if value else None
                if why is not None:
                    what = "the SIP password" if field == "secret" else f"the {field.replace('_', ' ')}"
                    refusals.append(Refusal(field, f"{where}: {what} {why}; a {self.label} config cannot carry it"))
        if phone.time_zone:
            try:
                yealink_time_settings(phone.time_zone)
            except ValueError as exc:
                refusals.append(Refusal("time_zone", str(exc)))
        return refusals


def _rom_version(name: str, spec: Spec) -> tuple[int, ...] | None:
    """The version of a firmware file named ``<models>-<NN.a.b.c>.rom`` if it is one for ``spec``."""
    m = re.fullmatch(r"(.+)-(\d+(?:\.\d+){3})\.rom", name)
    if m is None:
        return None
    version = tuple(int(p) for p in m.group(2).split("."))
    if version[0] not in spec.rom_numbers:
        return None
    if not any(re.search(rf"(?<![A-Za-z0-9]){re.escape(t)}(?![A-Za-z0-9])", m.group(1)) for t in spec.rom_tokens):
        return None
    return version


_BREAKS = re.compile("[\t\n\v\f\r\x85\u2028\u2029]+")


def _one_line(text: str) -> str:
    """A directory field as the phone shows it: one line, no characters XML forbids."""
    return _BREAKS.sub(" ", strip_forbidden(text)).strip()
