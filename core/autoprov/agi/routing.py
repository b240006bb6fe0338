"""Choosing a route for an incoming call: Asterisk patterns, time-of-day rules, Dial strings.

Pure functions over Route rows, shared by the ``route`` script and ``autoprov route add`` (which uses the
same validators, so what the command line accepts is exactly what the script can dial).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime
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
    pattern_regex(pattern)
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


def validate_zone(name: str) -> str:
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone: {name!r}") from None
    return name


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An Asterisk extension pattern (``_NXXNXXXXXX``, ``_9.``, ``_[1-3]XX!``) as a regex; a DID matches itself."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern) + r"\Z")
    out: list[str] = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch in "Xx":
            out.append("[0-9]")
        elif ch in "Zz":
            out.append("[1-9]")
        elif ch in "Nn":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            close = pattern.find("]", i)
            if close == -1:
                raise ValueError(f"unclosed [ in pattern {pattern!r}")
            body = pattern[i + 1 : close]
            out.append("[" + "".join("-" if c == "-" else re.escape(c) for c in body) + "]")
            i = close
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as exc:  # [5-1]: a backwards range
        raise ValueError(f"bad pattern {pattern!r}: {exc}") from None


def in_time_window(route: Route, now: datetime, default_zone: str) -> bool:
    """Whether ``now`` (aware) is inside the route's days and hours, in its zone or the site's."""
    local = now.astimezone(ZoneInfo(route.time_zone or default_zone))
    days = parse_days(route.days)
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    if not route.start and not route.end:
        return weekday in days
    start, end = parse_hhmm(route.start or "00:00"), parse_hhmm(route.end or "24:00")
    if start <= end:
        return weekday in days and start <= minute < end
    # past midnight: the early hours belong to the day the window opened
    return (weekday in days and minute >= start) or ((weekday - 1) % 7 in days and minute < end)


def _specificity(pattern: str) -> tuple[int, int]:
    exact = not pattern.startswith("_")
    return (0 if exact else 1, -len(pattern.rstrip(".!")))


def choose_route(routes: Iterable[Route], did: str, now: datetime, default_zone: str) -> Route | None:
    """The route for ``did`` now: lowest priority first, an exact DID before a pattern, then the longer."""
    matching = []
    for route in routes:
        try:
            if type(route.priority) is not int:  # SQLite keeps text in an integer column
                raise ValueError(f"priority is not a number: {route.priority!r}")
            if pattern_regex(route.pattern).match(did) and in_time_window(route, now, default_zone):
                matching.append(route)
        except (ValueError, TypeError, ZoneInfoNotFoundError) as exc:  # a bad row must not stop the others
            log.warning("route %s (%r) is invalid and skipped: %s", route.id, route.pattern, exc)
    matching.sort(key=lambda r: (r.priority, *_specificity(r.pattern), r.id))
    return matching[0] if matching else None


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
