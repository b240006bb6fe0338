"""MAC addresses: accepted in any case, with or without ``:``/``-``/``.`` separators;
stored as 12 lowercase hex digits."""

from __future__ import annotations

import re

# Used with fullmatch: "$" alone also matches before a final newline ("0004f2aabbcc\n").
_SEPARATED = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")
_CISCO = re.compile(r"[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}")
_BARE = re.compile(r"[0-9a-fA-F]{12}")

# The MAC a phone puts in a file name when it asks for the shared defaults, never a real phone.
ZERO_MAC = "000000000000"


class InvalidMac(ValueError):
    pass


def normalize_mac(value: str) -> str:
    """``00:04:F2:AA:BB:CC`` -> ``0004f2aabbcc``; raise InvalidMac for anything else."""
    text = value.strip()
    if _BARE.fullmatch(text) or _SEPARATED.fullmatch(text) or _CISCO.fullmatch(text):
        mac = re.sub(r"[^0-9a-fA-F]", "", text).lower()
        if mac == ZERO_MAC:
            raise InvalidMac("000000000000 is the shared-defaults name, not a phone's MAC")
        return mac
    raise InvalidMac(
        f"not a MAC address: {value!r} (12 hex digits, optionally separated by : or -, or dotted as 0004.f2aa.bbcc)"
    )


def is_mac(value: str) -> bool:
    return bool(_BARE.fullmatch(value))


def format_mac(mac: str) -> str:
    """``0004f2aabbcc`` -> ``00:04:f2:aa:bb:cc`` for people."""
    return ":".join(mac[i : i + 2] for i in range(0, 12, 2))
