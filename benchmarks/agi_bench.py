"""Benchmark: FastAGI ``cid-name`` round trips at 100 concurrent sessions, against a local AGI per call.

Run: ``.venv/bin/python benchmarks/agi_bench.py [--seconds 10] [--concurrency 100] [--local-calls 20]``.
Everything stays on loopback (127.0.0.1). A real ``autoprov agi serve`` process serves a SQLite database
of 1000 caller names; this process plays 100 Asterisks at once (each call: connect, the environment,
SET VARIABLE CALLERID(name) for a number in the table, close) and measures each call end to end. The
load generator shares the machine with the server, so the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autoprov.agi.tables import CallerName
from autoprov.agi.testing import fastagi_call, local_call
from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site

NAMES = 1000


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def prepare(workdir: Path) -> Path:
    settings = Settings()
    settings.database.url = f"sqlite:///{workdir}/bench.db"
    site = Site(settings, build_plugin_manager(load_entry_points=False))
    site.init_database()
    with site.db.connection_context(), site.db.atomic():
        CallerName.insert_many([{"number": f"555{i:04d}", "name": f"Caller {i}"} for i in range(NAMES)]).execute()
    site.db.close()
    config = workdir / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{settings.database.url}"\n')
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("autoprov agi serve exited") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("autoprov agi serve did not start")


def fastagi_load(port: int, concurrency: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(concurrency)

    def worker(seed: int) -> None:
        nonlocal failures
        rng = random.Random(seed)
        mine: list[float] = []
        bad = 0
        start.wait()
        while time.monotonic() < stop_at:
            number = f"555{rng.randrange(NAMES):04d}"
            t0 = time.perf_counter()
            t = fastagi_call("127.0.0.1", port, "cid-name", env={"callerid": number}, env_pause=0)
            mine.append(time.perf_counter() - t0)
            if t.status != "SUCCESS" or t.variables.get("CALLERID(name)") != f"Caller {int(number[3:])}":
                bad += 1
        with lock:
            latencies.extend(mine)
            failures += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, failures


def local_load(config: Path, calls: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "cid-name"]
    timings = []
    for i in range(calls):
        t0 = time.perf_counter()
        t, proc = local_call(argv, env={"callerid": f"555{i % NAMES:04d}"}, process_env=env, env_pause=0)
        timings.append(time.perf_counter() - t0)
        if t.status != "SUCCESS" or proc.returncode != 0:
            raise SystemExit(f"local AGI failed: {proc.stderr.decode(errors='replace')}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the FastAGI load runs")
    parser.add_argument("--concurrency", type=int, default=100, help="simultaneous FastAGI sessions")
    parser.add_argument("--local-calls", type=int, default=20, help="local AGI processes to spawn, one per call")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agi-bench-") as tmp:
        config = prepare(Path(tmp))
        port = free_port()
        server = start_server(config, port)
        try:
            fastagi_load(port, min(args.concurrency, 10), 1.0)  # warm up
            latencies, failures = fastagi_load(port, args.concurrency, args.seconds)
        finally:
            server.terminate()
            server.wait(30)
        local = local_load(config, args.local_calls)

    ms = [x * 1000 for x in latencies]
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, server and load on one host")
    print(f"FastAGI cid-name, {args.concurrency} concurrent sessions, {args.seconds:g} s:")
    print(f"  calls: {len(ms)} ({failures} failed)   round trips/s: {len(ms) / args.seconds:.0f}")
    print(f"  latency per call: p50 {percentile(ms, 50):.1f} ms   p99 {percentile(ms, 99):.1f} ms"
          f"   max {max(ms):.1f} ms")
    local_ms = [x * 1000 for x in local]
    print(f"local AGI (spawn `autoprov agi run cid-name` per call), {len(local_ms)} calls one after another:")
    print(f"  per call: mean {statistics.mean(local_ms):.0f} ms   p50 {percentile(local_ms, 50):.0f} ms"
          f"   max {max(local_ms):.0f} ms   (= {1000 / statistics.mean(local_ms):.1f} calls/s on one core)")


if __name__ == "__main__":
    main()
