"""Benchmark: does the admin UI stay responsive while a large CSV is checked in the background? (issue 12)

Run: ``.venv/bin/python benchmarks/import_progress_bench.py [--rows 20000] [--rounds 3]``. Starts a real
``autoprov serve`` (gunicorn, 2 workers x 4 threads, SQLite) on a free loopback port, logs in, then for each
round, interleaved: uploads a CSV of N rows ("Check"), and while its job runs times GET /admin/phones and a
phone's config file (``/prov/polycom_ip330/<mac>-phone.cfg``) back to back; then times the same requests with
no job running. Prints the upload's answer time (before issue 12's progress work the POST answered only when
the whole check was done: about the job's time), the job's time, and median / 95th percentile latencies with
and without a job. The machine is shared and noisy: compare figures of one run, not against fixed numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from harness import free_port, sqlite_site

from autoprov.adminui.users import create_user
from autoprov.provisioning.csv_import import import_text

UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"
PASSWORD = "benchmark password"


def timed(session: requests.Session, url: str, **kw: object) -> float:
    t = time.perf_counter()
    r = session.get(url, timeout=60, **kw)
    assert r.status_code == 200, (url, r.status_code)
    return time.perf_counter() - t


def summary(values: list[float]) -> str:
    if not values:
        return "no requests"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"n={len(values)}, median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="import-progress-bench-"))
    port = free_port()
    site = sqlite_site(tmp)
    settings = site.settings
    # A fleet already there (what the pages and the phone ask for), and an admin.
    import_text(site, "extension,secret,mac,model\n" + "".join(
        f"{1000 + i},pw-{i:08d},0004f2{i:06x},polycom_ip330\n" for i in range(2000)))
    with site.db.connection_context():
        create_user("bench", PASSWORD)
    config = tmp / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{settings.database.url}"\n[http]\nhost = "127.0.0.1"\nport = {port}\n'
                      f'workers = 2\nthreads = 4\nshutdown_timeout = 0\n[sip]\nserver = "pbx.example.test"\n'
                      f'[firmware]\nroot = "{settings.firmware.root}"\n')
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - open for the server's whole life
    server = subprocess.Popen([sys.executable, "-m", "autoprov", "serve"], stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, AUTOPROV_CONFIG=str(config)), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.1)
        s = requests.Session()
        token = re.findall(r'name="csrf" value="([^"]+)"', s.get(base + "/admin/login").text)[-1]
        s.post(base + "/admin/login", data={"csrf": token, "username": "bench", "password": PASSWORD})
        token = re.findall(r'name="csrf" value="([^"]+)"', s.get(base + "/admin/import").text)[-1]
        phone = requests.Session()
        rows = "extension,secret,first_name,mac,model\n" + "".join(
            f"{100000 + i},pw-{i:08d},User {i},0004f3{i:06x},polycom_ip330\n" for i in range(args.rows))
        busy = {"phones": [], "cfg": []}
        idle = {"phones": [], "cfg": []}
        posts, jobs = [], []
        for round_ in range(args.rounds):
            t = time.perf_counter()
            r = s.post(base + "/admin/import", data={"csrf": token, "action": "check"},
                       files={"file": ("bench.csv", rows.encode(), "text/csv")}, allow_redirects=False)
            posts.append(time.perf_counter() - t)
            assert r.status_code == 303, r.text[:500]
            job = base + r.headers["Location"]
            count = 0
            while s.get(job + "/status").json()["running"]:
                busy["phones"].append(timed(s, base + "/admin/phones"))
                busy["cfg"].append(timed(phone, f"{base}/prov/polycom_ip330/0004f2{count % 2000:06x}-phone.cfg",
                                         headers={"User-Agent": UA}))
                count += 1
            jobs.append(time.perf_counter() - t)
            for i in range(count):
                idle["phones"].append(timed(s, base + "/admin/phones"))
                idle["cfg"].append(timed(phone, f"{base}/prov/polycom_ip330/0004f2{i % 2000:06x}-phone.cfg",
                                         headers={"User-Agent": UA}))
            print(f"round {round_ + 1}: upload answered in {posts[-1]:.2f} s, job done in {jobs[-1]:.2f} s, "
                  f"{count} request pairs during it", flush=True)
        print(f"\n{args.rows} rows, {args.rounds} rounds")
        print(f"upload POST answered: median {statistics.median(posts):.2f} s; the check: median "
              f"{statistics.median(jobs):.2f} s")
        print(f"GET /admin/phones  during a job: {summary(busy['phones'])}; idle: {summary(idle['phones'])}")
        print(f"GET a phone config during a job: {summary(busy['cfg'])}; idle: {summary(idle['cfg'])}")
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    main()
