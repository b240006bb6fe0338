"""Escaping for everything autoprov writes into XML.

Mako templates use :func:`xml_attr` as their default filter, so every ``${...}`` is escaped unless a template
says ``| n``. Mako's own ``h``/``x`` leave newlines and tabs raw (an XML parser folds them to spaces inside
attributes) and pass characters XML 1.0 forbids (which make a phone reject the whole file).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Characters XML 1.0 does not allow at all (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_ATTR_TABLE = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&apos;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


def strip_forbidden(text: str) -> str:
    """Drop characters that no XML 1.0 document may contain."""
    return _FORBIDDEN.sub("", text)


def xml_attr(value: Any) -> str:
    """Escape a value for a double- or single-quoted XML attribute or for element text; None is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = int(value)
    return strip_forbidden(str(value)).translate(_ATTR_TABLE)


def truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes, cut on a character boundary
    and never between a letter and the combining marks that follow it (an "e" whose accent was cut off)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    cut = len(encoded[:limit].decode("utf-8", errors="ignore"))
    while 0 < cut < len(text) and unicodedata.combining(text[cut]):
        cut -= 1
    return text[:cut]
