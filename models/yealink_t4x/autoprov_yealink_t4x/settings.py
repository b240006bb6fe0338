"""``[plugins.yealink_t4x]``: the Yealink plugin's own settings, checked as they are read.

Core fills the dataclass key by key (an unknown key or a wrong type is refused with its name); each field
here is a checked descriptor, so a value the phones' files cannot carry is refused the same way, by name,
when the configuration is loaded rather than when a phone asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoprov.config import ConfigError
from autoprov_yealink_t4x.cfgvalue import problem

PLUGIN = "yealink_t4x"  # the entry point's name: the [plugins.<name>] section


class _Checked:
    """A dataclass field whose every assignment is checked (ConfigError naming the setting)."""

    def __init__(self, default: Any, check: Callable[[Any], str | None]) -> None:
        self.default = default
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self.default if obj is None else getattr(obj, self.slot, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        why = self.check(value) if isinstance(value, str) else None
        if why is not None:
            raise ConfigError(f"plugins.{PLUGIN}.{self.name}: {value!r} {why}")
        setattr(obj, self.slot, value)


def _text(value: str) -> str | None:
    if not value:
        return "is empty"
    return problem(value)


def _optional_text(value: str) -> str | None:
    return problem(value) if value else None


@dataclass
class YealinkSettings:
    """Settings every Yealink T4x phone of the site gets (in the model's common file)."""

    # The name the phone shows for the company directory (remote phone book 1).
    phonebook_name: str = _Checked("Company", _text)  # type: ignore[assignment]
    # The web interface's admin password; "" leaves the phone's own. When set, the common file holds a
    # credential and only [http] secrets_allowed_from may fetch it.
    admin_password: str = _Checked("", _optional_text)  # type: ignore[assignment]
    # Point the phones at the newest firmware file found in their firmware directory.
    upgrade_firmware: bool = True
