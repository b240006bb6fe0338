"""Benchmark: the production set-up (Apache with mod_wsgi, deploy/apache) under slow clients, and firmware rates.

    .venv/bin/python benchmarks/apache_bench.py slow [--idle 1000] [--slowloris 1000] [--seconds 30]
                                                     [--servers apache,debian,serve]
    .venv/bin/python benchmarks/apache_bench.py firmware [--mib 20] [--rounds 3] [--seconds 10]

slow: for each server in turn (Apache as deploy/apache configures it; the same Apache with Debian's default
event MPM and mod_reqtimeout settings; ``autoprov serve`` with its defaults, Granian 2 workers x 8 threads), 4 phone
threads fetch random phones' configs (a new connection each, 15 s timeout), first alone, then while
--idle connections that send nothing and --slowloris connections that send half a request (then one header
line every 2 s) are held open; the attacker reopens whatever the server closes, for --seconds. Prints what
the phones got: answered, failed, latency p50/p99/max, and the server's memory.

firmware: ``wrk -t2 -c8`` on a --mib image, interleaved rounds of: Apache serving the file statically;
autoprov under Apache handing it to Apache ([firmware] send_with = "apache"); autoprov streaming it from the
mod_wsgi daemon (send_with = "app"); ``autoprov serve`` streaming it. Besides GB/s, the CPU time the server's
processes spent per GB sent (less sensitive to a busy machine than the rate).

Loopback only. Needs apache2, libapache2-mod-wsgi-py3 and wrk (Debian packages).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.apache: the test's Apache

from tests.apache import Apache, free_port  # noqa: E402

UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"
PHONES = 200
# Debian 12's own settings (mods-available/mpm_event.conf, reqtimeout.conf; apache2.conf's Timeout).
DEBIAN_DEFAULTS = """\
WSGIRestrictEmbedded On
<IfModule mpm_event_module>
    StartServers 2
    MinSpareThreads 25
    MaxSpareThreads 75
    ThreadLimit 64
    ThreadsPerChild 25
    MaxRequestWorkers 150
    MaxConnectionsPerChild 0
</IfModule>
RequestReadTimeout header=20-40,minrate=500
RequestReadTimeout body=10,minrate=500
Timeout 300
"""


def mac(i: int) -> str:
    return f"0004f2{i:06x}"


def populate(server: Apache) -> None:
    server.autoprov("init")
    server.autoprov("import", str(phones_csv(server.root)))


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (their threads included)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,pgid="], capture_output=True, text=True).stdout
    pgid = os.getpgid(root)
    return [int(p) for p, g in (line.split() for line in out.splitlines()) if int(g) == pgid]


class Phones:
    """Phone threads fetching configs; each result is (time, latency or None for a failure, status)."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port, self.stop = port, threading.Event()
        self.results: list[tuple[float, float | None, str]] = []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        rng = random.Random()
        while not self.stop.is_set():
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                conn.request("GET", f"/prov/polycom_ip330/{mac(rng.randrange(PHONES))}-phone.cfg",
                             headers={"User-Agent": UA})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
                self.results.append((started, time.monotonic() - started if ok else None, str(r.status)))
            except OSError as exc:
                self.results.append((started, None, type(exc).__name__))
            finally:
                conn.close()

    def window(self, seconds: float) -> list[tuple[float, float | None, str]]:
        begin = time.monotonic()
        count = len(self.results)
        self.stop.clear()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(len(self.threads))]
        for t in self.threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in self.threads:
            t.join(timeout=20)
        return [r for r in self.results[count:] if r[0] >= begin]


def summary(results: list[tuple[float, float | None, str]]) -> str:
    ok = sorted(lat * 1000 for _, lat, _ in results if lat is not None)
    failed = [status for _, lat, status in results if lat is None]
    if not ok:
        return f"answered 0, failed {len(failed)} ({', '.join(sorted(set(failed)))})"
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))]
    kinds = f" ({', '.join(sorted(set(failed)))})" if failed else ""
    return (f"answered {len(ok)}, failed {len(failed)}{kinds}, p50 {statistics.median(ok):.1f} ms, "
            f"p99 {p99:.1f} ms, max {ok[-1]:.1f} ms")


