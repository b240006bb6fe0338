"""Side by side, in one sitting: ``autoprov serve``, Apache serving static copies of the same files (the
ceiling), and the 2010-style PHP script autoprov replaces (the floor to beat). Issue 8.

    .venv/bin/python benchmarks/side_by_side.py [--phones 1000] [--duration 10] [--rounds 3]
        [--only phone,latency,dir1000,dir5000] [--warmup 2] [--json results.json]

Needs Debian's apache2, libapache2-mod-php, php-sqlite3 and wrk. Everything runs on 127.0.0.1, on free
ports, under one temporary directory (removed at the end unless --keep), and every server started is
ended (its whole process group) however the run ends. Nothing here is a test: it prints figures.

1. A SQLite database made the way an admin makes it: ``autoprov init`` and ``autoprov import`` of a CSV of
   N phones (IP 330s, every other one with two lines), 1,000 of their extensions listed in the directory.
2. Starts (A) ``autoprov serve`` with the configuration's defaults for workers and threads (Granian;
   its output goes to a file; the access log is off by default), (B) Apache event MPM
   serving each phone's ``<mac>-phone.cfg`` and the directory as files rendered once by (A), (C)
   ``side_by_side_files/oldstyle.php`` under Apache prefork + mod_php: per request a new SQLite connection
   and two queries (phone, then its lines joined with their extensions), or one for the directory. Each
   Apache is private (``apache2 -f conf -DFOREGROUND``; its own port, pid, logs), with Debian's defaults.
3. Checks that (A) and (C) send the same bytes for every phone and for the directory.
4. Runs wrk interleaved, A B C in each round, for each piece of work:
   phone    ``<mac>-phone.cfg`` of a random phone each request, ``wrk -t2 -c32``;
   latency  the same with one connection (``-t1 -c1``): p50 and p99 per request;
   dir1000  ``000000000000-directory.xml`` with 1,000 listed extensions, ``-t2 -c32``; autoprov also
            with ``If-None-Match`` of its ETag (answered 304);
   dir5000  the same after importing 4,000 more listed extensions.
   Each measured run follows a short warm-up run of the same work (--warmup seconds, not counted).
5. Prints the median of the rounds as a table with the ratios autoprov/PHP and autoprov/static.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from harness import (
    EVENT,
    FILES,
    PREFORK,
    UA,
    Processes,
    WrkResult,
    exit_on_sigterm,
    fetch,
    free_port,
    machine_note,
    median_result,
    php_module,
    run_wrk,
    set_nice,
    share_with_web_user,
    start_apache,
    wait_for,
)

MODEL = "polycom_ip330"
PHONE_PATH = f"/prov/{MODEL}/MAC-phone.cfg"
DIRECTORY_PATH = f"/prov/{MODEL}/000000000000-directory.xml"
WORK = ("phone", "latency", "dir1000", "dir5000")
SIP = {"server": "pbx.example.test", "port": 5060, "transport": "UDPOnly", "expires": 3600}

FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
         "Radia", "John", "Sophie", "Tim", "Hedy", "Claude"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
        "Wirth", "Perlman", "McCarthy", "Wilson", "Berners-Lee", "Lamarr", "Shannon", "O'Brien", "Smith & Co"]


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.data = tmp / "data"
        self.db = self.data / "autoprov.db"
        self.macs_file = tmp / "macs.txt"
        self.macs: list[str] = []
        self.ports: dict[str, int] = {}
        self.rng = random.Random(8)
        self.next_extension = 100000
        self.env = dict(os.environ)
        self.results: dict[str, dict[str, list[WrkResult]]] = {}
        self.notes: list[str] = []
        self.peak_load = 0.0

    # --- the database ------------------------------------------------------------------------
    def autoprov(self, *argv: str) -> str:
        out = subprocess.run([sys.executable, "-m", "autoprov", *argv], env=self.env, capture_output=True,
                             text=True, timeout=600)
        if out.returncode:
            raise RuntimeError(f"autoprov {' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout.strip()

    def extension_row(self, listed: bool) -> dict[str, str]:
        number = str(self.next_extension)
        self.next_extension += 1
        return {
            "extension": number,
            "secret": f"{self.rng.getrandbits(128):032x}",
            "first_name": self.rng.choice(FIRST),
            "last_name": self.rng.choice(LAST),
            "mailbox": number if self.rng.random() < 0.3 else "",
            "directory": "yes" if listed else "no",
        }

    def write_csv(self, path: Path, rows: list[dict[str, str]]) -> None:
        columns = ["extension", "secret", "first_name", "last_name", "mailbox", "directory", "mac", "model"]
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, columns, restval="")
            writer.writeheader()
            writer.writerows(rows)

    def make_database(self) -> None:
        self.data.mkdir()
        self.config = self.tmp / "autoprov.toml"
        self.ports["autoprov"] = free_port()
        self.config.write_text(
            f'[database]\nurl = "sqlite:///{self.db}"\n'
            f'[http]\npublic_url = "http://127.0.0.1:{self.ports["autoprov"]}"\nhost = "127.0.0.1"\n'
            f'port = {self.ports["autoprov"]}\n'
            f'[sip]\nserver = "{SIP["server"]}"\nport = {SIP["port"]}\ntransport = "{SIP["transport"]}"\n'
            f'expires = {SIP["expires"]}\n'
            f'[firmware]\nroot = "{self.tmp / "firmware"}"\n'
        )
        self.env["AUTOPROV_CONFIG"] = str(self.config)
        self.autoprov("init")
        rows = []
        listed = 0
        for i in range(self.args.phones):
            mac = f"0004f2{i:06x}"
            self.macs.append(mac)
            for _ in range(2 if i % 2 == 0 else 1):
                row = self.extension_row(listed < 1000)
                listed += row["directory"] == "yes"
                rows.append({**row, "mac": mac, "model": MODEL})
        # Directory of 1,000 whatever the number of phones: extensions on no phone make up the rest.
        while listed < 1000:
            rows.append(self.extension_row(True))
            listed += 1
        self.write_csv(self.tmp / "phones.csv", rows)
        t0 = time.perf_counter()
        print(f"  {self.autoprov('import', str(self.tmp / 'phones.csv'))} "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
        self.macs_file.write_text("\n".join(self.macs) + "\n")
        # Apache's children run as www-data when the runner is root; SQLite gives -wal/-shm the file's owner.
        share_with_web_user(self.tmp, self.data, *self.data.iterdir())

    def list_more_extensions(self, total: int) -> None:
        """Import listed extensions on no phone until the directory holds ``total``."""
        rows = [self.extension_row(True) for _ in range(total - 1000)]
        self.write_csv(self.tmp / "more.csv", rows)
        print(f"  {self.autoprov('import', str(self.tmp / 'more.csv'))}", flush=True)

    # --- the servers ---------------------------------------------------------------------------
    def start_autoprov(self) -> None:
        log = self.tmp / "autoprov-serve.log"
        proc = self.procs.start("autoprov", [sys.executable, "-m", "autoprov", "serve"], log, env=self.env)
        wait_for(self.ports["autoprov"], DIRECTORY_PATH, proc, log, headers={"User-Agent": UA})
        self.autoprov_proc = proc
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        from autoprov.config import load_settings  # the settings serve itself read

        http = load_settings(str(self.config)).http  # ``server``: gunicorn in commits before [http] server
        note = (f"autoprov serve: {len(workers)} worker processes (config: workers={http.workers}, "
                f"threads={http.threads}, server={getattr(http, 'server', 'gunicorn')}), output to {log.name}")
        if note not in self.notes:
            self.notes.append(note)
        print(f"  {note}", flush=True)

    def start_static(self) -> None:
        root = self.tmp / "static"
        self.static_docroot = root / "docroot"
        (self.static_docroot / "prov" / MODEL).mkdir(parents=True)
        self.render_static()
        self.ports["static"], _ = start_apache(self.procs, "static", root, self.static_docroot, EVENT,
                                               ready_path=DIRECTORY_PATH)

    def render_static(self) -> None:
        """Each phone's file and the directory, fetched once from autoprov into the static docroot."""
        target = self.static_docroot / "prov" / MODEL

        def one(mac: str) -> None:
            status, _, body = fetch(self.ports["autoprov"], PHONE_PATH.replace("MAC", mac), {"User-Agent": UA})
            if status != 200:
                raise RuntimeError(f"autoprov answered {status} for {mac}-phone.cfg")
            (target / f"{mac}-phone.cfg").write_bytes(body)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, self.macs))
        status, _, body = fetch(self.ports["autoprov"], DIRECTORY_PATH, {"User-Agent": UA})
        (target / "000000000000-directory.xml").write_bytes(body)

    def start_php(self) -> None:
        root = self.tmp / "php"
        docroot = root / "docroot"
        docroot.mkdir(parents=True)
        script = docroot / "oldstyle.php"
        script.write_text(fill_php(self.db))
        extra = (f"LoadModule php_module {php_module()}\n"
                 f'AliasMatch "^/prov/[a-z0-9_]+/[0-9A-Fa-f]{{12}}-(phone\\.cfg|directory\\.xml)$" "{script}"\n'
                 f'<Files "oldstyle.php">\n    SetHandler application/x-httpd-php\n</Files>\n')
        self.ports["php"], _ = start_apache(self.procs, "php", root, docroot, PREFORK, extra,
                                            ready_path=DIRECTORY_PATH)

    def check_same_bytes(self) -> None:
        """autoprov and the PHP must send the same file for every phone, and the same directory."""
        paths = [PHONE_PATH.replace("MAC", mac) for mac in self.macs] + [DIRECTORY_PATH]

        def compare(path: str) -> str | None:
            a = fetch(self.ports["autoprov"], path, {"User-Agent": UA})
            c = fetch(self.ports["php"], path, {"User-Agent": UA})
            if a[0] == c[0] == 200 and a[2] == c[2]:
                return None
            diff = "\n".join(difflib.unified_diff(a[2].decode(errors="replace").splitlines(),
                                                  c[2].decode(errors="replace").splitlines(),
                                                  "autoprov", "php", lineterm="", n=1))
            return f"{path}: autoprov {a[0]}, php {c[0]}\n{diff[:3000]}"

        with ThreadPoolExecutor(4) as pool:
            problems = [p for p in pool.map(compare, paths) if p]
        if problems:
            note = f"CONTENT DIFFERS: {len(problems)} of {len(paths)} files differ between autoprov and the PHP"
            print(f"  WARNING {note}; first:\n{problems[0]}", flush=True)
            self.notes.append(note)
        else:
            print(f"  autoprov and the PHP sent the same bytes for all {len(paths)} files", flush=True)

    # --- measuring ----------------------------------------------------------------------------------
    def runs(self, work: str) -> list[tuple[str, int, str, int, int, Path | None, dict[str, str]]]:
        """(label, port, path, threads, connections, macs file, headers) for each server, A B C."""
        ua = {"User-Agent": UA}
        if work in ("phone", "latency"):
            t, c = (2, 32) if work == "phone" else (1, 1)
            return [(name, self.ports[name], PHONE_PATH, t, c, self.macs_file, ua)
                    for name in ("autoprov", "static", "php")]
        status, headers, _ = fetch(self.ports["autoprov"], DIRECTORY_PATH, ua)
        etag = headers.get("etag", "")
        revalidated = fetch(self.ports["autoprov"], DIRECTORY_PATH, {**ua, "If-None-Match": etag})[0]
        if revalidated != 304:
            self.notes.append(f"{work}: autoprov answered {revalidated} to If-None-Match, not 304")
        return [
            ("autoprov", self.ports["autoprov"], DIRECTORY_PATH, 2, 32, None, ua),
            ("autoprov 304", self.ports["autoprov"], DIRECTORY_PATH, 2, 32, None, {**ua, "If-None-Match": etag}),
            ("static", self.ports["static"], DIRECTORY_PATH, 2, 32, None, ua),
            ("php", self.ports["php"], DIRECTORY_PATH, 2, 32, None, ua),
        ]

    def measure(self, works: list[str], deadline: float) -> None:
        for rnd in range(1, self.args.rounds + 1):
            for work in works:
                for label, port, path, t, c, macs, headers in self.runs(work):
                    if time.monotonic() > deadline:
                        print("  time is up (--max-minutes): stopping the measurements here", flush=True)
                        self.notes.append("stopped early at --max-minutes")
                        return
                    if self.args.warmup > 0:
                        run_wrk(port, path, t, c, self.args.warmup, macs, headers)
                    r = run_wrk(port, path, t, c, self.args.duration, macs, headers)
                    self.results.setdefault(work, {}).setdefault(label, []).append(r)
                    self.peak_load = max(self.peak_load, os.getloadavg()[0])
                    print(f"  round {rnd} {work:8} {label:13} {r.rps:9.0f} req/s  p50 {r.p50_ms:8.2f} ms  "
                          f"p99 {r.p99_ms:8.2f} ms  bad status {r.bad_status}, socket errors "
                          f"{r.socket_errors}  load {os.getloadavg()[0]:.2f}", flush=True)


