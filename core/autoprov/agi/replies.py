"""Reading Asterisk's replies: ``200 result=...`` lines, ``100 Trying``, errors, 520 usage blocks, ``HANGUP``.

The rules follow what Asterisk really sends (see docs/agi.md): an empty ``result=``, data in nested or
unbalanced parentheses, ``key="quoted value"`` pairs, a 520 block that arrives in pieces and whose usage
text is free (only a line beginning with ``520 `` ends it, or, in old versions, a line ending in
``520 End of proper usage.``), and an unsolicited ``HANGUP`` line before any reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from autoprov.agi.errors import (
    AGICommandError,
    AGIDeadChannel,
    AGIHangup,
    AGIInvalidCommand,
    AGIProtocolError,
    AGIUsageError,
)

_LINE = re.compile(r"(\d{3})([ -])(.*)\Z", re.S)
_RESULT = re.compile(r"result=(\S*)(?: (.*))?\Z", re.S)
_FIELD = re.compile(r'\s*([^\s=()"]+)=(?:"([^"]*)"|([^\s"]*))')
_OLD_USAGE_END = "520 End of proper usage."


@dataclass(frozen=True)
class Reply:
    """One final reply. ``result`` is the text after ``result=`` ('' when empty, None when absent)."""

    code: int
    line: str
    result: str | None = None
    data: str | None = None  # what the parentheses held, outer pair removed
    fields: dict[str, str] = field(default_factory=dict)  # key=value pairs after the data
    note: str = ""  # free text that is neither data nor pairs ("Gosub complete")
    rest: str = ""  # everything after "result=<n> ", verbatim
    interim: tuple[Reply, ...] = ()  # 100 replies that came first

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result) if self.result else None
        except ValueError:
            return None

    @property
    def value(self) -> str | None:
        """The data of a command whose data is an arbitrary value (GET VARIABLE, DATABASE GET).

        Such a value may itself hold unbalanced parentheses, so take everything between the first
        ``(`` and the last ``)`` rather than the balanced match.
        """
        if self.rest.startswith("(") and self.rest.endswith(")"):
            return self.rest[1:-1]
        return self.data


def _parse_fields(text: str) -> dict[str, str] | None:
    """The key=value pairs making up all of ``text``, or None if it is something else."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _FIELD.match(text, pos)
        if not m or (m.end() < len(text) and not text[m.end()].isspace()):
            return None
        found[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
        pos = m.end()
    return found


def _balanced_end(text: str) -> int | None:
    """Index of the ``)`` closing the ``(`` at text[0], or None if it never closes."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _split_data(rest: str) -> tuple[str | None, dict[str, str], str]:
    if not rest.startswith("("):
        pairs = _parse_fields(rest)
        return (None, pairs, "") if pairs is not None else (None, {}, rest)
    end = _balanced_end(rest)
    if end is not None:
        pairs = _parse_fields(rest[end + 1 :])
        if pairs is not None:
            return rest[1:end], pairs, ""
    # Unbalanced data (a variable's value may be "a)b"): the last ")" after which only pairs follow.
    end = rest.rfind(")")
    while end > 0:
        pairs = _parse_fields(rest[end + 1 :])
        if pairs is not None:
            return rest[1:end], pairs, ""
        end = rest.rfind(")", 0, end)
    return None, {}, rest


def parse_result(line: str, interim: tuple[Reply, ...] = ()) -> Reply:
    """Parse one ``200``/``100`` line into a Reply (no exception for codes: see :class:`ReplyReader`)."""
    m = _LINE.match(line)
    if not m:
        raise AGIProtocolError(f"not an AGI reply: {line!r}")
    code, body = int(m.group(1)), m.group(3)
    r = _RESULT.match(body)
    if not r:
        return Reply(code=code, line=line, note=body, rest=body, interim=interim)
    rest = r.group(2) or ""
    data, pairs, note = _split_data(rest)
    return Reply(code, line, r.group(1), data, pairs, note, rest, interim)


def is_hangup(line: str) -> bool:
    return line.strip() == "HANGUP"


class ReplyReader:
    """Reads replies from ``readline`` (a line without its newline, None at end of stream).

    ``HANGUP`` lines may come before any reply: each calls ``on_hangup`` and is otherwise skipped.
    """

    def __init__(self, readline: Callable[[], str | None], on_hangup: Callable[[], None]) -> None:
        self._readline = readline
        self._on_hangup = on_hangup

    def _next_line(self, keep_blank: bool = False) -> str:
        while True:
            line = self._readline()
            if line is None:
                raise AGIHangup("connection closed by Asterisk")
            if is_hangup(line):
                self._on_hangup()
                continue
            if line.strip() == "" and not keep_blank:
                continue
            return line

    def _usage_block(self) -> str:
        """The rest of a ``520-`` block, up to and including its end line; returns the usage text."""
        usage: list[str] = []
        while True:
            line = self._next_line(keep_blank=True)
            if line.startswith("520 "):
                return "\n".join(usage)
            if line.endswith(_OLD_USAGE_END):  # old Asterisk glued the end onto the last usage line
                usage.append(line[: -len(_OLD_USAGE_END)])
                return "\n".join(usage)
            usage.append(line)

    def read_reply(self) -> Reply:
        """The final reply to the command just sent; raises for anything but 200 (see errors)."""
        interim: list[Reply] = []
        while True:
            line = self._next_line()
            m = _LINE.match(line)
            if not m:
                raise AGIProtocolError(f"not an AGI reply: {line!r}")
            code, continued, text = int(m.group(1)), m.group(2) == "-", m.group(3)
            if code == 100:
                interim.append(parse_result(line))
                continue
            if code == 200:
                return parse_result(line, tuple(interim))
            if code == 520:
                raise AGIUsageError(text, 520, self._usage_block() if continued else "")
            if continued:  # another multi-line reply: skip to its end so later replies stay in step
                while not self._next_line(keep_blank=True).startswith(f"{code} "):
                    pass
            if code == 510:
                raise AGIInvalidCommand(text, code)
            if code == 511:  # the channel is dead even if no HANGUP line came (AGISIGHUP, intercept)
                self._on_hangup()
                raise AGIDeadChannel(text, code)
            raise AGICommandError(text, code)
