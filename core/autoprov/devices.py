"""What a device model plugin provides: the whole file protocol of one phone model.

A model declares the files it answers (:class:`FileRule`), scores how well it knows a User-Agent
(:meth:`DeviceModel.identify`), renders its files from its own templates, parses what its phones upload and
refuses data its format cannot carry. Core's routes ask the models; they hold no vendor's file names.

Models are built for one Site (``autoprov_device_models(settings)``), so two Sites in one process never share
one. A model package is usually one :class:`ModelPlugin` line: ``plugin = ModelPlugin(MyModel, name=...)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, ClassVar

from autoprov import hookimpl
from autoprov.config import Settings


class Support(IntEnum):
    """How sure a model is that a User-Agent is one of its phones; the best score wins, whatever the install
    order (in the spirit of wazo-provd's ``DeviceSupport``)."""

    NONE = 0
    GUESS = 10  # a generic guess: "some phone of this vendor", a catch-all
    FAMILY = 50  # the vendor's family is named, not this model
    EXACT = 100  # this model's own token


@dataclass(frozen=True)
class Identity:
    """What a model read off a User-Agent."""

    support: Support
    firmware: str | None = None  # the software version the User-Agent reports
    mac: str | None = None  # a MAC the User-Agent carries (normalised), if the vendor's format has one


# --- Files -------------------------------------------------------------------------------------------------

# Roles core knows how to answer; a feature may register handlers for more (``autoprov_file_handlers``).
GENERATED = "generated"  # rendered from the site's settings alone: no database, cacheable for the process
PHONE = "phone"  # one phone's config, from the database
FALLBACK = "fallback"  # a per-phone name the phone tries first: 404 (it falls back), the MAC recorded
DIRECTORY = "directory"  # the contact directory (company, or one phone's merged with its own contacts)
LOG = "log"  # log uploads (HEAD, PUT)
OVERRIDES = "overrides"  # the user's local settings (GET, PUT)
CONTACTS = "contacts"  # the phone's own directory written back (PUT)

ROOT = "root"  # at the server root, where DHCP points a factory-fresh phone
MODEL = "model"  # below /prov/<model>/

_PLACEHOLDER = re.compile(r"\{(mac|name)(?::([^}]+))?\}")
_MAC_RE = "[0-9A-Fa-f]{12}"
_NAME_RE = "[A-Za-z0-9_.-]{1,64}"


@dataclass(frozen=True)
class FileRule:
    """One file (or one family of per-phone files) a model answers.

    ``pattern`` is the file name, with ``{mac}`` standing for the phone's 12 hex digits (any case) and
    ``{name}`` (or ``{name:regex}``) for a free part such as a log's name: ``"{mac}-phone.cfg"``,
    ``"cfg{mac}.xml"``, ``"logs/{mac}-{name}.log"``.
    """

    pattern: str
    role: str
    where: str = MODEL
    template: str | None = None  # what the model renders (GENERATED and PHONE roles)
    secret: bool = False  # holds credentials: only clients the access rules admit may fetch it
    media_type: str = "text/plain; charset=utf-8"
    methods: tuple[str, ...] = ("GET",)  # HEAD is implied by GET
    # A regex of names that are this kind of file but malformed (a bad MAC, a bad log name): answered 400,
    # where any other unclaimed name is looked up in the firmware directory.
    malformed: str | None = None

    @property
    def per_phone(self) -> bool:
        return "{mac}" in self.pattern

    @property
    def shape(self) -> str:
        """The pattern for people: ``logs/<mac>-<name>.log``."""
        return _PLACEHOLDER.sub(lambda m: f"<{m.group(1)}>", self.pattern)

    def _regex(self, mac: str, name: str) -> re.Pattern[str]:  # see _compiled
        parts, pos = [], 0
        for m in _PLACEHOLDER.finditer(self.pattern):
            parts.append(re.escape(self.pattern[pos : m.start()]))
            parts.append(f"(?P<mac>{mac})" if m.group(1) == "mac" else f"(?P<name>{m.group(2) or name})")
            pos = m.end()
        parts.append(re.escape(self.pattern[pos:]))
        return re.compile("".join(parts))

    def match(self, filename: str) -> dict[str, str] | None:
        """The placeholders' values if ``filename`` is this rule's file, else None."""
        m = _compiled(self).fullmatch(filename)
        return m.groupdict() if m else None

    def is_malformed(self, filename: str) -> bool:
        """Whether ``filename`` is this kind of file, malformed (see ``malformed``)."""
        return self.malformed is not None and re.fullmatch(self.malformed, filename) is not None


_COMPILED: dict[FileRule, re.Pattern[str]] = {}


def _compiled(rule: FileRule) -> re.Pattern[str]:
    """Rules are frozen values: their regexes are compiled once per process (an immutable derivation)."""
    found = _COMPILED.get(rule)
    if found is None:
        found = _COMPILED[rule] = rule._regex(_MAC_RE, _NAME_RE)
    return found


# --- What templates see ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneLine:
    """One line of a phone as the templates see it (an extension with its resolved SIP server)."""

    index: int
    user_id: str
    secret: str
    display_name: str
    label: str
    server: str
    port: int
    transport: str
    expires: int
    mailbox: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class PhoneView:
    """A phone as the templates see it: everything needed to render, already resolved from the database."""

    mac: str
    model: str
    lines: tuple[PhoneLine, ...]
    time_zone: str | None = None  # a per-phone override of the site's zone
    # The provisioning login (user, password) to hand the phone (``DeviceModel.provisioning_credentials``);
    # None: [access] credentials = "none", or not known here.
    login: tuple[str, str] | None = None


@dataclass(frozen=True)
class DirectoryEntry:
    """One contact of a phone's directory: company (from an extension) or the phone user's own.

    ``extra`` holds the format's other per-contact fields in order (Polycom: speed dial, ring tone, ...).
    """

    first_name: str
    last_name: str
    contact: str  # number or SIP URI
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LogRecord:
    """One uploaded log line as a model reads it; a line that does not fit its format is kept whole."""

    parsed: bool
    message: str
    stamp: str | None = None
    phone_time: dt.datetime | None = None
    uptime: float | None = None
    module: str | None = None
    level: int | None = None
    missed: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A value a model's format cannot carry: ``field`` names it for the CLI and the admin UI."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DeviceModel:
    """A phone model, built for one Site. Subclasses set the class attributes or take them in ``__init__``.

    Everything a model needs comes in through ``__init__``: the site's settings and this plugin's own
    (validated) ``[plugins.<name>]`` settings. There is no later configuration step.
    """

    name: str  # path segment and database value, e.g. "polycom_ip330"
    label: str  # for people, e.g. "Polycom SoundPoint IP 330"
    vendor: str
    line_count: int
    user_agent_tokens: tuple[str, ...] = ()  # matched case-insensitively as whole tokens: Support.EXACT
    family_tokens: tuple[str, ...] = ()  # the vendor family's tokens: Support.FAMILY
    mac_ouis: tuple[str, ...] = ()  # the first 6 hex digits of its phones' MACs (DHCP, unknown User-Agents)
    firmware_subdir: str | None = None  # below [firmware] root; default: the model's name
    check_sync_event: str | None = None  # the SIP NOTIFY Event that makes the phone re-read its config
    # Plugin settings: a dataclass whose fields are the keys of [plugins.<plugin name>] (None: takes none).
    settings_class: ClassVar[type | None] = None

    def __init__(self, settings: Settings, plugin_settings: Any = None) -> None:
        self.settings = settings
        self.plugin_settings = plugin_settings
        self._tokens = _token_regex(self.user_agent_tokens)
        self._family = _token_regex(self.family_tokens)

    # --- Identification -------------------------------------------------------------------------------
    def identify(self, user_agent: str) -> Identity | None:
        """How well this model knows ``user_agent`` (None: not at all). Called once per distinct User-Agent."""
        if self._tokens is not None and self._tokens.search(user_agent):
            support = Support.EXACT
        elif self._family is not None and self._family.search(user_agent):
            support = Support.FAMILY
        else:
            return None
        return Identity(support, self.firmware_version(user_agent), self.serial_mac(user_agent))

    def firmware_version(self, user_agent: str) -> str | None:
        """The software version a User-Agent reports, if the vendor's format has one."""
        return None

    def serial_mac(self, user_agent: str) -> str | None:
        """The phone's MAC if its User-Agent carries one."""
        return None

    def certificate_mac(self, subject_cn: str, cert_pem: str) -> str | None:
        """The MAC (normalised) of the phone a device certificate names, if it is one of this model's; called
        only for a certificate the web server verified (mutual TLS, see autoprov.clientcert). ``cert_pem``
        is the whole certificate ("" when the server does not export it). Default: none."""
        return None

    # --- Files ----------------------------------------------------------------------------------------
    def files(self) -> tuple[FileRule, ...]:
        """Every file this model answers, at the root and under its path."""
        return ()

    @property
    def base_path(self) -> str:
        return f"/prov/{self.name}/"

    @property
    def firmware_dir(self) -> Path:
        return Path(self.settings.firmware.root) / (self.firmware_subdir or self.name)

    @property
    def firmware_files(self) -> tuple[str, ...]:
        """File names the model expects in its firmware directory (for ``autoprov models``)."""
        return ()

    def render(self, rule: FileRule, phone: PhoneView | None = None) -> bytes:
        """A GENERATED file (``phone`` None) or one phone's PHONE file, from the rule's template."""
        raise NotImplementedError(f"{self.name} does not render {rule.pattern}")

    # --- Directory, uploads -----------------------------------------------------------------------------
    def render_directory(self, entries: list[DirectoryEntry]) -> bytes | None:
        """The contact directory file with these entries, within the format's limits; None: no directory."""
        return None

    def parse_directory(self, body: bytes) -> list[DirectoryEntry]:
        """The entries of a directory file the phone uploaded (checked well-formed before it was stored)."""
        return []

    def parse_log_line(self, text: str, uploaded: dt.datetime) -> LogRecord:
        """One uploaded log line (no newline); ``uploaded`` is naive UTC. Default: kept whole, unparsed."""
        return LogRecord(parsed=False, message=text)

    # --- Moving phones off another provisioning server ----------------------------------------------------
    def reprovision_files(self, target: str, firmware: str | None, old_master: bytes | None) -> dict[str, bytes]:
        """Files an admin puts on the OLD provisioning server so this model's phones move to ``target`` (an
        http(s) URL, credentials in it becoming the phone's provisioning login): name -> content. ``firmware``
        is the version the phones run (their User-Agent shows it), ``old_master`` the old server's shared
        config file, if it has one to keep. Raise ValueError with a message for what cannot be done; the
        default: this model cannot be moved by autoprov."""
        raise ValueError(f"{self.label} declares no way to move its phones off another server")

    # --- HTTP credentials -------------------------------------------------------------------------------------
    def provisioning_credentials(self, user: str, password: str) -> dict[str, str] | None:
        """The parameters that make the phone send ``user``/``password`` when it next fetches its files, as
        this model writes them in its per-phone config (``phone.login`` carries them to the templates).
        None: the model has no way to be handed a login; its phones use the site-wide one, set on the phone
        or in its provisioning URL by the admin (README, "Security: HTTP credentials")."""
        return None

    # --- Refusing bad data at the door ------------------------------------------------------------------
    def check_phone(self, phone: PhoneView) -> list[Refusal]:
        """What this model cannot render for ``phone``: checked at ``phone add/update``, ``extension update``
        and CSV import, so a bad value is refused before a phone asks for it."""
        refusals = []
        if len(phone.lines) > self.line_count:
            refusals.append(Refusal("lines", f"a {self.label} has {self.line_count} line(s), not {len(phone.lines)}"))
        return refusals


def _token_regex(tokens: Iterable[str]) -> re.Pattern[str] | None:
    tokens = tuple(tokens)
    if not tokens:
        return None
    alternatives = "|".join(re.escape(t) for t in tokens)
    return re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


class ModelPlugin:
    """The plugin object of a model package: builds its model for each Site that asks.

    ``plugin = ModelPlugin(PolycomModel, name="polycom_vvx410", ...)`` in the package, and the entry point
    ``[project.entry-points.autoprov] polycom_vvx410 = "package:plugin"``.
    """

    def __init__(self, factory: Callable[..., DeviceModel], **kwargs: Any) -> None:
        self.factory = factory
        self.kwargs = kwargs

    @hookimpl
    def autoprov_device_models(self, settings: Settings, plugin_settings: Any) -> list[DeviceModel]:
        return [self.factory(settings, plugin_settings, **self.kwargs)]

    @hookimpl
    def autoprov_plugin_settings(self) -> type | None:
        return getattr(self.factory, "settings_class", None)


@dataclass(frozen=True)
class ModelInfo:
    """For ``autoprov models``: one installed model and what identification found about it."""

    model: DeviceModel
    plugin: str
    ties: list[str] = field(default_factory=list)
