"""Lines per second and peak memory for one 50 MB log upload, through the WSGI app as a phone sends it.

    .venv/bin/python benchmarks/log_ingest_bench.py                      # 50 MB, temporary SQLite database
    .venv/bin/python benchmarks/log_ingest_bench.py --megabytes 10
    .venv/bin/python benchmarks/log_ingest_bench.py --database-url postgresql://postgres@127.0.0.1/bench
    .venv/bin/python benchmarks/log_ingest_bench.py --url http://127.0.0.1:8080   # a running server (loopback)

The log is realistic: MMDDHHMMSS and since-boot stamps, all modules and levels, messages of varied length and
a few lines that do not parse. It is written to a temporary file first and streamed from there, so the
body itself is never in the benchmark's memory. Two runs on fresh databases: one timed, one under
tracemalloc (peak Python allocations); the peak RSS of the process is reported too.
"""

from __future__ import annotations

import argparse
import http.client
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit

import peewee
from werkzeug.test import Client, EnvironBuilder

from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site
from autoprov.web import create_app

MODULES = ("sip  ", "lldp ", "so   ", "app1 ", "cfg  ", "dns  ", "ethf ", "copy ", "curl ", "res  ")
MESSAGES = (
    "Ignoring corrupt LLDP packet.",
    "Registration of line 1 to sip:1001@pbx.example.test succeeded, expires 3600",
    "DNS lookup of pbx.example.test returned 192.0.2.10",
    "Call 0x1f3a: state change from ALERTING to CONNECTED (codec G.722, ptime 20)",
    "cfgParamsMonitor: up.backlight.idleIntensity changed",
    "Retrieving file 0004f2aabbcc-directory.xml from http://prov.example.test/prov/polycom_ip330/",
    "SoundPoint IP: free heap 1843200 bytes, largest block 524288",
)
MAC = "0004f2aabbcc"
MODEL = "polycom_ip330"
USER_AGENT = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413 Type/Application"


def write_log(path: Path, size: int) -> int:
    """About ``size`` bytes of log; returns the number of lines."""
    rng = random.Random(330)
    lines = written = 0
    with path.open("wb") as f:
        while written < size:
            n = lines
            if n % 500 == 0:
                line = f"garbage without fields {n}\n"
            elif n % 97 == 0:
                line = f"{n // 1000:06d}.{n % 1000:03d}|so   |*|00|boot step {n}\n"
            else:
                s = n % 86400
                stamp = f"1015{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"
                line = f"{stamp}|{MODULES[n % 10]}|{rng.randint(0, 6)}|{n % 3:02d}|{rng.choice(MESSAGES)} #{n}\n"
            data = line.encode()
            f.write(data)
            written += len(data)
            lines += 1
    return lines


def site_for(database_url: str | None, tmp: Path, name: str) -> Site:
    settings = Settings()
    settings.database.url = database_url or f"sqlite:///{tmp}/{name}.db"
    settings.firmware.root = str(tmp / "firmware")
    settings.uploads.max_log_bytes = 1 << 30
    site = Site(settings, build_plugin_manager(load_entry_points=True))
    site.init_database()
    return site


def upload_in_process(site: Site, path: Path) -> tuple[int, str]:
    client = Client(create_app(site))
    with path.open("rb") as body:
        environ = EnvironBuilder(
            path=f"/prov/{MODEL}/logs/{MAC}-app.log", method="PUT", input_stream=body,
            content_length=path.stat().st_size, headers={"User-Agent": USER_AGENT},
        ).get_environ()
        response = client.open(environ)
    return response.status_code, response.get_data(as_text=True).strip()


def upload_to_server(url: str, path: Path) -> tuple[int, str]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("--url must be a loopback address")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=600)
    with path.open("rb") as body:
        conn.request("PUT", f"/prov/{MODEL}/logs/{MAC}-app.log", body=body,
                     headers={"User-Agent": USER_AGENT, "Content-Length": str(path.stat().st_size)})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace").strip()


