"""Benchmark a real ``autoprov serve``: phone configs per second and worker memory while streaming firmware,
or a boot storm of phones walking the whole Polycom boot sequence.

    .venv/bin/python benchmarks/provisioning_bench.py [--phones 10000] [--requests 4000] [--clients 8]
    .venv/bin/python benchmarks/provisioning_bench.py --boot-storm [--phones 2000] [--window 60]
        [--clients 200] [--listed 1000] [--firmware-kb 256] [--database-url postgresql://...]

Both start ``autoprov serve`` (its configured defaults: Granian, 2 workers x 8 threads) on
127.0.0.1 against a fresh database filled with ``autoprov init`` and ``autoprov import``: SQLite in a
temporary directory, or with --database-url a new database made on that PostgreSQL server for the run and
dropped after it. autoprov opens one database connection per request (no pool).

Default mode: fetches random phones' configs from --clients threads, then downloads a large sparse firmware
image and reports each worker's peak resident memory (VmHWM) before and after: streaming keeps it flat.

--boot-storm: --phones factory-fresh IP 330s (every other one with two lines; --listed of the extensions in
the company directory) are switched on at random moments within --window seconds, and each walks the whole
boot sequence on one kept-alive connection, one request after the other, as tests/test_boot.py and
docs/uploads.md describe it:

    at the root:   <mac>.cfg (404), 000000000000.cfg, prov/<model>/device.cfg; then, rebooted onto its path:
    /prov/<model>/ <mac>.cfg (404), 000000000000.cfg, bootrom.ld, sip.ld (--firmware-kb each),
                   <mac>-phone.cfg, site.cfg, overrides/<mac>-phone.cfg (404), overrides/<mac>-web.cfg (404),
                   contacts/<mac>-directory.xml, PUT logs/<mac>-boot.log, HEAD logs/<mac>-app.log (404),
                   PUT logs/<mac>-app.log

At most --clients phones boot at once: a phone switched on while all are busy waits for one (reported apart
from the requests' times, which run from sending a request to its whole answer). It reports p50/p99/max per
file and every answer that is not the one expected, then checks in the database that every log line
uploaded was stored. Bounded by --max-seconds.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"
MODEL = "polycom_ip330"
LOG_LINES = 40  # per uploaded log file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@contextmanager
def database(url: str | None, tmp: Path) -> Iterator[str]:
    """SQLite in ``tmp``, or a new database on the PostgreSQL server of ``url``, dropped at the end."""
    if not url:
        yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg2

    name = f"autoprov_bench_{uuid.uuid4().hex[:12]}"

    def admin(sql: str) -> None:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.close()

    admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    """A configured site with N phones, and ``autoprov serve`` on it while the ``with`` lasts."""

    def __init__(self, tmp: Path, url: str, phones: int, two_lines: str, listed: int, http_server: str) -> None:
        self.tmp = tmp
        self.url = url
        self.port = free_port()
        config = tmp / "autoprov.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n[http]\nhost = "127.0.0.1"\nport = {self.port}\nserver = "{http_server}"\n'
            f'public_url = "http://127.0.0.1:{self.port}"\n[firmware]\nroot = "{tmp}/fw"\n'
        )
        self.env = dict(os.environ, AUTOPROV_CONFIG=str(config))
        self.run = [sys.executable, "-m", "autoprov"]
        subprocess.run([*self.run, "init"], env=self.env, check=True, capture_output=True)
        csv = tmp / "phones.csv"
        self.lines: dict[str, int] = {}
        self.listed = 0
        with csv.open("w") as fh:
            fh.write("extension,secret,first_name,last_name,directory,mac,model\n")
            ext = 100000
            for i in range(phones):
                mac = f"0004f2{i:06x}"
                self.lines[mac] = 2 if two_lines == "every other" and i % 2 == 0 else 1
                for _ in range(self.lines[mac]):
                    listed_ = "yes" if ext - 100000 < listed else "no"
                    self.listed += listed_ == "yes"
                    fh.write(f"{ext},secret{ext},First{ext},Last{ext},{listed_},{mac},{MODEL}\n")
                    ext += 1
        t0 = time.perf_counter()
        subprocess.run([*self.run, "import", str(csv)], env=self.env, check=True, capture_output=True)
        print(f"import: {phones} phones in {time.perf_counter() - t0:.1f} s", flush=True)

    def firmware(self, name: str, size: int) -> None:
        image = self.tmp / "fw" / MODEL / name
        image.parent.mkdir(parents=True, exist_ok=True)
        with image.open("wb") as fh:  # sparse: costs no disk, but every byte is read and sent
            fh.truncate(size)

    def __enter__(self) -> Server:
        self.log = self.tmp / "serve.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*self.run, "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"autoprov serve exited: {self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", f"/prov/{MODEL}/site.cfg", headers={"User-Agent": UA})
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("autoprov serve did not answer within 60 s")

    def __exit__(self, *exc: object) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=40)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- default mode: configs per second, then firmware memory ---------------------------------------------
def rate(server: Server, args: argparse.Namespace) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = args.requests // args.clients
    macs = list(server.lines)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        mine = []
        for _ in range(per_client):
            mac = random.choice(macs)
            start = time.perf_counter()
            conn.request("GET", f"/prov/{MODEL}/{mac}-phone.cfg", headers={"User-Agent": UA})
            resp = conn.getresponse()
            body = resp.read()
            mine.append(time.perf_counter() - start)
            assert resp.status == 200 and b"reg.1.auth.password" in body, resp.status
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    p50, p99 = statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    print(f"phone configs: {len(latencies)} requests, {args.clients} clients: {len(latencies) / elapsed:.0f} req/s, "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")

    before = {pid: vm_hwm_kib(pid) for pid in workers(server.proc.pid)}
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    t0 = time.perf_counter()
    conn.request("GET", f"/prov/{MODEL}/sip.ld", headers={"User-Agent": UA})
    resp = conn.getresponse()
    total = 0
    while chunk := resp.read(1 << 20):
        total += len(chunk)
    elapsed = time.perf_counter() - t0
    after = {pid: vm_hwm_kib(pid) for pid in workers(server.proc.pid)}
    print(f"firmware: {total / 2**20:.0f} MiB in {elapsed:.2f} s ({total / 2**20 / elapsed:.0f} MiB/s)")
    for pid in sorted(after):
        was, now = before.get(pid, 0) / 1024, after[pid] / 1024
        print(f"  worker {pid}: peak RSS {was:.1f} MiB before, {now:.1f} MiB after")


# --- boot storm ---------------------------------------------------------------------------------------------
def boot_sequence(mac: str) -> list[tuple[str, str, str, bytes | None, int]]:
    """(file type, method, path, body, expected status) of one factory-fresh phone's boot."""
    p = f"/prov/{MODEL}"
    log = "".join(f"1130{i // 60:02d}{i % 60:02d}00|so   |4|00|boot step {i} of {mac}\n" for i in range(LOG_LINES))
    return [
        ("root <mac>.cfg (404)", "GET", f"/{mac}.cfg", None, 404),
        ("root 000000000000.cfg", "GET", "/000000000000.cfg", None, 200),
        ("device.cfg", "GET", f"{p}/device.cfg", None, 200),
        ("<mac>.cfg (404)", "GET", f"{p}/{mac}.cfg", None, 404),
        ("000000000000.cfg", "GET", f"{p}/000000000000.cfg", None, 200),
        ("bootrom.ld", "GET", f"{p}/bootrom.ld", None, 200),
        ("sip.ld", "GET", f"{p}/sip.ld", None, 200),
        ("<mac>-phone.cfg", "GET", f"{p}/{mac}-phone.cfg", None, 200),
        ("site.cfg", "GET", f"{p}/site.cfg", None, 200),
        ("overrides phone.cfg (404)", "GET", f"{p}/overrides/{mac}-phone.cfg", None, 404),
        ("overrides web.cfg (404)", "GET", f"{p}/overrides/{mac}-web.cfg", None, 404),
        ("contacts directory.xml", "GET", f"{p}/contacts/{mac}-directory.xml", None, 200),
        ("PUT boot.log", "PUT", f"{p}/logs/{mac}-boot.log", log.encode(), 200),
        ("HEAD app.log (404)", "HEAD", f"{p}/logs/{mac}-app.log", None, 404),
        ("PUT app.log", "PUT", f"{p}/logs/{mac}-app.log", log.replace("boot", "app").encode(), 200),
    ]


