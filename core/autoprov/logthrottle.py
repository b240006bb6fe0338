"""One log line per cause per interval, with a count: an outage is news once, not 2,000 tracebacks."""

from __future__ import annotations

import logging
import threading
import time

INTERVAL = 60.0  # seconds between two lines of one cause

_lock = threading.Lock()
_last: dict[str, tuple[float, int]] = {}  # cause -> (when it was last logged, occurrences since)


def throttled(logger: logging.Logger, cause: str, level: int, msg: str, *args: object) -> None:
    """Log ``msg`` unless ``cause`` was logged less than INTERVAL seconds ago; the next line that gets out
    says how many were held back."""
    now = time.monotonic()
    with _lock:
        when, held = _last.get(cause, (float("-inf"), 0))
        if now - when < INTERVAL:
            _last[cause] = (when, held + 1)
            return
        _last[cause] = (now, 0)
    if held:
        msg += f" (and {held} more like it in the last {now - when:.0f} s)"
    logger.log(level, msg, *args)
