"""Parsing one line of a Polycom log: ``time|module|level|missed|text``.

The time is ``MMDDHHMMSS`` (no year) once the clock is set, ``seconds.millis`` since boot before that, and
``YYMMDDHHMM`` on some firmware. Both ten-digit forms can be valid for the same digits, so each reading is
tried and the one nearest the upload time wins. A line that does not fit is kept whole, never dropped.
"""

from __future__ import annotations

import datetime as dt
import re

from autoprov.devices import LogRecord

# Every field is bounded so it fits its column (stamp 32, module 16 characters): a line that does not fit is
# stored raw rather than failing its whole upload. ASCII digits only: int() would take any script's digits.
_LINE = re.compile(r"(\d{10}|\d{1,12}\.\d{1,9})\|([^|]{1,5})\|([0-6*])\|(\d{1,4})\|(.*)", re.DOTALL | re.ASCII)

# A phone's clock is in its own zone and may run a little fast: a time this far past the upload still counts.
FUTURE_SLACK = dt.timedelta(days=2)


def parse_line(text: str, uploaded: dt.datetime) -> LogRecord:
    """One line without its newline; ``uploaded`` (naive UTC) anchors the year of MMDDHHMMSS stamps."""
    m = _LINE.fullmatch(text)
    if m is None:
        return LogRecord(parsed=False, message=text)
    stamp, module, level, missed, message = m.groups()
    uptime = float(stamp) if "." in stamp else None
    return LogRecord(
        parsed=True,
        message=message,
        stamp=stamp,
        phone_time=None if uptime is not None else decode_time(stamp, uploaded),
        uptime=uptime,
        module=module.strip() or None,
        level=None if level == "*" else int(level),
        missed=int(missed),
    )


def decode_time(stamp: str, uploaded: dt.datetime) -> dt.datetime | None:
    """A ten-digit stamp as a datetime, or None if no reading of it is a valid time near ``uploaded``."""
    candidates = [t for t in (*_mmddhhmmss(stamp, uploaded), _yymmddhhmm(stamp)) if t is not None]
    candidates = [t for t in candidates if t <= uploaded + FUTURE_SLACK]
    if not candidates:
        return None
    return min(candidates, key=lambda t: abs(t - uploaded))


def _mmddhhmmss(stamp: str, uploaded: dt.datetime) -> list[dt.datetime | None]:
    month, day, hour, minute, second = (int(stamp[i : i + 2]) for i in range(0, 10, 2))
    # The year before, of and after the upload: the nearest one not far in the future is the phone's.
    years = (uploaded.year - 1, uploaded.year, uploaded.year + 1)
    return [_make(year, month, day, hour, minute, second) for year in years]


def _yymmddhhmm(stamp: str) -> dt.datetime | None:
    year, month, day, hour, minute = (int(stamp[i : i + 2]) for i in range(0, 10, 2))
    return _make(2000 + year, month, day, hour, minute, 0)


def _make(*parts: int) -> dt.datetime | None:
    try:
        return dt.datetime(*parts)
    except ValueError:  # month 13, 30 February, hour 24...
        return None
