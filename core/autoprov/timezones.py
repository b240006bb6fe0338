"""IANA time zones turned into the parameters a Polycom phone understands.

Phones know only a standard GMT offset and one yearly daylight-saving rule ("the last Sunday of March at
02:00"), so the rule is read off the zone's transitions in a reference year and expressed that way.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REFERENCE_YEAR = 2026  # fixed, so generated configs are byte-stable; bump when zones change rules


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/London)") from None


def _rule(prefix: str, local: datetime) -> dict[str, str]:
    """Describe a transition by weekday occurrence, as Polycom's fixedDayEnable=0 rules do."""
    last_day = calendar.monthrange(local.year, local.month)[1]
    weekday = (local.isoweekday() % 7) + 1  # Polycom: 1 = Sunday .. 7 = Saturday
    last = local.day + 7 > last_day
    return {
        f"{prefix}.month": str(local.month),
        # Occurrence as the first day of its week of the month: 1, 8, 15, 22.
        f"{prefix}.date": str(((local.day - 1) // 7) * 7 + 1),
        f"{prefix}.time": str(local.hour),
        f"{prefix}.dayOfWeek": str(weekday),
        f"{prefix}.dayOfWeek.lastInMonth": "1" if last else "0",
    }


@lru_cache(maxsize=64)
def polycom_time_settings(name: str, year: int = REFERENCE_YEAR) -> tuple[tuple[str, str], ...]:
    """``tcpIpApp.sntp.*`` parameters (gmtOffset and daylight saving) for an IANA zone, in a stable order."""
    tz = _zone(name)
    utc = UTC
    start = datetime(year, 1, 1, tzinfo=utc)
    transitions: list[tuple[datetime, timedelta, timedelta]] = []
    previous = start.astimezone(tz).utcoffset()
    # Find each day whose offset differs from the day before, then the hour within it.
    for day in range(1, 367):
        moment = start + timedelta(days=day)
        offset = moment.astimezone(tz).utcoffset()
        if offset != previous:
            for hour in range(24 * 60):
                t = moment - timedelta(days=1) + timedelta(minutes=hour)
                if t.astimezone(tz).utcoffset() != previous:
                    transitions.append((t, previous, offset))
                    break
            previous = offset
    jan = datetime(year, 1, 1, tzinfo=tz)
    jul = datetime(year, 7, 1, tzinfo=tz)
    standard = min(jan.utcoffset(), jul.utcoffset()) if len(transitions) == 2 else jan.utcoffset() - jan.dst()
    params = [("tcpIpApp.sntp.gmtOffset", str(int(standard.total_seconds())))]
    if len(transitions) != 2:
        params.append(("tcpIpApp.sntp.daylightSavings.enable", "0"))
        return tuple(params)
    begin = next(t for t in transitions if t[2] > t[1])
    end = next(t for t in transitions if t[2] < t[1])
    params.append(("tcpIpApp.sntp.daylightSavings.enable", "1"))
    params.append(("tcpIpApp.sntp.daylightSavings.fixedDayEnable", "0"))
    prefix = "tcpIpApp.sntp.daylightSavings"
    # Wall-clock time just before each change, in the offset then in force.
    for name_, (moment, before, _after) in (("start", begin), ("stop", end)):
        params.extend(_rule(f"{prefix}.{name_}", (moment + before).replace(tzinfo=None)).items())
    return tuple(params)


def is_valid_zone(name: str) -> bool:
    try:
        _zone(name)
    except ValueError:
        return False
    return True


__all__ = ["polycom_time_settings", "is_valid_zone", "REFERENCE_YEAR"]
