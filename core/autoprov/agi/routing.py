"""Choosing a route for an incoming call: Asterisk patterns, time-of-day rules, Dial strings.

Pure functions over Route rows, shared by the ``route`` script and ``autoprov route add`` (which uses the
same validators, so what the command line accepts is exactly what the script can dial).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autoprov.agi.tables import Route

log = logging.getLogger(__name__)

DEST_TYPES = ("extension", "group", "external")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Nothing a Dial string gives meaning to (& , / @ ( ) $ { } | ; whitespace) may appear in a destination.
_EXTENSION = re.compile(r"[0-9A-Za-z*#+][0-9A-Za-z*#+_.-]{0,63}\Z")
_EXTERNAL = re.compile(r"\+?[0-9*#]{1,32}\Z")
_PATTERN = re.compile(r"(_[0-9A-Za-z*#+\[\]\-.!]{1,63}|[0-9A-Za-z*#+]{1,64})\Z")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d\Z|24:00\Z")
_SECONDS = re.compile(r"[0-9]{1,6}\Z")
RING_TIMEOUT = (1, 600)  # seconds a destination may ring, as `route add --ring-timeout` accepts


def validate_destination(dest_type: str, destination: str) -> str:
    """The destination in canonical form, or ValueError saying what is wrong."""
    if not isinstance(destination, str):  # a raw write can leave a number or bytes in the column
        raise ValueError(f"not a destination: {destination!r}")
    if dest_type == "extension":
        if not _EXTENSION.match(destination):
            raise ValueError(f"not an extension number: {destination!r}")
        return destination
    if dest_type == "group":
        members = [m.strip() for m in destination.split(",") if m.strip()]
        bad = [m for m in members if not _EXTENSION.match(m)]
        if not members or bad:
            raise ValueError(f"a ring group is extension numbers separated by commas, got {destination!r}")
        return ",".join(members)
    if dest_type == "external":
        if not _EXTERNAL.match(destination):
            raise ValueError(f"not an external number: {destination!r}")
        return destination
    raise ValueError(f"destination type must be one of {', '.join(DEST_TYPES)}, got {dest_type!r}")


def ring_timeout(value: object) -> int:
    """Seconds to ring, checked at dial time too: SQLite keeps ``'30,,U(evil)'`` in an integer column."""
    if isinstance(value, str) and _SECONDS.match(value):
        value = int(value)
    if type(value) is not int or not RING_TIMEOUT[0] <= value <= RING_TIMEOUT[1]:
        raise ValueError(f"ring timeout must be {RING_TIMEOUT[0]} to {RING_TIMEOUT[1]} seconds, got {value!r}")
    return value


def validate_pattern(pattern: str) -> str:
    if not _PATTERN.match(pattern):
        raise ValueError(f"not a DID or an Asterisk pattern (_X., _555XXXX): {pattern!r}")
    if parse_pattern(pattern).ignored:
        raise ValueError(f"nothing may follow . or ! in a pattern (Asterisk ignores it): {pattern!r}")
    return pattern


def parse_days(spec: str) -> frozenset[int]:
    """``mon-fri``, ``sat,sun``, ``fri-mon`` (wrapping) into weekday numbers; empty means every day."""
    if not spec.strip():
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"days are mon..sun, as mon-fri or sat,sun: {spec!r}")
        a, b = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def parse_hhmm(value: str) -> int:
    """Minutes after midnight of ``HH:MM`` (``24:00`` allowed as an end)."""
    if not _HHMM.match(value):
        raise ValueError(f"time must be HH:MM, got {value!r}")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def validate_window(start: str, end: str) -> None:
    """``--from``/``--to`` as the script reads them (empty: 00:00 and 24:00); a window that can never hold
    is refused rather than stored."""
    if start == "24:00":
        raise ValueError("24:00 can only end a window (--to); start at 00:00")
    first, last = window_minutes(start, end)
    if (start or end) and first == last:
        raise ValueError(f"an empty time window: from {start or '00:00'} to {end or '24:00'}")


def window_minutes(start: str, end: str) -> tuple[int, int]:
    """A window's ends in minutes of the day; empty ends are 00:00 and 24:00."""
    return parse_hhmm(start or "00:00"), parse_hhmm(end or "24:00")


def validate_zone(name: str) -> str:
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone: {name!r}") from None
    return name


_CLASSES = {"N": "23456789", "X": "0123456789", "Z": "123456789"}


class Pattern(NamedTuple):
    """A DID or an Asterisk pattern as Asterisk reads it."""

    positions: tuple[str, ...]  # the characters each position accepts, sorted
    tail: str  # "." (one or more of anything), "!" (zero or more) or "" (nothing more)
    ignored: str  # what followed the "." or "!": Asterisk ignores it


