"""What every device model plugin provides; vendors share an implementation (see ``autoprov.vendors``).

A model is the plugin object itself: it answers the hooks that say which User-Agent it owns and which
models it provides, and it renders its own files from its own Mako templates.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoprov import hookimpl
from autoprov.config import Settings


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


@dataclass(frozen=True)
class PhoneView:
    """A phone as the templates see it: everything needed to render, already resolved from the database."""

    mac: str
    model: str
    lines: tuple[PhoneLine, ...]
    time_zone: str | None = None  # a per-phone override of the site's zone
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectoryEntry:
    """One contact of a phone's directory: company (from an extension) or the phone user's own.

    ``extra`` holds the format's other per-contact fields in order (Polycom: speed dial, ring tone, ...).
    """

    first_name: str
    last_name: str
    contact: str  # number or SIP URI
    extra: tuple[tuple[str, str], ...] = ()


class DeviceModel(ABC):
    """A phone model. Subclasses set the class attributes or pass them to ``__init__``."""

    name: str  # path segment and database value, e.g. "polycom_ip330"
    label: str  # for people, e.g. "Polycom SoundPoint IP 330"
    vendor: str
    user_agent_tokens: tuple[str, ...]  # matched case-insensitively as whole tokens of the User-Agent
    line_count: int
    firmware_subdir: str | None = None  # below [firmware] root; default: the model's name

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self._token_re = re.compile(
            r"(?<![A-Za-z0-9])(" + "|".join(re.escape(t) for t in self.user_agent_tokens) + r")(?![A-Za-z0-9])",
            re.IGNORECASE,
        )

    def configure(self, settings: Settings) -> None:
        """Called once by the Site with the site's settings before the model renders anything."""
        self.settings = settings

    # Hooks: the model object is its own pluggy plugin.
    @hookimpl
    def autoprov_device_models(self) -> list[DeviceModel]:
        return [self]

    @hookimpl
    def autoprov_identify_user_agent(self, user_agent: str) -> str | None:
        return self.name if self.matches_user_agent(user_agent) else None

    def matches_user_agent(self, user_agent: str) -> bool:
        return bool(self._token_re.search(user_agent))

    def firmware_version(self, user_agent: str) -> str | None:
        """The software version a User-Agent reports, if the vendor's format has one."""
        return None

    def serial_mac(self, user_agent: str) -> str | None:
        """The phone's MAC if its User-Agent carries one (some firmware tags even the first request)."""
        return None

    @property
    def firmware_dir(self) -> Path:
        assert self.settings is not None, "model not configured"
        return Path(self.settings.firmware.root) / (self.firmware_subdir or self.name)

    @property
    def firmware_files(self) -> tuple[str, ...]:
        """File names the model expects in its firmware directory (for ``autoprov models``)."""
        return ()

    @abstractmethod
    def render_initial_config(self) -> bytes:
        """The answer to a factory-fresh phone's first request: points it at this model's path."""

    @abstractmethod
    def render_master_config(self) -> bytes:
        """The model's master config (``/prov/<model>/000000000000.cfg``)."""

    @abstractmethod
    def render_site_config(self) -> bytes:
        """The site-wide config every phone of the model includes."""

    @abstractmethod
    def render_phone_config(self, phone: PhoneView) -> bytes:
        """One phone's config, from the database."""

    def render_directory(self, entries: list[DirectoryEntry]) -> bytes | None:
        """The contact directory file with these entries, within the format's limits; None: no directory."""
        return None

    def parse_directory(self, body: bytes) -> list[DirectoryEntry]:
        """The entries of a directory file the phone uploaded (well-formed XML, checked before it was stored)."""
        return []

    def generated_files(self) -> dict[str, str]:
        """File names under ``/prov/<model>/`` that are rendered rather than served from firmware, by role."""
        return {}

    def role_holds_secrets(self, role: str) -> bool:
        """Whether the generated file ``role`` carries credentials, so only ``secrets_allowed_from`` may fetch it."""
        return False

    @property
    def base_path(self) -> str:
        return f"/prov/{self.name}/"

    def base_url(self) -> str:
        assert self.settings is not None, "model not configured"
        return self.settings.public_url + self.base_path
