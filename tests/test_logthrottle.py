"""One log line per cause per interval, with the count of those held back."""

from __future__ import annotations

import logging

from autoprov.logthrottle import Throttle


def test_one_line_per_key_per_interval_with_a_count(caplog):
    now = [100.0]
    throttle = Throttle(interval=60, clock=lambda: now[0])
    log = logging.getLogger("autoprov.test.throttle")
    caplog.set_level(logging.WARNING, logger=log.name)
    logged = [throttle.log(log, logging.ERROR, "db", "database unavailable: %s", f"try {i}") for i in range(50)]
    assert logged == [True] + [False] * 49
    assert throttle.log(log, logging.WARNING, "disk", "disk full") is True  # another cause: its own line
    now[0] += 59.9
    assert throttle.log(log, logging.ERROR, "db", "database unavailable: %s", "still") is False
    now[0] += 0.2
    assert throttle.log(log, logging.ERROR, "db", "database unavailable: %s", "later") is True
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable: try 0",
        "disk full",
        "database unavailable: later [50 more like it in the last 60 s]",
    ]
    assert all(r.exc_info is None for r in caplog.records)  # an expected outage: no traceback
