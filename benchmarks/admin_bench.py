"""Benchmark: the admin UI's list pages on a large fleet (in-process WSGI, SQLite).

Run: ``.venv/bin/python benchmarks/admin_bench.py [--phones 20000] [--rounds 5]``. Builds a database of N
phones (one extension each, imported with the CSV import), one sighting per phone for 90% of them (10% with a
problem), logs in, then times each page ``--rounds`` times, interleaved, and prints the median and the worst.
The machine is shared and noisy: compare runs side by side, not against a fixed number.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time

from harness import sqlite_site
from werkzeug.test import Client

from autoprov.adminui.users import create_user
from autoprov.provisioning.csv_import import import_text
from autoprov.site import Site
from autoprov.tables import Sighting, utcnow
from autoprov.web import create_app

PAGES = ("/admin/phones", "/admin/phones?seen=never", "/admin/phones?problem=1", "/admin/phones?q=0004f2000f",
         "/admin/extensions", "/admin/sightings", "/admin/fleet", "/admin/phones/0004f2000001")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phones", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="admin-bench-")
    site = sqlite_site(tmp)
    rows = ["extension,secret,first_name,mac,model"]
    rows += [f"{10000 + i},pw-{i:08d},User {i},0004f2{i:06x},polycom_ip330" for i in range(args.phones)]
    started = time.perf_counter()
    import_text(site, "\n".join(rows) + "\n")
    with site.db.connection_context():
        now = utcnow()
        _bulk(site, args.phones, now)
        create_user("bench", "benchmark password")
    print(f"{args.phones} phones ready in {time.perf_counter() - started:.1f}s")
    client = Client(create_app(site))
    page = client.get("/admin/login")
    token = re.findall(r'name="csrf" value="([^"]+)"', page.text)[-1]
    assert client.post("/admin/login", data={"csrf": token, "username": "bench",
                                             "password": "benchmark password"}).status_code == 303
    times: dict[str, list[float]] = {p: [] for p in PAGES}
    for _ in range(args.rounds):
        for path in PAGES:
            t = time.perf_counter()
            r = client.get(path)
            times[path].append(time.perf_counter() - t)
            assert r.status_code == 200, (path, r.status_code)
    for path in PAGES:
        median, worst = statistics.median(times[path]) * 1000, max(times[path]) * 1000
        print(f"{path:40} median {median:7.1f} ms  worst {worst:7.1f} ms")


def _bulk(site: Site, phones: int, now) -> None:
    batch = []
    for i in range(phones):
        if i % 10 == 0:
            continue  # never seen
        batch.append((f"0004f2{i:06x}", "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413", "polycom_ip330",
                      "3.3.2.0413", "10.0.0.1", "/", "a problem" if i % 10 == 1 else "", now, now))
        if len(batch) == 5000 or i == phones - 1:
            with site.db.atomic():
                Sighting.insert_many(batch, fields=[Sighting.mac, Sighting.user_agent, Sighting.model,
                                                    Sighting.firmware, Sighting.ip, Sighting.last_path,
                                                    Sighting.problem, Sighting.first_seen,
                                                    Sighting.last_seen]).execute()
            batch = []


if __name__ == "__main__":
    main()