def fill_php(db: Path) -> str:
    from harness import fill

    return fill((FILES / "oldstyle.php").read_text(), DB_PATH=db, SIP_SERVER=SIP["server"], SIP_PORT=SIP["port"],
                SIP_TRANSPORT=SIP["transport"], SIP_EXPIRES=SIP["expires"])


# --- the table ------------------------------------------------------------------------------------
def cell(r: WrkResult | None, latency: bool = False) -> str:
    if r is None:
        return "-"
    if r.requests == 0:
        return "no request completed"
    errors = f", {r.bad_status} non-2xx/3xx" if r.bad_status else ""
    errors += f", {r.socket_errors} socket errors" if r.socket_errors else ""
    if latency:
        return f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms{errors}"
    return f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms{errors}"


def ratio(a: WrkResult | None, b: WrkResult | None, latency: bool = False) -> str:
    if a is None or b is None:
        return "-"
    if latency:  # how many times the other's per-request time autoprov takes
        return f"{a.p50_ms / b.p50_ms:.1f}x the p50" if b.p50_ms else "-"
    return f"{a.rps / b.rps:.2f}x" if b.rps else "-"


TITLES = {
    "phone": "`<mac>-phone.cfg`, random MAC, c=32",
    "latency": "same, c=1 (per request)",
    "dir1000": "directory, 1,000 extensions, c=32",
    "dir5000": "directory, 5,000 extensions, c=32",
}


