"""What one cached phone request costs inside the application, without any server: issue 8's "profile after".

    .venv/bin/python benchmarks/inprocess_bench.py [--requests 20000] [--profile] [--work phone,dir1000,304]

Builds a SQLite database in a temporary directory (``autoprov init`` and ``import`` of 1,000 IP 330s, 1,000
extensions in the directory), then calls the WSGI application directly with environs as a server gives them,
a random phone's ``<mac>-phone.cfg`` each time (after one pass over every phone, so the renders are cached),
and prints microseconds per request; with --profile, cProfile's top functions by own time. Not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"
MODEL = "polycom_ip330"


def make_site(tmp: Path, phones: int) -> list[str]:
    config = tmp / "autoprov.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp}/autoprov.db"\n[firmware]\nroot = "{tmp}/firmware"\n'
                      '[sip]\nserver = "pbx.example.test"\n')
    os.environ["AUTOPROV_CONFIG"] = str(config)
    rows = ["extension,secret,first_name,last_name,directory,mac,model"]
    macs = []
    for i in range(phones):
        mac = f"0004f2{i:06x}"
        macs.append(mac)
        rows.append(f"{100000 + i},{i:032x},Ada,Lovelace {i},yes,{mac},{MODEL}")
    (tmp / "phones.csv").write_text("\n".join(rows) + "\n")
    for argv in (["init"], ["import", str(tmp / "phones.csv")]):
        subprocess.run([sys.executable, "-m", "autoprov", *argv], check=True, capture_output=True)
    return macs


def environ(path: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    env: dict[str, object] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": UA, "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    for name, value in (headers or {}).items():
        env[f"HTTP_{name.upper().replace('-', '_')}"] = value
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--phones", type=int, default=1000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--work", default="phone,dir1000,304")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="autoprov-inprocess-"))
    try:
        macs = make_site(tmp, args.phones)
        from autoprov.site import Site
        from autoprov.web import create_app

        site = Site()
        app = create_app(site)
        statuses: list[str] = []
        last_headers: dict[str, str] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            statuses.append(status)
            last_headers.update(headers)

        def call(env: dict[str, object]) -> bytes:
            return b"".join(app(env, start_response))

        directory = f"/prov/{MODEL}/000000000000-directory.xml"
        for mac in macs:  # every render cached, as on a server that has seen each phone once
            call(environ(f"/prov/{MODEL}/{mac}-phone.cfg"))
        call(environ(directory))
        etag = last_headers["ETag"]
        rng = random.Random(8)
        works = {
            "phone": lambda: environ(f"/prov/{MODEL}/{rng.choice(macs)}-phone.cfg"),
            "dir1000": lambda: environ(directory),
            "304": lambda: environ(directory, {"If-None-Match": etag}),
        }
        for name in args.work.split(","):
            make = works[name]
            envs = [make() for _ in range(args.requests)]
            statuses.clear()
            profiler = cProfile.Profile() if args.profile else None
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            for env in envs:
                call(env)
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - t0
            assert len(statuses) == len(envs) and all(s[:3] in ("200", "304") for s in statuses), statuses[:3]
            print(f"{name}: {elapsed / len(envs) * 1e6:.1f} µs per request ({len(envs)} requests, "
                  f"status {statuses[0]}){' under cProfile' if profiler else ''}", flush=True)
            if profiler:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
                print(out.getvalue())
        site.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
