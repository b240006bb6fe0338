"""Values in Yealink's ``key = value`` configuration files: what one can carry, and the template filter.

A value ends at the end of its line, and the phone trims the blanks around it; ``%NULL%`` is not a value but
"back to the factory default". So a value with a line break, another control character, a blank at either
end, or that is ``%NULL%`` itself cannot reach the phone as written: such data is refused at the door
(``problem``), and the template filter refuses to write it (``cfg``) should it get there all the same.
"""

from __future__ import annotations

import unicodedata
from typing import Any

NULL = "%NULL%"  # Yealink's "reset this parameter to its default"


def problem(value: str) -> str | None:
    """Why ``value`` cannot be written as a Yealink configuration value (None: it can)."""
    for c in value:
        # Cc: C0/C1 controls (tab, CR, LF, NEL); Zl/Zp: Unicode line and paragraph separators.
        if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):
            return f"contains a line break or control character ({c!r})"
    if value != value.strip():
        return "starts or ends with a blank, which the phone trims"
    if value.upper() == NULL:
        return f"is {NULL}, which the phone reads as 'back to the default'"
    return None


class UnsafeValue(ValueError):
    """A value the configuration file cannot carry reached the renderer (it should have been refused)."""


def cfg(value: Any) -> str:
    """The default template filter: the value as written after ``key = ``, or UnsafeValue."""
    if value is None:
        return ""
    if isinstance(value, bool):
        value = int(value)
    text = str(value)
    why = problem(text)
    if why is not None:
        raise UnsafeValue(f"a value {why}")
    return text