def table(results: dict[str, dict[str, list[WrkResult]]]) -> str:
    out = ["| work | static file (Apache event) | the PHP (prefork + mod_php) | autoprov serve "
           "| autoprov / PHP | autoprov / static |", "|---|---|---|---|---|---|"]
    for work, by_server in results.items():
        med = {label: median_result(rs) for label, rs in by_server.items()}
        lat = work == "latency"
        a, s, p = med.get("autoprov"), med.get("static"), med.get("php")
        a_cell, a_php, a_static = cell(a, lat), ratio(a, p, lat), ratio(a, s, lat)
        if "autoprov 304" in med:
            n = med["autoprov 304"]
            a_cell += f"; with If-None-Match (304): {cell(n)}"
            a_php += f"; 304: {ratio(n, p)}"
            a_static += f"; 304: {ratio(n, s)}"
        out.append(f"| {TITLES[work]} | {cell(s, lat)} | {cell(p, lat)} | {a_cell} | {a_php} | {a_static} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10, help="seconds of each measured wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of the uncounted run before each")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(WORK), help=f"comma-separated, of: {', '.join(WORK)}")
    ap.add_argument("--max-minutes", type=float, default=40.0, help="stop measuring after this long")
    ap.add_argument("--json", type=Path, help="also write every round's figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    ap.add_argument("--nice", type=int, default=0, help="run the servers and wrk under nice -n N (see harness)")
    args = ap.parse_args()
    set_nice(args.nice)
    works = [w.strip() for w in args.only.split(",") if w.strip()]
    if unknown := set(works) - set(WORK):
        ap.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(WORK)}")
    for tool in ("wrk", "apache2"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install apache2 libapache2-mod-php php-sqlite3 wrk")
    php_module()

    exit_on_sigterm()
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    note = machine_note()
    print(f"side_by_side: {args.phones} phones, {args.rounds} rounds of {args.duration:g} s; {note}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="autoprov-side-by-side-"))
    procs = Processes()
    bench = Bench(args, tmp, procs)
    try:
        print("setting up", flush=True)
        bench.make_database()
        bench.start_autoprov()
        bench.start_static()
        bench.start_php()
        bench.check_same_bytes()
        first = [w for w in works if w != "dir5000"]
        if first:
            bench.measure(first, deadline)
        if "dir5000" in works and time.monotonic() < deadline:
            bench.list_more_extensions(5000)
            # What a change made with the CLI does to a running server: a stale directory is worth knowing.
            _, _, body = fetch(bench.ports["autoprov"], DIRECTORY_PATH, {"User-Agent": UA})
            if body.count(b"<item>") != 5000:
                bench.notes.append("after `autoprov import`, the running autoprov still served the old "
                                   "directory: restarted it")
                print(f"  WARNING {bench.notes[-1]}", flush=True)
                procs.stop(bench.autoprov_proc)
                bench.start_autoprov()
            bench.render_static()
            bench.check_same_bytes()
            bench.measure(["dir5000"], deadline)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    print(f"\nMedian of {args.rounds} interleaved rounds ({args.duration:g} s each, after a {args.warmup:g} s "
          f"warm-up), {args.phones} phones, SQLite, loopback; {minutes:.1f} minutes; load average at the end "
          f"{os.getloadavg()[0]:.2f}" + (f"; servers and wrk under nice -n {args.nice}." if args.nice else "."))
    busy = max(os.getloadavg()[1], bench.peak_load)
    if busy > 2 * (os.cpu_count() or 1):
        bench.notes.append(f"the machine was busy (load average up to {busy:.1f} on {os.cpu_count()} CPUs): "
                           "other work shared the cores, so compare the ratios of one sitting, not absolutes")
    for n in bench.notes:
        print(f"- {n}")
    print()
    print(table(bench.results))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": note, "args": {k: str(v) for k, v in vars(args).items()}, "notes": bench.notes,
            "results": {w: {s: [asdict(r) for r in rs] for s, rs in by.items()} for w, by in bench.results.items()},
        }, indent=1))


if __name__ == "__main__":
    main()
