"""Everything Polycom SoundPoint/SoundStation models share: User-Agent grammar, templates, file layout.

A model package is one instance (or a small subclass) of :class:`PolycomModel`; its own ``templates/``
directory, if it has one, is searched before the shared templates, and a template there can extend the
shared one with ``<%inherit file="/templates/NAME.mako"/>``.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mako.lookup import TemplateLookup

from autoprov.clientcert import mac_in_common_name
from autoprov.config import Settings
from autoprov.devices import (
    CONTACTS,
    DIRECTORY,
    FALLBACK,
    GENERATED,
    LOG,
    MODEL,
    OVERRIDES,
    PHONE,
    ROOT,
    DeviceModel,
    DirectoryEntry,
    FileRule,
    LogRecord,
    PhoneView,
)
from autoprov.mac import ZERO_MAC as ZERO
from autoprov.vendors.polycom.logparse import parse_line
from autoprov.vendors.polycom.timezone import polycom_time_settings
from autoprov.xmlsafe import truncate_utf8

BASE_TEMPLATES = Path(__file__).parent / "templates"

_VERSION = re.compile(r"-UA/([0-9][0-9A-Za-z.]*)")
_SERIAL = re.compile(r"\(SN:([0-9A-Fa-f]{12})\)")

# Polycom's numbering of device.prov.serverType, which SIP 3.x menus also use.
SERVER_TYPES = {"http": "2", "https": "3"}

MASTER = "000000000000.cfg"
SITE = "site.cfg"
DEVICE = "device.cfg"
XML = "application/xml; charset=utf-8"

# Polycom's (and, since 2018, Poly's) MAC prefixes: IEEE registrations of Polycom, Inc.
POLYCOM_OUIS = ("0004f2", "64167f")

# Directory fields the phone stores in at most 40 bytes of UTF-8, and the tag names it uses for the others.
DIRECTORY_TEXT_LIMIT = 40
DIRECTORY_LIMITED = ("fn", "ln", "lb")
_DIRECTORY_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_LINE_BREAKS = re.compile(r"[\t\r\n]+")


class PolycomModel(DeviceModel):
    vendor = "Polycom"
    mac_ouis = POLYCOM_OUIS
    check_sync_event = "check-sync"

    def __init__(
        self,
        settings: Settings,
        plugin_settings: object,
        name: str,
        label: str,
        user_agent_tokens: tuple[str, ...],
        line_count: int,
        part_number: str,
        package: str | None = None,
        family_tokens: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.label = label
        self.user_agent_tokens = user_agent_tokens
        self.family_tokens = family_tokens
        self.line_count = line_count
        self.part_number = part_number
        self.package = package
        super().__init__(settings, plugin_settings)

    # --- User-Agent -------------------------------------------------------------------------
    def firmware_version(self, user_agent: str) -> str | None:
        m = _VERSION.search(user_agent)
        return m.group(1) if m else None

    def serial_mac(self, user_agent: str) -> str | None:
        """The MAC in ``(SN:...)``, which UC Software adds when device.prov.tagSerialNo is set."""
        m = _SERIAL.search(user_agent)
        return m.group(1).lower() if m else None

    def certificate_mac(self, subject_cn: str, cert_pem: str) -> str | None:
        """The factory device certificate names its phone's MAC as its CN.

        Polycom signs one per phone at manufacture, "unique to a device (based on the MAC address)" (UC
        Software 5.9 Administrator Guide, "Using the Factory-Installed Certificate",
        documents.polycom.com/bundle/ucs-ag-5-9-0/page/c-ucs-ag-using-the-factory-installed-certificate.html);
        read off a phone, its subject is "CN=0004F28B54F4, O=Polycom Inc." (as a public UCS PowerShell
        module quotes it). A certificate an admin's own CA issues the same way (CN = the MAC) is read alike.
        """
        return mac_in_common_name(subject_cn, self.mac_ouis)

    # --- Files ------------------------------------------------------------------------------
    def files(self) -> tuple[FileRule, ...]:
        # device.cfg hands out the provisioning login when the public URL carries one.
        login = bool(urlsplit(self.settings.public_url).username)
        return (
            FileRule(MASTER, GENERATED, ROOT, "initial.cfg.mako", media_type=XML),
            FileRule("{mac}.cfg", FALLBACK, ROOT),
            FileRule(MASTER, GENERATED, MODEL, "master.cfg.mako", media_type=XML),
            FileRule(SITE, GENERATED, MODEL, "site.cfg.mako", media_type=XML),
            FileRule(DEVICE, GENERATED, MODEL, "device.cfg.mako", secret=login, media_type=XML),
            FileRule("{mac}-phone.cfg", PHONE, MODEL, "phone.cfg.mako", secret=True, media_type=XML),
            FileRule("{mac}.cfg", FALLBACK, MODEL),
            # The directory; <mac>-directory.xml holds the user's own contacts too.
            FileRule(f"{ZERO}-directory.xml", DIRECTORY, media_type=XML),
            FileRule("{mac}-directory.xml", DIRECTORY, secret=True, media_type=XML,
                     malformed=r"[^/]*-directory\.xml"),
            # What the phone writes back into the directories its master config names (and reads there).
            FileRule(f"contacts/{ZERO}-directory.xml", DIRECTORY, media_type=XML),
            FileRule("contacts/{mac}-directory.xml", CONTACTS, methods=("GET", "PUT"), secret=True, media_type=XML,
                     malformed=r"contacts/([^/]*-)?directory\.xml"),
            FileRule("logs/{mac}-{name}.log", LOG, methods=("HEAD", "PUT"), malformed=r"logs/.*"),
            FileRule("overrides/{mac}-{name:phone\\.cfg|web\\.cfg}", OVERRIDES, methods=("GET", "PUT"), secret=True,
                     media_type=XML, malformed=r"overrides/([^/]*-)?(phone|web)\.cfg"),
        )

    @property
    def app_image(self) -> str:
        """The SIP application image: the part-numbered one if the admin installed it, else ``sip.ld``."""
        numbered = f"{self.part_number}.sip.ld"
        if (self.firmware_dir / numbered).is_file():
            return numbered
        return "sip.ld"

    @property
    def firmware_files(self) -> tuple[str, ...]:
        return ("bootrom.ld", f"{self.part_number}.bootrom.ld", "sip.ld", f"{self.part_number}.sip.ld")

    def config_files(self) -> list[str]:
        """CONFIG_FILES of the master config; the phone reads them in order and the first setting wins."""
        return ["[PHONE_MAC_ADDRESS]-phone.cfg", SITE]

    def initial_config_files(self) -> list[str]:
        """CONFIG_FILES of the initial config a factory-fresh phone gets, relative to the server root."""
        return [self.base_path.lstrip("/") + DEVICE]

    # --- Rendering --------------------------------------------------------------------------
    @cached_property
    def templates(self) -> TemplateLookup:
        dirs = []
        if self.package:
            own = Path(str(files(self.package))) / "templates"
            if own.is_dir():
                dirs.append(str(own))
        # The base directory twice: by plain name, and as /templates/NAME for models that extend it.
        dirs += [str(BASE_TEMPLATES), str(BASE_TEMPLATES.parent)]
        return TemplateLookup(
            directories=dirs,
            default_filters=["xml_attr"],
            imports=["from autoprov.xmlsafe import xml_attr"],
            input_encoding="utf-8",
            strict_undefined=True,
        )

    def _render(self, template: str, **context: object) -> bytes:
        text = self.templates.get_template(template).render_unicode(model=self, settings=self.settings, **context)
        return text.encode("utf-8")

    def render(self, rule: FileRule, phone: PhoneView | None = None) -> bytes:
        template = rule.template or ""
        if phone is not None:
            # A per-phone zone goes into the phone's own file, which the phone reads before site.cfg.
            time_params = polycom_time_settings(phone.time_zone) if phone.time_zone else ()
            login = self.provisioning_credentials(*phone.login) if phone.login else None
            return self._render(template, phone=phone, time_params=time_params, login_params=login or {})
        return self._render(template, **self._context(template))

    def _context(self, template: str) -> dict[str, object]:
        if template == "initial.cfg.mako":
            return {"config_files": self.initial_config_files()}
        if template == "master.cfg.mako":
            return {"config_files": self.config_files()}
        if template == "site.cfg.mako":
            return {"time_params": polycom_time_settings(self.settings.time.time_zone)}
        if template == "device.cfg.mako":
            return self._device_context()
        return {}

    def _device_context(self) -> dict[str, object]:
        """Device settings that move a phone to this model's path (read once, then the phone reboots)."""
        url = urlsplit(self.settings.public_url)
        # serverName is host[:port][/path] without a scheme; the public URL's own path (a server mounted under
        # /autoprov) comes before the model's. Credentials in the URL become the phone's provisioning login.
        server_name = url.netloc.rpartition("@")[2] + url.path.rstrip("/") + self.base_path.rstrip("/")
        return {
            "server_type": SERVER_TYPES[url.scheme],
            "server_name": server_name,
            "prov_user": unquote(url.username or ""),
            "prov_password": unquote(url.password or ""),
        }

    def provisioning_credentials(self, user: str, password: str) -> dict[str, str]:
        """The device settings of the provisioning login: the phone stores them (device.set) and sends them
        as HTTP credentials from its next request on."""
        return {"device.set": "1", "device.prov.user.set": "1", "device.prov.user": user,
                "device.prov.password.set": "1", "device.prov.password": password}

    def reprovision_files(self, target: str, firmware: str | None, old_master: bytes | None) -> dict[str, bytes]:
        from autoprov.vendors.polycom.reprovision import reprovision_files

        return reprovision_files(target, firmware, old_master)

    def parse_log_line(self, text: str, uploaded: dt.datetime) -> LogRecord:
        return parse_line(text, uploaded)

    # --- Contact directory ---------------------------------------------------------------------
    def render_directory(self, entries: list[DirectoryEntry]) -> bytes:
        items = [
            (
                _directory_text("fn", e.first_name),
                _directory_text("ln", e.last_name),
                _one_line(e.contact),
                [(tag, _directory_text(tag, value)) for tag, value in e.extra if _DIRECTORY_TAG.fullmatch(tag)],
            )
            for e in entries
        ]
        return self._render("directory.xml.mako", items=items)

    def parse_directory(self, body: bytes) -> list[DirectoryEntry]:
        entries = []
        for item in ET.fromstring(body).iter("item"):
            fields = [(child.tag, (child.text or "").strip()) for child in item if isinstance(child.tag, str)]
            named = dict(fields)
            entries.append(
                DirectoryEntry(
                    first_name=named.get("fn", ""),
                    last_name=named.get("ln", ""),
                    contact=named.get("ct", ""),
                    extra=tuple((tag, value) for tag, value in fields if tag not in ("fn", "ln", "ct")),
                )
            )
        return entries


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text).strip()


def _directory_text(tag: str, text: str) -> str:
    """A field as the phone can hold it: one line; names and labels cut to 40 bytes on a character boundary."""
    text = _one_line(text)
    return truncate_utf8(text, DIRECTORY_TEXT_LIMIT) if tag in DIRECTORY_LIMITED else text
