"""Which WSGI server can reach the old PHP's rate on 2 cores and survive slow clients? (issue 8)

    .venv/bin/python benchmarks/servers.py [--duration 10] [--rounds 3] [--slow 20,200] [--only NAME,...]

The same trivial app (side_by_side_files/trivial_app.py: ~1.4 KB of bytes made once, with an ETag, through
Werkzeug's Request/Response as autoprov answers) served by:

    gthread 2x8    gunicorn -k gthread, 2 workers x 8 threads (``autoprov serve`` with [http] server = "gunicorn")
    gthread 1x16   the same with 1 worker x 16 threads
    sync 2, sync 4 gunicorn -k sync with 2 and 4 workers
    granian 2x8    granian --interface wsgi, 2 workers x 8 blocking threads (what ``autoprov serve`` runs)
    granian 1x8, granian 2x2  the same with other workers x threads
    waitress       waitress-serve, one process, its default 4 threads (``pip install waitress`` in the venv)
    waitress 1000  the same with --connection-limit=1000 (the default, 100, is what 200 slow clients exceed)
    mod_wsgi 2x8   Apache event MPM, mod_wsgi daemon mode, 2 processes x 8 threads
    mod_wsgi 2x8 400  the same with MaxRequestWorkers 400 (Debian's 150 is what 200 slow clients exceed:
                   a connection still sending its request holds a worker thread until mod_reqtimeout, 20 s)
    static         Apache event MPM sending the same bytes as a file (the ceiling)

No access log anywhere. Each round runs ``wrk -t2 -c32 -dDs`` against every server in turn (after a 2 s
warm-up), three rounds interleaved; then for each server, N connections send half a request and stop
(slowloris; they trickle a byte a second) and a normal request must be answered within 2 s, asked three
times while they hang on; N is 20, then 200 (--slow).
Loopback only; every server's process group is ended at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    EVENT,
    FILES,
    Processes,
    WrkResult,
    exit_on_sigterm,
    fetch,
    free_port,
    machine_note,
    median_result,
    run_wrk,
    set_nice,
    start_apache,
    wait_for,
)

NAMES = ("gthread 2x8", "gthread 1x16", "sync 2", "sync 4", "granian 2x8", "granian 1x8", "granian 2x2",
         "waitress", "waitress 1000", "mod_wsgi 2x8", "mod_wsgi 2x8 400", "static")


def site_packages() -> Path:
    """Where this venv keeps Werkzeug: mod_wsgi's own (Debian's) Python 3 reads it through python-path."""
    import werkzeug

    return Path(werkzeug.__file__).resolve().parent.parent


def start(name: str, procs: Processes, tmp: Path) -> int:
    """Start server ``name`` on a free loopback port; return the port once it answers."""
    if name.startswith("mod_wsgi") or name == "static":
        root = tmp / name.replace(" ", "_")
        docroot = root / "docroot"
        docroot.mkdir(parents=True)
        sys.path.insert(0, str(FILES))
        import trivial_app

        (docroot / "phone.cfg").write_bytes(trivial_app.BODY)
        extra = ""
        if name.startswith("mod_wsgi"):
            extra = (
                "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n"
                f"WSGISocketPrefix {root}/run/wsgi\n"
                f"WSGIDaemonProcess bench processes=2 threads=8 python-path={FILES}:{site_packages()}\n"
                "WSGIProcessGroup bench\nWSGIApplicationGroup %{GLOBAL}\n"
                f"WSGIScriptAlias /phone.cfg {FILES}/trivial_app.py\n"
                f"<Directory {FILES}>\n    Require all granted\n</Directory>\n"
            )
            if name.endswith(" 400"):
                extra += "MaxRequestWorkers 400\n"
        port, _ = start_apache(procs, name, root, docroot, EVENT, extra, ready_path="/phone.cfg",
                               access_log=False)
        return port
    port = free_port()
    bind = f"127.0.0.1:{port}"
    gunicorn = [sys.executable, "-m", "gunicorn", "--chdir", str(FILES), "-b", bind, "--log-level", "warning"]
    argv = {
        "gthread 2x8": [*gunicorn, "-k", "gthread", "-w", "2", "--threads", "8", "trivial_app:app"],
        "gthread 1x16": [*gunicorn, "-k", "gthread", "-w", "1", "--threads", "16", "trivial_app:app"],
        "sync 2": [*gunicorn, "-k", "sync", "-w", "2", "trivial_app:app"],
        "sync 4": [*gunicorn, "-k", "sync", "-w", "4", "trivial_app:app"],
        **{name: [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                  str(port), "--workers", name[-3], "--blocking-threads", name[-1], "--no-ws", "--log-level",
                  "warning", "trivial_app:app"] for name in ("granian 2x8", "granian 1x8", "granian 2x2")},
        "waitress": [sys.executable, "-m", "waitress", "--host", "127.0.0.1", f"--port={port}", "trivial_app:app"],
        "waitress 1000": [sys.executable, "-m", "waitress", "--host", "127.0.0.1", f"--port={port}",
                          "--connection-limit=1000", "trivial_app:app"],
    }[name]
    log = tmp / f"{name.replace(' ', '_')}.log"
    proc = procs.start(name, argv, log, cwd=FILES)
    wait_for(port, "/phone.cfg", proc, log)
    return port


def slowloris(port: int, count: int) -> str:
    """Open ``count`` connections that send half a request and stop; then three times, a second apart, time a
    normal request with a 2 s limit. Returns what happened."""
    held = []
    times = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /phone.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
            held.append(s)
        time.sleep(0.5)  # let the server accept them and hand them to whatever reads requests
        for _ in range(3):
            t0 = time.perf_counter()
            try:
                status, _, _ = fetch(port, "/phone.cfg", timeout=2)
                times.append(f"{(time.perf_counter() - t0) * 1000:.0f} ms" + ("" if status == 200 else f" ({status})"))
            except OSError:
                times.append("no answer in 2 s")
            for s in held:  # a trickle, as slowloris does, so no idle timeout closes them
                try:
                    s.sendall(b"x")
                except OSError:
                    pass
            time.sleep(1)
    except OSError as exc:
        times.append(f"could not open {count} connections: {exc}")
    finally:
        for s in held:
            s.close()
    return ", ".join(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slow", default="20,200", help="slowloris connections, each count in turn")
    ap.add_argument("--only", default=",".join(NAMES), help=f"comma-separated, of: {', '.join(NAMES)}")
    ap.add_argument("--nice", type=int, default=0, help="run the servers and wrk under nice -n N (see harness)")
    args = ap.parse_args()
    set_nice(args.nice)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := set(names) - set(NAMES):
        ap.error(f"--only: unknown {sorted(unknown)}")
    try:
        import waitress  # noqa: F401
    except ImportError:
        if any(n.startswith("waitress") for n in names):
            print("waitress is not installed in this venv (pip install waitress): skipped")
        names = [n for n in names if not n.startswith("waitress")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    exit_on_sigterm()
    print(f"servers: {args.rounds} rounds of {args.duration} s, wrk -t2 -c32; {machine_note()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="autoprov-servers-"))
    tmp.chmod(0o755)
    procs = Processes()
    results: dict[str, list[WrkResult]] = {}
    counts = [int(n) for n in args.slow.split(",")]
    slow: dict[tuple[str, int], str] = {}
    try:
        ports = {name: start(name, procs, tmp) for name in names}
        for name, port in ports.items():
            status, headers, body = fetch(port, "/phone.cfg")
            assert status == 200 and len(body) > 1000, (name, status)
            if name != "static":
                again = fetch(port, "/phone.cfg", {"If-None-Match": headers["etag"]})[0]
                assert again == 304, (name, again)
        for rnd in range(1, args.rounds + 1):
            for name, port in ports.items():
                if args.warmup:
                    run_wrk(port, "/phone.cfg", 2, 32, args.warmup)
                r = run_wrk(port, "/phone.cfg", 2, 32, args.duration)
                results.setdefault(name, []).append(r)
                print(f"  round {rnd} {name:13} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:8.2f} ms  "
                      f"bad status {r.bad_status}, socket errors {r.socket_errors}  "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
        for count in counts:
            for name, port in ports.items():
                slow[name, count] = slowloris(port, count)
                print(f"  {count} slow clients, {name}: {slow[name, count]}", flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nMedian of {args.rounds} interleaved rounds, wrk -t2 -c32 -d{args.duration}s, loopback, same app; "
          f"load average at the end {os.getloadavg()[0]:.2f}"
          + (f"; servers and wrk under nice -n {args.nice}" if args.nice else "") + "\n")
    print("| server | req/s | p50 | p99 | " + " | ".join(f"a request, 3 times, with {n} slowloris connections open"
                                                     for n in counts) + " |")
    print("|---|---|---|---|" + "---|" * len(counts))
    for name in names:
        if name in results:
            m = median_result(results[name])
            errors = f" ({m.bad_status} non-2xx/3xx, {m.socket_errors} socket errors)" if m.errors else ""
            slowness = " | ".join(slow.get((name, n), "-") for n in counts)
            print(f"| {name} | {m.rps:,.0f}{errors} | {m.p50_ms:.2f} ms | {m.p99_ms:.2f} ms | {slowness} |")


if __name__ == "__main__":
    main()
