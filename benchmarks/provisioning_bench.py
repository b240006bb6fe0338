"""Benchmark: phone configs per second from a real ``autoprov serve``, and memory while streaming firmware.

    .venv/bin/python benchmarks/provisioning_bench.py [--phones 10000] [--requests 4000] [--clients 8]

Starts gunicorn (2 workers x 8 threads) on 127.0.0.1 against a fresh SQLite database, fetches random
phones' configs from several client threads, then downloads a large sparse firmware image and reports
each worker's peak resident memory (VmHWM) before and after: streaming keeps it flat.
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
from pathlib import Path

UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phones", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--image-mb", type=int, default=1024)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="autoprov-bench-"))
    port = free_port()
    config = tmp / "autoprov.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp}/bench.db"\n[http]\nhost = "127.0.0.1"\nport = {port}\n'
        f'workers = 2\nthreads = 8\n[firmware]\nroot = "{tmp}/fw"\n'
    )
    env = dict(os.environ, AUTOPROV_CONFIG=str(config))
    run = [sys.executable, "-m", "autoprov"]
    subprocess.run([*run, "init"], env=env, check=True, capture_output=True)
    csv = tmp / "phones.csv"
    with csv.open("w") as fh:
        fh.write("extension,secret,first_name,last_name,mac,model,line\n")
        for i in range(args.phones):
            fh.write(f"{100000 + i},secret{i},First{i},Last{i},0004f2{i:06x},polycom_ip330,1\n")
    t0 = time.perf_counter()
    subprocess.run([*run, "import", str(csv)], env=env, check=True, capture_output=True)
    print(f"import: {args.phones} phones in {time.perf_counter() - t0:.1f} s")
    image = tmp / "fw" / "polycom_ip330" / "sip.ld"
    with image.open("wb") as fh:  # sparse: costs no disk, but every byte is read and sent
        fh.truncate(args.image_mb * 1024 * 1024)

    server = subprocess.Popen([*run, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        latencies: list[float] = []
        lock = threading.Lock()
        per_client = args.requests // args.clients

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            mine = []
            for _ in range(per_client):
                mac = f"0004f2{random.randrange(args.phones):06x}"
                start = time.perf_counter()
                conn.request("GET", f"/prov/polycom_ip330/{mac}-phone.cfg", headers={"User-Agent": UA})
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
        rate = len(latencies) / elapsed
        print(f"phone configs: {len(latencies)} requests, {args.clients} clients: {rate:.0f} req/s, ", end="")
        print(f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")

        before = {pid: vm_hwm_kib(pid) for pid in workers(server.pid)}
        conn = http.client.HTTPConnection("127.0.0.1", port)
        t0 = time.perf_counter()
        conn.request("GET", "/prov/polycom_ip330/sip.ld", headers={"User-Agent": UA})
        resp = conn.getresponse()
        total = 0
        while chunk := resp.read(1 << 20):
            total += len(chunk)
        elapsed = time.perf_counter() - t0
        after = {pid: vm_hwm_kib(pid) for pid in workers(server.pid)}
        print(f"firmware: {total / 2**20:.0f} MiB in {elapsed:.2f} s ({total / 2**20 / elapsed:.0f} MiB/s)")
        for pid in sorted(after):
            was, now = before.get(pid, 0) / 1024, after[pid] / 1024
            print(f"  worker {pid}: peak RSS {was:.1f} MiB before, {now:.1f} MiB after")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
