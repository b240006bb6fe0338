"""Benchmark: FastAGI ``cid-name`` saturated and at a fixed offered rate, against a local AGI per call.

Run: ``.venv/bin/python benchmarks/agi_bench.py [--seconds 10] [--concurrency 50] [--rate 200]
[--local-calls 10] [--server-pythonpath DIR]``, or ``--steps`` for the server's per-call steps, each
measured alone in CPU time (where a call's time goes).
Everything stays on loopback (127.0.0.1). A real ``autoprov agi serve`` process serves a SQLite database
of 1000 caller names; this process plays Asterisk (each call: connect, the environment, SET VARIABLE
CALLERID(name) for a number in the table, close) and measures each call end to end:

- saturated: ``--concurrency`` callers in a closed loop, each starting its next call when one ends: the
  most calls per second the server completes;
- open loop: calls start at ``--rate`` per second on a fixed schedule whatever the server does (as
  calls arrive at a PBX); latency counts from the scheduled start, so a server falling behind shows.

The load generator shares the machine with the server, so the figures are a floor, not a ceiling.
``--server-pythonpath`` runs the server from another source tree (``git archive <commit> core``) to
compare versions; run them interleaved, the machine is noisy.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autoprov.agi.context import ConnectionPool, SessionDatabase
from autoprov.agi.scripts.cid_name import lookup_name
from autoprov.agi.session import AGISession
from autoprov.agi.tables import CallerName
from autoprov.agi.testing import environment, fastagi_call, local_call, wait_listening
from autoprov.config import Settings, load_settings
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


def start_server(config: Path, port: int, pythonpath: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, proc)
    except RuntimeError as exc:
        proc.kill()
        raise SystemExit(f"autoprov agi serve: {exc}") from None
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_call(port: int, number: str) -> bool:
    t = fastagi_call("127.0.0.1", port, "cid-name", env={"callerid": number}, env_pause=0)
    return t.status == "SUCCESS" and t.variables.get("CALLERID(name)") == f"Caller {int(number[3:])}"


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
            ok = one_call(port, number)
            mine.append(time.perf_counter() - t0)
            bad += not ok
        with lock:
            latencies.extend(mine)
            failures += bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return latencies, failures


def open_loop(port: int, rate: float, seconds: float) -> tuple[list[float], int, float]:
    """Calls started every 1/rate s on schedule; latency from the scheduled start. Returns the latencies,
    the failures, and how late the last call started (the generator's own lag)."""
    total = int(rate * seconds)
    rng = random.Random(1)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def run(scheduled: float, number: str) -> None:
        nonlocal failures
        ok = False
        try:
            ok = one_call(port, number)
        except OSError:
            pass
        done = time.perf_counter() - scheduled
        with lock:
            latencies.append(done)
            failures += not ok

    lag = 0.0
    with ThreadPoolExecutor(max_workers=512) as pool:
        start = time.perf_counter() + 0.05
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            lag = time.perf_counter() - scheduled
            pool.submit(run, scheduled, f"555{rng.randrange(NAMES):04d}")
    return latencies, failures, lag


def local_load(config: Path, calls: int, pythonpath: str | None) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "cid-name"]
    timings = []
    for i in range(calls):
        t0 = time.perf_counter()
        t, proc = local_call(argv, env={"callerid": f"555{i % NAMES:04d}"}, process_env=env, env_pause=0)
        timings.append(time.perf_counter() - t0)
        if t.status != "SUCCESS" or proc.returncode != 0:
            raise SystemExit(f"local AGI failed: {proc.stderr.decode(errors='replace')}")
    return timings


