"""What the client-certificate check (autoprov.clientcert) costs a phone config, in-process.

A cached phone config is fetched through the WSGI app (Werkzeug's test client, no network) in interleaved
rounds: with the check replaced by one that has no say (what the code did before mutual TLS), with the check
and no certificate (every request not through Apache's mTLS vhost), and with a verified certificate naming the
phone (mod_ssl's variables in the environ). The machine is shared: read the rounds side by side.

    .venv/bin/python benchmarks/clientcert_bench.py [--requests 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from pathlib import Path

from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

import autoprov.phonepath as phonepath
from autoprov.config import Settings
from autoprov.devices import MODEL
from autoprov.plugins import build_plugin_manager
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.site import Site
from autoprov.web import create_app

MAC = "0004f2aabbcc"
PATH = f"/prov/polycom_ip330/{MAC}-phone.cfg"
UA = {"User-Agent": "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413 Type/Application"}
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
VERIFIED = {**LOOPBACK, "HTTPS": "on", "SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_S_DN_CN": MAC.upper()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clientcert-bench-"))
    settings = Settings()
    settings.database.url = f"sqlite:///{tmp}/autoprov.db"
    settings.firmware.root = str(tmp / "firmware")
    site = Site(settings, build_plugin_manager())
    site.init_database()
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", ""))
        admin.add_phone(site, MAC, "polycom_ip330", ["1001"])
    client = Client(create_app(site))
    check = phonepath.certificate_check

    def run(environ: dict[str, str]) -> float:
        start = time.perf_counter()
        for _ in range(args.requests):
            r = client.get(PATH, headers=UA, environ_base=environ)
            assert r.status_code == 200, r.status_code
        return (time.perf_counter() - start) / args.requests * 1e6

    run(LOOPBACK)  # warm the caches
    results: dict[str, list[float]] = {"no check (before)": [], "check, no certificate": [],
                                       "check, verified certificate": []}
    for _ in range(args.rounds):
        phonepath.certificate_check = lambda *a: None
        results["no check (before)"].append(run(LOOPBACK))
        phonepath.certificate_check = check
        results["check, no certificate"].append(run(LOOPBACK))
        results["check, verified certificate"].append(run(VERIFIED))
    for name, values in results.items():
        print(f"{name:30s} median {statistics.median(values):6.1f} us/request   rounds "
              + " ".join(f"{v:.1f}" for v in values))
    # The check alone, on the same request (the whole request's figures drown it in the machine's noise).
    model = site.models["polycom_ip330"]
    _, rule, values = site.match(f"{MAC}-phone.cfg", MODEL, model)
    served = phonepath.Served(model, rule, values.get("mac"), None, UA["User-Agent"], None, model)
    for name, environ in (("no certificate", LOOPBACK), ("verified certificate", VERIFIED)):
        request = Request(EnvironBuilder(path=PATH, headers=UA, environ_base=environ).get_environ())
        with site.db.connection_context():
            per_call = min(timeit.repeat(lambda r=request: check(site, r, served), number=20000, repeat=5)) / 20000
        print(f"certificate_check alone, {name:22s} {per_call * 1e6:6.2f} us/call (best of 5)")
    site.close()


if __name__ == "__main__":
    main()