@functools.lru_cache(maxsize=4096)  # every routed call reads every route's pattern: parse each once
def parse_pattern(pattern: str) -> Pattern:
    """Read ``_NXX-[1-5]XX.`` as Asterisk does (ValueError if it cannot be dialled at all).

    ``-`` outside brackets is ignored (``_1-800-NXXXXXX`` is ``_1800NXXXXXX``); N, X, Z in any case are
    2-9, 0-9, 1-9; ``[...]`` holds characters and ``a-b`` ranges; a ``.`` or ``!`` ends the pattern.
    """
    if not isinstance(pattern, str) or not pattern:  # a raw write can leave anything in the column
        raise ValueError(f"not a DID or a pattern: {pattern!r}")
    if not pattern.startswith("_"):
        return Pattern(tuple(pattern.replace("-", "")), "", "")
    positions: list[str] = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch in ".!":
            return Pattern(tuple(positions), ch, pattern[i + 1 :])
        if ch == "[":
            close = pattern.find("]", i)
            if close == -1:
                raise ValueError(f"unclosed [ in pattern {pattern!r}")
            positions.append(_char_set(pattern[i + 1 : close], pattern))
            i = close
        elif ch != "-":
            positions.append(_CLASSES.get(ch.upper(), ch))
        i += 1
    return Pattern(tuple(positions), "", "")


def _char_set(body: str, pattern: str) -> str:
    """``1-35`` into ``1235``; Asterisk reads ``a-b`` as a range only with a character on each side."""
    chars: set[str] = set()
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            first, last = body[j], body[j + 2]
            if first > last:
                raise ValueError(f"backwards range {first}-{last} in pattern {pattern!r}")
            chars.update(map(chr, range(ord(first), ord(last) + 1)))
            j += 3
        else:
            chars.add(body[j])
            j += 1
    if not chars:
        raise ValueError(f"empty [] in pattern {pattern!r}")
    return "".join(sorted(chars))


@functools.lru_cache(maxsize=4096)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension pattern (``_NXXNXXXXXX``, ``_9.``, ``_[1-3]XX!``) as a regex; a DID matches itself."""
    parsed = parse_pattern(pattern)
    out = [re.escape(chars) if len(chars) == 1 else "[" + "".join(map(re.escape, chars)) + "]"
           for chars in parsed.positions]
    out.append({".": ".+", "!": ".*", "": ""}[parsed.tail])
    return re.compile("".join(out) + r"\Z", re.DOTALL)


# Past any set of characters: ".", then "!", then where a pattern ends (ext_cmp_pattern_pos gives them
# 0x18000, 0x28000 and 0x30000; see specificity).
_TAIL_RANK = {".": 1000, "!": 1001, "": 1002}


def specificity(pattern: str) -> tuple[int, tuple[tuple[int, str], ...]]:
    """Sort key putting the route Asterisk would pick for a number both match first (its ext_cmp order).

    A DID before any pattern. Patterns compare position by position; at the first that differs, the
    one accepting fewer characters wins: a literal (1) before a set of 2 ... before N (8), Z (9), X (10),
    then ``.``, then ``!``, then the end of the pattern; sets of the same size: the one with the lower
    characters. So where one pattern ends and the other goes on with ``!`` (``_01X`` and ``_01X!`` for
    012), the ``!`` one wins, as in Asterisk's default matcher (``extenpatternmatchnew=no``).
    """
    parsed = parse_pattern(pattern)
    ranks = [(len(chars), chars) for chars in parsed.positions]
    ranks.append((_TAIL_RANK[parsed.tail], ""))
    return (0 if not pattern.startswith("_") else 1, tuple(ranks))


def in_time_window(route: Route, now: datetime, default_zone: str) -> bool:
    """Whether ``now`` (aware) is inside the route's days and hours, in its zone or the site's."""
    local = now.astimezone(ZoneInfo(route.time_zone or default_zone))
    days = parse_days(route.days)
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    if not route.start and not route.end:
        return weekday in days
    start, end = window_minutes(route.start, route.end)
    if start <= end:
        return weekday in days and start <= minute < end
    # past midnight: the early hours belong to the day the window opened
    return (weekday in days and minute >= start) or ((weekday - 1) % 7 in days and minute < end)


def choose_route(routes: Iterable[Route], did: str, now: datetime, default_zone: str) -> Route | None:
    """The route for ``did`` now: lowest priority first, then the one Asterisk would pick (specificity)."""
    matching = []
    for route in routes:
        try:
            if type(route.priority) is not int:  # SQLite keeps text in an integer column
                raise ValueError(f"priority is not a number: {route.priority!r}")
            if pattern_regex(route.pattern).match(did) and in_time_window(route, now, default_zone):
                matching.append((route.priority, specificity(route.pattern), route.id, route))
        except (ValueError, TypeError, ZoneInfoNotFoundError) as exc:  # a bad row must not stop the others
            log.warning("route %s (%r) is invalid and skipped: %s", route.id, route.pattern, exc)
    return min(matching, key=lambda m: m[:3])[3] if matching else None


def dial_string(dest_type: str, destination: str, *, tech: str = "PJSIP", outbound: str = "outbound") -> str:
    """What Dial() gets: ``PJSIP/1001``, ``PJSIP/1001&PJSIP/1002``, ``Local/+15551234@outbound``."""
    destination = validate_destination(dest_type, destination)
    if dest_type == "extension":
        return f"{tech}/{destination}"
    if dest_type == "group":
        return "&".join(f"{tech}/{member}" for member in destination.split(","))
    return f"Local/{destination}@{outbound}"


def safe_name(value: str | None, default: str) -> str:
    """A technology or context name from the dialplan URL, or the default if it is not a plain name."""
    return value if value and _NAME.match(value) else default