def cpu_us(fn: Callable[[], object], n: int = 3000) -> float:
    """CPU microseconds (all threads) per call of ``fn``."""
    fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def steps(workdir: Path) -> None:
    """The server's per-call steps, each alone, in CPU time: where a call's time goes."""
    settings = load_settings(workdir / "autoprov.toml")
    site = Site(settings, build_plugin_manager(load_entry_points=False))
    pool = ConnectionPool(site.db, max_open=50, query_timeout=2.0)
    database = SessionDatabase(pool, 2.0)
    ours, theirs = socket.socketpair()
    block = environment("cid-name", callerid="5550001", calleridname="Caller 1")
    jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
    done: queue.SimpleQueue[object] = queue.SimpleQueue()

    def waiting_thread() -> None:
        while True:
            done.put(jobs.get()())

    threading.Thread(target=waiting_thread, daemon=True).start()
    listener = socket.create_server(("127.0.0.1", 0))

    def connect() -> None:
        with socket.create_connection(listener.getsockname()), listener.accept()[0]:
            pass

    def environment_read() -> None:
        theirs.sendall(block)
        AGISession.from_socket(ours).read_environment()

    session = AGISession.from_socket(ours)

    def set_variable() -> None:
        theirs.sendall(b"200 result=1\n")
        session.set_variable("CALLERID(name)", "Caller 1")
        theirs.recv(4096)

    site.db.connect()
    print("server steps of one call, CPU time each:")
    for name, fn in [
        ("TCP connect + accept + close (both ends)", connect),
        ("start a thread (and join it)", lambda: (t := threading.Thread(target=int), t.start(), t.join())),
        ("hand a job to a waiting thread", lambda: (jobs.put(int), done.get())),
        ("read and check the environment", environment_read),
        ("lend a pooled connection (no query)", lambda: database.run(int)),
        ("the lookup on an open connection", lambda: lookup_name("5550001")),
        ("peewee building that query (not done per call)",
         lambda: CallerName.select(CallerName.name).where(CallerName.number == "x").limit(1).sql()),
        ("SET VARIABLE and its reply", set_variable),
    ]:
        print(f"  {name:50s} {cpu_us(fn):6.0f} us")
    site.db.close()
    pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each FastAGI load runs")
    parser.add_argument("--concurrency", type=int, default=50, help="callers in the saturated closed loop")
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second offered in the open loop")
    parser.add_argument("--local-calls", type=int, default=10, help="local AGI processes to spawn, one per call")
    parser.add_argument("--steps", action="store_true", help="only the per-call steps, each alone")
    parser.add_argument("--server-pythonpath", default=None,
                        help="PYTHONPATH of the server and the local AGI (another version)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agi-bench-") as tmp:
        config = prepare(Path(tmp))
        if args.steps:
            steps(Path(tmp))
            return
        port = free_port()
        server = start_server(config, port, args.server_pythonpath)
        try:
            fastagi_load(port, min(args.concurrency, 10), 1.0)  # warm up
            cpu = cpu_seconds(server.pid)
            latencies, failures = fastagi_load(port, args.concurrency, args.seconds)
            cpu = cpu_seconds(server.pid) - cpu
            rated, rated_failures, lag = open_loop(port, args.rate, args.seconds)
        finally:
            server.terminate()
            server.wait(30)
        local = local_load(config, args.local_calls, args.server_pythonpath) if args.local_calls else []

    ms = [x * 1000 for x in latencies]
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, server and load on one host"
          + (f"; server from {args.server_pythonpath}" if args.server_pythonpath else ""))
    print(f"FastAGI cid-name saturated, {args.concurrency} callers in a closed loop, {args.seconds:g} s:")
    print(f"  calls: {len(ms)} ({failures} failed)   calls/s: {len(ms) / args.seconds:.0f}"
          f"   server CPU per call: {cpu / len(ms) * 1e6:.0f} us")
    print(f"  latency per call: p50 {percentile(ms, 50):.1f} ms   p99 {percentile(ms, 99):.1f} ms"
          f"   max {max(ms):.1f} ms")
    rms = [x * 1000 for x in rated]
    print(f"FastAGI cid-name open loop, {args.rate:g} calls/s offered, {args.seconds:g} s:")
    print(f"  calls: {len(rms)} ({rated_failures} failed)   generator lag at the end: {lag * 1000:.1f} ms")
    print(f"  latency from scheduled start: p50 {percentile(rms, 50):.1f} ms   p99 {percentile(rms, 99):.1f} ms"
          f"   max {max(rms):.1f} ms")
    if local:
        local_ms = [x * 1000 for x in local]
        print(f"local AGI (spawn `autoprov agi run cid-name` per call), {len(local_ms)} calls one after another:")
        print(f"  per call: mean {statistics.mean(local_ms):.0f} ms   p50 {percentile(local_ms, 50):.0f} ms"
              f"   max {max(local_ms):.0f} ms   (= {1000 / statistics.mean(local_ms):.1f} calls/s on one core)")


if __name__ == "__main__":
    main()