def storm(server: Server, args: argparse.Namespace) -> None:
    macs = list(server.lines)
    rng = random.Random(8)
    start = time.monotonic() + 1.0
    schedule = sorted((start + rng.uniform(0, args.window), mac) for mac in macs)
    deadline = start + args.max_seconds
    times: dict[str, list[float]] = {}
    errors: list[str] = []
    done: list[str] = []
    waits: list[float] = []  # from a phone's moment to switch on to a client thread free to boot it
    uploaded = [0]  # log lines in the uploads answered 200
    lock = threading.Lock()
    queue = iter(schedule)

    def phone() -> None:
        while time.monotonic() < deadline:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            due, mac = item
            time.sleep(max(0.0, due - time.monotonic()))
            with lock:
                waits.append(time.monotonic() - due)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                for kind, method, path, body, expected in boot_sequence(mac):
                    if time.monotonic() > deadline:
                        return
                    t0 = time.monotonic()
                    try:
                        conn.request(method, path, body=body, headers={"User-Agent": UA})
                        resp = conn.getresponse()
                        resp.read()
                        status = resp.status
                        if resp.will_close:
                            conn.close()
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        status = f"{type(exc).__name__}: {exc}"
                    elapsed = time.monotonic() - t0
                    with lock:
                        times.setdefault(kind, []).append(elapsed)
                        if status != expected:
                            errors.append(f"{mac} {method} {path}: {status}, expected {expected}")
                        elif method == "PUT":
                            uploaded[0] += LOG_LINES
                with lock:
                    done.append(mac)
            finally:
                conn.close()

    threads = [threading.Thread(target=phone, daemon=True) for _ in range(min(args.clients, len(macs)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline + 35 - time.monotonic()))
    took = time.monotonic() - start
    print(f"\nboot storm: {len(done)} of {len(macs)} phones booted in {took:.1f} s ({server.url.split(':')[0]}; "
          f"switched on within {args.window:g} s, at most {args.clients} at once; {server.listed} extensions in the "
          f"directory; firmware images {args.firmware_kb} KiB)\n")
    waits.sort()
    print(f"phones that waited for a free client thread (all {args.clients} busy): "
          f"{sum(w > 0.05 for w in waits)}; wait p50 {statistics.median(waits):.2f} s, "
          f"p99 {waits[min(len(waits) - 1, int(len(waits) * 0.99))]:.2f} s, max {waits[-1]:.2f} s\n")
    print("| file | requests | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for kind, _, _, _, _ in boot_sequence("000000000000"):
        ts = sorted(times.get(kind, []))
        if ts:
            p99 = ts[min(len(ts) - 1, int(len(ts) * 0.99))]
            print(f"| {kind} | {len(ts)} | {statistics.median(ts) * 1000:.0f} | {p99 * 1000:.0f} | "
                  f"{ts[-1] * 1000:.0f} |")
    print(f"\nanswers not the one expected: {len(errors)}")
    for e in errors[:10]:
        print(f"  {e}")

    os.environ["AUTOPROV_CONFIG"] = server.env["AUTOPROV_CONFIG"]
    from autoprov.db import connection, open_database
    from autoprov.phonefiles.tables import LogLine

    with connection(open_database(server.url)):
        stored = LogLine.select().count()
    print(f"log lines stored: {stored} of the {uploaded[0]} in uploads answered 200"
          + ("" if stored == uploaded[0] else "  <-- MISMATCH"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boot-storm", action="store_true", help="walk the whole boot sequence (see above)")
    ap.add_argument("--phones", type=int, help="default 10,000; 2,000 with --boot-storm")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--clients", type=int, help="client threads: default 8; 200 with --boot-storm")
    ap.add_argument("--image-mb", type=int, default=1024, help="firmware image of the default mode")
    ap.add_argument("--window", type=float, default=60.0, help="--boot-storm: seconds over which phones start")
    ap.add_argument("--listed", type=int, default=1000, help="--boot-storm: extensions in the directory")
    ap.add_argument("--firmware-kb", type=int, default=256, help="--boot-storm: size of bootrom.ld and sip.ld")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="--boot-storm: stop after this long")
    ap.add_argument("--server", default="granian", choices=["granian", "gunicorn"], help="[http] server")
    ap.add_argument("--database-url", help="postgresql://... server to make the run's database on; else SQLite")
    args = ap.parse_args()
    args.phones = args.phones or (2000 if args.boot_storm else 10000)
    args.clients = args.clients or (200 if args.boot_storm else 8)

    with tempfile.TemporaryDirectory(prefix="autoprov-bench-") as tmp_name, database(
        args.database_url, Path(tmp_name)
    ) as url:
        tmp = Path(tmp_name)
        server = Server(tmp, url, args.phones, "every other" if args.boot_storm else "none",
                        args.listed if args.boot_storm else args.phones, args.server)
        if args.boot_storm:
            server.firmware("bootrom.ld", args.firmware_kb * 1024)
            server.firmware("sip.ld", args.firmware_kb * 1024)
        else:
            server.firmware("sip.ld", args.image_mb * 1024 * 1024)
        with server:
            (storm if args.boot_storm else rate)(server, args)


if __name__ == "__main__":
    main()
