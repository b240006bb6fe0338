"""One log line per cause per interval, with a count: an expected outage (the database down, a disk full)
repeats on every request, and a line per request buries everything else in the log.

    from autoprov.logthrottle import log_throttled
    log_throttled(log, logging.ERROR, "database unavailable", "database unavailable for %s: %s", path, exc)

The first occurrence of a key is logged at once; later ones within ``interval`` seconds are only counted, and
the first one after the interval is logged with how many were held back (``[37 more like it in the last
60 s]``). No traceback: callers pass the exception's text, since the cause is known. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

DEFAULT_INTERVAL = 60.0


class Throttle:
    """Counts occurrences per key; :meth:`log` emits at most one line per key per ``interval`` seconds."""

    def __init__(self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._state: dict[Hashable, tuple[float, int]] = {}  # key -> (when the last line was logged, held back)

    def log(self, logger: logging.Logger, level: int, key: Hashable, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` unless a line for ``key`` went out less than ``interval`` s ago; True if logged."""
        now = self.clock()
        with self._lock:
            last, held = self._state.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._state[key] = (last, held + 1)
                return False
            self._state[key] = (now, 0)
        if held:
            msg = f"{msg} [%d more like it in the last %g s]"
            args = (*args, held, self.interval)
        logger.log(level, msg, *args)
        return True


_default = Throttle()


def log_throttled(logger: logging.Logger, level: int, key: Hashable, msg: str, *args: Any) -> bool:
    """Log through the process-wide :class:`Throttle` (60 s per key); the key is per logger."""
    return _default.log(logger, level, (logger.name, key), msg, *args)
