"""What side_by_side.py and servers.py share: private servers in their own process groups, private Apache
instances, and wrk runs read back as numbers.

Every server listens on 127.0.0.1 only, on a free port, with its files under the run's temporary directory;
:class:`Processes` ends each one's whole process group when the run ends, however it ends.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILES = Path(__file__).resolve().parent / "side_by_side_files"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413"

# Prefix of every server and wrk command: ``nice -n N`` with --nice (on a shared, busy machine, a negative N
# as root gives the measured processes the cores first, nearer to a quiet machine). Empty: as they come.
NICE: list[str] = []


def set_nice(n: int) -> None:
    NICE[:] = ["nice", "-n", str(n)] if n else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sqlite_site(directory: str | Path) -> Any:
    """An initialised autoprov Site on a SQLite database in ``directory`` (benchmarks that fill one in process)."""
    from autoprov.config import Settings
    from autoprov.plugins import build_plugin_manager
    from autoprov.site import Site

    settings = Settings()
    settings.database.url = f"sqlite:///{directory}/autoprov.db"
    settings.firmware.root = f"{directory}/firmware"
    settings.sip.server = "pbx.example.test"
    site = Site(settings, build_plugin_manager())
    site.init_database()
    return site


def fill(template: str, **values: object) -> str:
    """``template`` with each ``@@NAME@@`` replaced; every placeholder must be given."""
    for name, value in values.items():
        template = template.replace(f"@@{name}@@", str(value))
    if left := re.findall(r"@@[A-Z_]+@@", template):
        raise ValueError(f"placeholders not filled: {sorted(set(left))}")
    return template


class Processes:
    """Servers started in their own sessions (process groups), all ended by :meth:`stop_all`."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        with log.open("ab") as out:
            proc = subprocess.Popen([*NICE, *argv], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                    start_new_session=True, stdin=subprocess.DEVNULL)
        self.started.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 20.0) -> None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; a straggler in its group (an Apache child) gets the same signal once more.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self.started = [(n, p) for n, p in self.started if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.started)):
            self.stop(proc)


def exit_on_sigterm() -> None:
    """A SIGTERM to the runner unwinds like Ctrl-C, so its ``finally`` ends every server it started."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def wait_for(port: int, path: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0,
             headers: dict[str, str] | None = None) -> None:
    """Poll until ``path`` answers (any status below 500), or fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log {log}:\n{tail(log)}")
        try:
            status, _, _ = fetch(port, path, headers or {}, timeout=2)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer on 127.0.0.1:{port}{path} within {timeout:.0f} s; log {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def fetch(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30.0,
          method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def web_user() -> str | None:
    """The user Apache's children run as when the runner is root (they refuse to run as root)."""
    if os.geteuid() != 0:
        return None
    pwd.getpwnam("www-data")
    return "www-data"


def share_with_web_user(*paths: Path) -> None:
    """Let Apache's children (www-data when run as root) read, and for SQLite's -shm write, these paths."""
    user = web_user()
    for path in paths:
        path.chmod(0o777 if path.is_dir() else 0o666)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def php_module() -> Path:
    found = sorted(glob.glob(str(APACHE_MODULES / "libphp*.so")))
    if not found:
        raise SystemExit("mod_php is missing: apt-get install libapache2-mod-php php-sqlite3")
    return Path(found[-1])


PREFORK = """LoadModule mpm_prefork_module @@MODULES@@/mod_mpm_prefork.so
StartServers 5
MinSpareServers 5
MaxSpareServers 10
MaxRequestWorkers 150
MaxConnectionsPerChild 0
"""

EVENT = """LoadModule mpm_event_module @@MODULES@@/mod_mpm_event.so
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
"""


def start_apache(procs: Processes, name: str, root: Path, docroot: Path, mpm: str, extra: str = "",
                 ready_path: str = "/", access_log: bool = True) -> tuple[int, subprocess.Popen]:
    """A private Apache (``apache2 -f ROOT/httpd.conf -DFOREGROUND``) with Debian's MPM defaults for ``mpm``
    (``PREFORK`` or ``EVENT``) and ``extra`` directives; returns its port once ``ready_path`` answers."""
    if shutil.which("apache2") is None:
        raise SystemExit("apache2 is missing: apt-get install apache2")
    for sub in ("run", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = web_user()
    conf = fill(
        (FILES / "httpd.conf").read_text(),
        ROOT=root,
        PORT=port,
        DOCROOT=docroot,
        USER=f"User {user}\nGroup {user}" if user else "",
        MPM=fill(mpm, MODULES=APACHE_MODULES) + extra,
        MODULES=APACHE_MODULES,
        ACCESS_LOG=f'CustomLog "{root}/logs/access.log" combined' if access_log else "",
    )
    (root / "httpd.conf").write_text(conf)
    log = root / "logs" / "console.log"
    proc = procs.start(name, ["apache2", "-f", str(root / "httpd.conf"), "-DFOREGROUND"], log)
    wait_for(port, ready_path, proc, root / "logs" / "error.log")
    return port, proc


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad_status: int  # answers other than 2xx/3xx
    socket_errors: int  # connect/read/write errors and timeouts (wrk counts a server closing a kept-alive
    # connection under it as a read error: Apache does after MaxKeepAliveRequests)
    mib_per_s: float

    @property
    def errors(self) -> int:
        return self.bad_status + self.socket_errors


def run_wrk(port: int, path: str, threads: int, connections: int, duration: int, macs: Path | None = None,
            headers: dict[str, str] | None = None) -> WrkResult:
    """``wrk -tT -cC -dDs --latency`` against 127.0.0.1:port; ``path`` with MAC replaced by a random line of
    ``macs`` on every request."""
    env = dict(os.environ, BENCH_PATH=path, BENCH_MACS=str(macs or ""),
               BENCH_HEADERS="|".join(f"{k}: {v}" for k, v in (headers or {}).items()))
    argv = [*NICE, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "--latency",
            "-s", str(FILES / "random_mac.lua"), f"http://127.0.0.1:{port}"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("RESULT "):])
    seconds = r["duration_us"] / 1e6
    return WrkResult(rps=r["requests"] / seconds, p50_ms=r["p50_us"] / 1000, p99_ms=r["p99_us"] / 1000,
                     requests=r["requests"], bad_status=r["status"],
                     socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
                     mib_per_s=r["bytes"] / seconds / 2**20)


def median_result(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        requests=sum(r.requests for r in results),
        bad_status=sum(r.bad_status for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        mib_per_s=statistics.median(r.mib_per_s for r in results),
    )


def machine_note() -> str:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "missing"

    return (f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
            f"{version(['apache2', '-v'])}, {version(['php', '-v'])}, {version(['wrk', '-v'])}; "
            f"load average at start {load}")