class Attacker(threading.Thread):
    """Holds ``idle`` silent and ``slowloris`` half-sent connections open, reopening what the server closes."""

    def __init__(self, port: int, idle: int, slowloris: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.port, self.idle, self.slowloris, self.seconds = port, idle, slowloris, seconds
        self.opened = self.closed_by_server = self.connect_failures = 0
        self.open_now = 0
        self.done = threading.Event()

    def connect(self, slow: bool, sel: selectors.BaseSelector) -> None:
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
            if slow:
                s.sendall(b"GET /prov/polycom_ip330/000000000000.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            self.connect_failures += 1
            s.close()
            return
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [slow, time.monotonic()])
        self.opened += 1
        self.open_now = len(sel.get_map())

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        for i in range(max(self.idle, self.slowloris)):
            if i < self.slowloris:
                self.connect(True, sel)
            if i < self.idle:
                self.connect(False, sel)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            for key, _ in sel.select(timeout=0.2):  # readable: an answer (408) or the server closed it
                slow = key.data[0]
                sel.unregister(key.fileobj)
                key.fileobj.close()
                self.closed_by_server += 1
                self.connect(slow, sel)
            now = time.monotonic()
            for key in list(sel.get_map().values()):
                slow, last = key.data
                if slow and now - last >= 2:
                    try:
                        key.fileobj.send(b"X-Slow: 1\r\n")
                    except OSError:
                        pass
                    key.data[1] = now
            self.open_now = len(sel.get_map())
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        self.done.set()


def phones_csv(directory: Path) -> Path:
    rows = ["extension,secret,mac,model"] + [f"{7000 + i},pw-{i},{mac(i)},polycom_ip330" for i in range(PHONES)]
    csv = directory / "phones.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def serve_autoprov(directory: Path, firmware_root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``autoprov serve`` (this .venv; its defaults: 2 workers x 8 threads) on a database of its own."""
    directory.mkdir()
    port = free_port()
    config = directory / "autoprov.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{directory}/autoprov.db"\n'
                      f'[http]\npublic_url = "http://127.0.0.1:{port}"\nhost = "127.0.0.1"\nport = {port}\n'
                      f'[sip]\nserver = "pbx.example.test"\n[firmware]\nroot = "{firmware_root}"\n')
    env = dict(os.environ, AUTOPROV_CONFIG=str(config))
    for command in (["init"], ["import", str(phones_csv(directory))]):
        subprocess.run([sys.executable, "-m", "autoprov", *command], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "autoprov", "serve"], env=env,
                            stdout=open(directory / "serve.log", "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"autoprov serve did not start: {(directory / 'serve.log').read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # the quick shutdown (TERM waits for [http] shutdown_timeout)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def slow_clients(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = args.idle + args.slowloris + 100
    if hard < needed:
        raise SystemExit(f"need {needed} open files, the limit is {hard}")

    def measure(name: str, port: int, pids) -> None:
        phones = Phones(port)
        alone = phones.window(args.baseline)
        attack = Attacker(port, args.idle, args.slowloris, args.seconds + 5)
        attack.start()
        time.sleep(5)  # let the attacker open its connections
        held = attack.open_now
        under = phones.window(args.seconds)
        memory = rss_mib(pids())
        attack.done.wait(timeout=60)
        print(f"{name}\n  alone:        {summary(alone)}\n"
              f"  under attack: {summary(under)}\n"
              f"  attacker: {held} connections open when phones started, {attack.opened} opened in all, "
              f"{attack.closed_by_server} closed by the server, {attack.connect_failures} connects failed; "
              f"server memory {memory:.0f} MiB", flush=True)

    for key, label, server_conf in (("apache", "Apache, deploy/apache settings", None),
                                    ("debian", "Apache, Debian's default MPM and reqtimeout", DEBIAN_DEFAULTS)):
        if key not in args.servers:
            continue
        apache = Apache(server_conf=server_conf)
        try:
            populate(apache)
            apache.start()
            measure(label, apache.port, lambda a=apache: process_tree(a.proc.pid))
        finally:
            apache.remove()
    if "serve" not in args.servers:
        return
    tmp = Path(tempfile.mkdtemp(prefix="autoprov-bench-serve-"))
    try:
        proc, port = serve_autoprov(tmp / "serve", tmp)
        try:
            measure("autoprov serve (Granian, 2 workers x 8 threads)", port, lambda: process_tree(proc.pid))
        finally:
            stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wrk(url: str, seconds: int) -> tuple[float, float]:
    """(GB/s, requests/s) from ``wrk -t2 -c8``; any error or non-200 answer stops the benchmark."""
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout", "30s", "-H", f"User-Agent: {UA}", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()
    scale = {"B": 1e-9, "KB": 1024 / 1e9, "MB": 1024**2 / 1e9, "GB": 1024**3 / 1e9}[unit]
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"errors from {url}:\n{out}")
    return float(value) * scale, rate


def firmware(args: argparse.Namespace) -> None:
    static_port = free_port()
    handed = Apache(extra="")  # send_with = "apache"
    static = handed.root / "static"
    handed.conf.write_text(handed.conf.read_text() + f"""
Listen 127.0.0.1:{static_port}
<VirtualHost 127.0.0.1:{static_port}>
    DocumentRoot {static}
    <Directory {static}>
        Require all granted
        EnableSendfile On
    </Directory>
</VirtualHost>
""")
    streamed = Apache(send_with="app")
    tmp = Path(tempfile.mkdtemp(prefix="autoprov-bench-fw-"))
    servers = [handed, streamed]
    proc = None
    try:
        for server in servers:
            server.autoprov("init")
        image = os.urandom(args.mib * 1024 * 1024)
        for server in servers:
            (server.firmware / "polycom_ip330" / "sip.ld").write_bytes(image)
        static.mkdir()
        (static / "sip.ld").write_bytes(image)
        for server in servers:
            server.start()
        proc, serve_port = serve_autoprov(tmp / "serve", streamed.firmware)
        targets = {  # name: (URL, the server's processes, whose CPU time a GB costs)
            "A Apache static file": (f"http://127.0.0.1:{static_port}/sip.ld", handed.proc.pid),
            "B autoprov under Apache, send_with=apache": (f"{handed.url}/prov/polycom_ip330/sip.ld", handed.proc.pid),
            "C autoprov under Apache, streamed by the daemon": (f"{streamed.url}/prov/polycom_ip330/sip.ld",
                                                                streamed.proc.pid),
            "D autoprov serve (Granian), streamed": (f"http://127.0.0.1:{serve_port}/prov/polycom_ip330/sip.ld",
                                                      proc.pid),
        }
        for url, _ in targets.values():  # the daemons start Python and import autoprov on their first requests
            wrk(url, 2)
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for round_ in range(1, args.rounds + 1):
            for name, (url, pid) in targets.items():
                before = cpu_seconds(process_tree(pid))
                gbps, rate = wrk(url, args.seconds)
                per_gb = (cpu_seconds(process_tree(pid)) - before) / (gbps * args.seconds)
                figures[name].append((gbps, per_gb))
                print(f"round {round_}  {name:48} {gbps:5.2f} GB/s  {rate:7.1f} req/s  "
                      f"server CPU {per_gb:5.2f} s/GB", flush=True)
        base = statistics.median(g for g, _ in figures["A Apache static file"])
        print(f"\n{args.mib} MiB image, wrk -t2 -c8 -d{args.seconds}s, median of {args.rounds} rounds:")
        for name, values in figures.items():
            gbps = statistics.median(g for g, _ in values)
            per_gb = statistics.median(c for _, c in values)
            print(f"  {name:48} {gbps:5.2f} GB/s  {gbps / base:4.2f}x static  server CPU {per_gb:5.2f} s/GB")
    finally:
        if proc is not None:
            stop(proc)
        for server in servers:
            server.remove()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    slow = sub.add_parser("slow")
    slow.add_argument("--idle", type=int, default=1000)
    slow.add_argument("--slowloris", type=int, default=1000)
    slow.add_argument("--seconds", type=int, default=30)
    slow.add_argument("--baseline", type=int, default=10)
    slow.add_argument("--servers", default="apache,debian,serve", help="of apache, debian, serve")
    fw = sub.add_parser("firmware")
    fw.add_argument("--mib", type=int, default=20)
    fw.add_argument("--rounds", type=int, default=3)
    fw.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    slow_clients(args) if args.what == "slow" else firmware(args)


if __name__ == "__main__":
    main()
