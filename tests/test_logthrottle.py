"""One log line per cause per interval, with the count of those held back."""

from __future__ import annotations

import logging
import types

from autoprov import logthrottle
from autoprov.logthrottle import throttled


def test_one_line_per_cause_per_interval_with_a_count(caplog, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(logthrottle, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(logthrottle, "_last", {})
    log = logging.getLogger("autoprov.test.throttle")
    caplog.set_level(logging.WARNING, logger=log.name)
    for i in range(50):
        throttled(log, "db", logging.ERROR, "database unavailable: %s", f"try {i}")
    throttled(log, "disk", logging.WARNING, "disk full")  # another cause: its own line
    now[0] += logthrottle.INTERVAL - 0.1
    throttled(log, "db", logging.ERROR, "database unavailable: %s", "still")
    now[0] += 0.2
    throttled(log, "db", logging.ERROR, "database unavailable: %s", "later")
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable: try 0",
        "disk full",
        "database unavailable: later (and 50 more like it in the last 60 s)",
    ]
    assert all(r.exc_info is None for r in caplog.records)  # an expected outage: no traceback
