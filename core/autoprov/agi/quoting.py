"""Building command lines Asterisk splits back into exactly the arguments given.

Asterisk splits a command on spaces and tabs, honours ``"..."`` and backslash escapes, and reads one line
at a time into an 8 KiB buffer. Every argument is therefore quoted, with ``"`` and ``\\`` escaped; a
newline, carriage return or NUL cannot be escaped at all (it would end the command and start another), so
such a value is refused rather than sent.
"""

from __future__ import annotations

import re

# Asterisk reads commands into an 8 KiB buffer; a longer line would be cut and the rest run as a command.
MAX_COMMAND_BYTES = 8192
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_COMMAND = re.compile(r"[A-Za-z][A-Za-z ]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def quote(value: object) -> str:
    """One argument, quoted and escaped; ValueError for a value that would break the line."""
    text = str(value)
    if _FORBIDDEN.search(text):
        raise ValueError(f"an AGI argument cannot contain a newline, carriage return or NUL: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_command(command: str, *args: object) -> str:
    """``SET VARIABLE "name" "value"``: the command's words as they are, every argument quoted."""
    if not _COMMAND.match(command):
        raise ValueError(f"not an AGI command name: {command!r}")
    line = " ".join([command.upper(), *(quote(a) for a in args)])
    if len(line.encode("utf-8", "surrogateescape")) + 1 > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes: {command}")
    return line


def printable(value: str) -> str:
    """``value`` with control characters (newlines, tabs, NUL) turned into single spaces, for untrusted text."""
    return _CONTROL.sub(" ", value).strip()