def measure_queries(site: Site, copies: int) -> None:
    """Copy the uploaded phone's lines to ``copies`` more phones, add a small phone, then time the queries
    `autoprov logs show` makes: one phone among millions of lines must stay fast (the (mac, id) indexes)."""
    from autoprov.phonefiles.logquery import query_lines
    from autoprov.phonefiles.tables import LogLine

    columns = [f.column_name for f in LogLine._meta.sorted_fields if f.name != "id"]
    chosen = ", ".join("%s" if c == "mac" else c for c in columns)
    with site.db.connection_context():
        start = time.perf_counter()
        for i in range(copies):
            site.db.execute_sql(
                f"INSERT INTO log_line ({', '.join(columns)}) SELECT {chosen} FROM log_line WHERE mac = %s"
                .replace("%s", site.db.param),
                (f"0004f2ff{i:04x}", MAC),
            )
        small = "0004f2000001"
        site.db.execute_sql(
            f"INSERT INTO log_line ({', '.join(columns)}) SELECT {chosen} FROM log_line WHERE mac = %s"
            f" AND id IN (SELECT id FROM log_line WHERE mac = %s ORDER BY id LIMIT 100)".replace("%s", site.db.param),
            (small, MAC, MAC),
        )
        if isinstance(site.db, peewee.PostgresqlDatabase):
            site.db.execute_sql("ANALYZE log_line")  # what autovacuum does after a bulk load: current statistics
        total = LogLine.select().count()
        print(f"queries: {total:,} lines of {copies + 2} phones (copied in {time.perf_counter() - start:.1f} s)")
        cases = [
            ("newest 100 lines of a big phone", lambda: list(query_lines(MAC, limit=100))),
            ("newest 100 app.log lines, level >= 4", lambda: list(query_lines(MAC, "app", 4, limit=100))),
            ("all lines of a small phone", lambda: list(query_lines(small))),
            ("grep 'Registration' on a big phone", lambda: list(query_lines(MAC, grep="Registration", limit=100))),
        ]
        for label, run in cases:
            run()  # warm the cache, as a second look would
            begin = time.perf_counter()
            rows = run()
            print(f"  {label}: {len(rows)} rows in {(time.perf_counter() - begin) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--database-url", help="An empty database to use (default: a temporary SQLite file).")
    parser.add_argument("--url", help="Upload to a running autoprov on loopback instead of in-process.")
    parser.add_argument("--copies", type=int, default=7, help="Phones the upload is copied to before querying.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        log = tmp / "app.log"
        size = int(args.megabytes * 1024 * 1024)
        lines = write_log(log, size)
        print(f"log: {log.stat().st_size / 1e6:.1f} MB, {lines} lines")

        if args.url:
            start = time.perf_counter()
            status, text = upload_to_server(args.url, log)
            elapsed = time.perf_counter() - start
            print(f"server: HTTP {status} {text}")
            print(f"ingest: {elapsed:.2f} s, {lines / elapsed:,.0f} lines/s, {size / elapsed / 1e6:.1f} MB/s")
            return

        site = site_for(args.database_url, tmp, "timed")
        start = time.perf_counter()
        status, text = upload_in_process(site, log)
        elapsed = time.perf_counter() - start
        print(f"timed run: HTTP {status} {text}")
        print(f"ingest: {elapsed:.2f} s, {lines / elapsed:,.0f} lines/s, {size / elapsed / 1e6:.1f} MB/s")
        measure_queries(site, args.copies)
        if args.database_url:
            print("(tracemalloc run skipped: it needs a second empty database)")
        else:
            site = site_for(None, tmp, "traced")
            tracemalloc.start()
            status, text = upload_in_process(site, log)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"traced run: HTTP {status}; peak Python allocations {peak / 1e6:.1f} MB")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")


if __name__ == "__main__":
    main()
