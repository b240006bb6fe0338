"""The sighting writer's cost per batch: main's writer (one peewee-built upsert per row) against this tree's
(one prepared statement, executemany, plus the first-contact read-back), on SQLite and, when
AUTOPROV_TEST_POSTGRESQL_URL is set, PostgreSQL. Interleaved rounds (A B A B ...), the medians printed.

    .venv/bin/python benchmarks/sighting_writer_bench.py [--phones 2000] [--rounds 5] [--base main]

Main's writer is read from git (``git show <base>:core/autoprov/sightings.py``) and run on this tree's
schema; each round writes ``--phones`` new sightings (inserts), then the same phones again (updates).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "core"))

from autoprov.config import Settings  # noqa: E402
from autoprov.plugins import build_plugin_manager  # noqa: E402
from autoprov.site import Site  # noqa: E402

UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"


def old_writer(base: str) -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{base}:core/autoprov/sightings.py"], check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("old_sightings")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{base}:sightings.py", "exec"), module.__dict__)
    return module


def one_round(buffer, n: int, offset: int) -> tuple[float, float]:
    """Seconds to flush n inserts, then n updates of the same phones."""
    times = []
    for _ in range(2):
        for i in range(n):
            buffer.record(f"0004f2{offset + i:06x}", UA, "polycom_ip330", "3.3.2.0413", "10.1.2.3",
                          f"/prov/polycom_ip330/0004f2{offset + i:06x}-phone.cfg", None, "etag-1")
        start = time.perf_counter()
        assert buffer.flush() == n
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def bench(url: str, label: str, n: int, rounds: int, old: types.ModuleType) -> None:
    settings = Settings()
    settings.database.url = url
    site = Site(settings, build_plugin_manager())
    site.init_database()
    writers = {
        "main (peewee upsert per row)": old.SightingBuffer(site.db, 3600, 10**6),
        "this tree (prepared, executemany)": site.sightings,
    }
    site.sightings.interval = 3600
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in writers}
    offset = 0
    for _ in range(rounds):
        for name, writer in writers.items():
            offset += n
            results[name].append(one_round(writer, n, offset))
    print(f"\n{label}: {n} sightings per batch, {rounds} interleaved rounds (median; ms per 1,000 sightings)")
    for name, times in results.items():
        ins = statistics.median(t[0] for t in times) * 1000 / n * 1000
        upd = statistics.median(t[1] for t in times) * 1000 / n * 1000
        print(f"  {name:36} insert {ins:7.1f} ms   update {upd:7.1f} ms")
    for writer in writers.values():
        writer.close()
    site.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", default="main")
    args = parser.parse_args()
    old = old_writer(args.base)
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", "SQLite", args.phones, args.rounds, old)
    pg = os.environ.get("AUTOPROV_TEST_POSTGRESQL_URL")
    if pg:
        import psycopg2

        name = f"autoprov_bench_{uuid.uuid4().hex[:8]}"
        conn = psycopg2.connect(pg)
        conn.autocommit = True
        conn.cursor().execute(f'CREATE DATABASE "{name}"')
        try:
            bench(f"{pg.rsplit('/', 1)[0]}/{name}", "PostgreSQL", args.phones, args.rounds, old)
        finally:
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()


if __name__ == "__main__":
    main()
