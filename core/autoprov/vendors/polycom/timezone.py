"""A time zone in Polycom's terms: ``tcpIpApp.sntp.gmtOffset`` and a weekday-based daylight-saving rule.

Polycom numbers weekdays 1 = Sunday .. 7 = Saturday, and gives a change as the first day of its week of the
month (1, 8, 15, 22) plus ``lastInMonth`` (``fixedDayEnable=0`` rules, UC Software and SIP 3.x alike).
"""

from __future__ import annotations

from functools import lru_cache

from autoprov.timezones import Transition, zone_rule

PREFIX = "tcpIpApp.sntp.daylightSavings"


def _rule(prefix: str, t: Transition) -> list[tuple[str, str]]:
    return [
        (f"{prefix}.month", str(t.month)),
        (f"{prefix}.date", str(t.week_start)),
        (f"{prefix}.time", str(t.hour)),
        (f"{prefix}.dayOfWeek", str(t.weekday % 7 + 1)),
        (f"{prefix}.dayOfWeek.lastInMonth", "1" if t.last_in_month else "0"),
    ]


@lru_cache(maxsize=64)
def polycom_time_settings(name: str) -> tuple[tuple[str, str], ...]:
    """``tcpIpApp.sntp.*`` parameters (gmtOffset and daylight saving) for an IANA zone, in a stable order."""
    rule = zone_rule(name)
    params = [("tcpIpApp.sntp.gmtOffset", str(rule.standard_offset))]
    if rule.start is None or rule.end is None:
        params.append((f"{PREFIX}.enable", "0"))
        return tuple(params)
    params += [(f"{PREFIX}.enable", "1"), (f"{PREFIX}.fixedDayEnable", "0")]
    params += _rule(f"{PREFIX}.start", rule.start) + _rule(f"{PREFIX}.stop", rule.end)
    return tuple(params)
