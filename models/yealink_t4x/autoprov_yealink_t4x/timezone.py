"""A time zone in Yealink's terms: ``local_time.*`` with a daylight-saving rule "by week".

``local_time.time_zone`` is the standard offset from UTC (``+1``, ``-5``, ``+5:30``). A rule by week
(``dst_time_type = 1``) gives each change as ``Month/Week of Month/Day of Week/Hour of Day``: the week 1..4
or 5 for "the last", the day 1 = Monday .. 7 = Sunday, the hour in the local time then in force; and
``offset_time`` is the minutes daylight saving adds. ``summer_time`` is 0 (off) or 1 (on, by these rules).
"""

from __future__ import annotations

from functools import lru_cache

from autoprov.timezones import Transition, zone_rule


def offset(seconds: int) -> str:
    """``+1``, ``-5``, ``+5:30``, ``+0``: Yealink writes whole hours bare and others as hours:minutes."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours}" if rest == 0 else f"{sign}{hours}:{rest:02d}"


def by_week(t: Transition) -> str:
    week = 5 if t.last_in_month else (t.week_start - 1) // 7 + 1
    return f"{t.month}/{week}/{t.weekday}/{t.hour}"


@lru_cache(maxsize=64)
def yealink_time_settings(name: str) -> tuple[tuple[str, str], ...]:
    """The ``local_time.*`` parameters for an IANA zone, in a stable order (ValueError if unknown)."""
    rule = zone_rule(name)
    params = [("local_time.time_zone", offset(rule.standard_offset))]
    if rule.start is None or rule.end is None or rule.dst_offset is None:
        return (*params, ("local_time.summer_time", "0"))
    return (
        *params,
        ("local_time.summer_time", "1"),
        ("local_time.dst_time_type", "1"),
        ("local_time.start_time", by_week(rule.start)),
        ("local_time.end_time", by_week(rule.end)),
        ("local_time.offset_time", str((rule.dst_offset - rule.standard_offset) // 60)),
    )
