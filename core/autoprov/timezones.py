"""IANA time zones reduced to what phones understand; each vendor writes the result in its own terms.

Phones know only a standard GMT offset and one yearly daylight-saving rule ("the last Sunday of March at
02:00"), so the rule is read off the zone's transitions in a reference year.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REFERENCE_YEAR = 2026  # fixed, so generated configs are byte-stable; bump when zones change rules


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/London)") from None


@dataclass(frozen=True)
class Transition:
    """A daylight-saving change as phones describe it: "the last Sunday of March at 02:00"."""

    month: int
    week_start: int  # the first day of its week of the month: 1, 8, 15 or 22
    weekday: int  # ISO: 1 = Monday .. 7 = Sunday
    last_in_month: bool  # the last such weekday of the month
    hour: int  # wall-clock hour just before the change, in the offset then in force
    minute: int
    day: int  # the day of the month in REFERENCE_YEAR (for formats with fixed dates)


@dataclass(frozen=True)
class ZoneRule:
    """An IANA zone reduced to what phones understand: a standard offset and one yearly rule."""

    name: str
    standard_offset: int  # seconds east of UTC
    dst_offset: int | None  # seconds east of UTC while daylight saving is on; None: no daylight saving
    start: Transition | None
    end: Transition | None


def _transition(local: datetime) -> Transition:
    last_day = calendar.monthrange(local.year, local.month)[1]
    return Transition(local.month, ((local.day - 1) // 7) * 7 + 1, local.isoweekday(), local.day + 7 > last_day,
                      local.hour, local.minute, local.day)


@lru_cache(maxsize=64)
def zone_rule(name: str, year: int = REFERENCE_YEAR) -> ZoneRule:
    """The standard offset and daylight-saving rule of an IANA zone, read off its transitions in ``year``
    (fixed, so generated configs are byte-stable). Raises ValueError for an unknown zone."""
    tz = _zone(name)
    start = datetime(year, 1, 1, tzinfo=UTC)
    transitions: list[tuple[datetime, timedelta, timedelta]] = []
    previous = start.astimezone(tz).utcoffset()
    # Find each day whose offset differs from the day before, then the minute within it.
    for day in range(1, 367):
        moment = start + timedelta(days=day)
        offset = moment.astimezone(tz).utcoffset()
        if offset != previous:
            for minute in range(24 * 60):
                t = moment - timedelta(days=1) + timedelta(minutes=minute)
                if t.astimezone(tz).utcoffset() != previous:
                    transitions.append((t, previous, offset))
                    break
            previous = offset
    jan = datetime(year, 1, 1, tzinfo=tz)
    jul = datetime(year, 7, 1, tzinfo=tz)
    if len(transitions) != 2:
        standard = jan.utcoffset() - jan.dst()
        return ZoneRule(name, int(standard.total_seconds()), None, None, None)
    standard = min(jan.utcoffset(), jul.utcoffset())
    begin = next(t for t in transitions if t[2] > t[1])
    end = next(t for t in transitions if t[2] < t[1])
    # Wall-clock time just before each change, in the offset then in force.
    return ZoneRule(
        name, int(standard.total_seconds()), int(max(jan.utcoffset(), jul.utcoffset()).total_seconds()),
        _transition((begin[0] + begin[1]).replace(tzinfo=None)), _transition((end[0] + end[1]).replace(tzinfo=None)),
    )


def is_valid_zone(name: str) -> bool:
    try:
        _zone(name)
    except ValueError:
        return False
    return True


__all__ = ["zone_rule", "ZoneRule", "Transition", "is_valid_zone", "REFERENCE_YEAR"]
