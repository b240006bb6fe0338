"""A real Apache httpd (Debian's apache2 with mod_wsgi) serving autoprov through the example
configuration in deploy/apache, on private loopback ports, with its own ServerRoot, pid file, sockets and
logs in a directory of its own: never the machine's /etc/apache2 or its apache2 service.

Used by tests/test_apache.py and benchmarks/apache_bench.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy" / "apache"
APACHE = Path("/usr/sbin/apache2")
MODULE_DIR = Path("/usr/lib/apache2/modules")
# Debian's mod_wsgi is linked against Debian's libpython: the daemon's virtualenv must be made from it.
SYSTEM_PYTHON = Path("/usr/bin/python3")
RUN_AS = "www-data"  # Apache will not run its workers as root; as root, everything runs as this user
MODULES = [
    "mpm_event", "authz_core", "authz_host", "alias", "mime", "reqtimeout", "socache_shmcb", "ssl",
    "wsgi",
]
PACKAGES = "apache2 libapache2-mod-wsgi-py3 python3-venv openssl"


def missing() -> str | None:
    """Why a real Apache with mod_wsgi cannot run here, or None."""
    needed = [APACHE, SYSTEM_PYTHON, *(MODULE_DIR / f"mod_{m}.so" for m in MODULES)]
    absent = [str(p) for p in needed if not p.exists()] + ([] if shutil.which("openssl") else ["openssl"])
    if absent:
        return f"not installed: {', '.join(absent)} (apt-get install {PACKAGES})"
    if subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip"], capture_output=True).returncode:
        return f"{SYSTEM_PYTHON} cannot make a virtualenv (apt-get install python3-venv)"
    return None


def require_apache() -> None:
    """Skip the test when Apache or mod_wsgi is missing; on CI, where .ci/run installs them, fail instead."""
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run installs {PACKAGES}")
        pytest.skip(reason)


def mtls_apache(directory: Path) -> Apache:
    """An Apache whose HTTPS vhost includes deploy/apache/autoprov-mtls.conf, trusting the device CAs of
    ``directory/device-cas.pem`` (tests.pki.device_cas)."""
    mtls = directory / "autoprov-mtls.conf"
    mtls.write_text(_substitute((DEPLOY / "autoprov-mtls.conf").read_text(),
                                {"/etc/ssl/autoprov/device-cas.pem": str(directory / "device-cas.pem")}))
    return Apache(vhost={"#Include /etc/autoprov/autoprov-mtls.conf": f"Include {mtls}"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stamp() -> str:
    """What the virtualenv was built from: rebuilt when a pyproject.toml or the system Python changes."""
    digest = hashlib.sha256(os.path.realpath(SYSTEM_PYTHON).encode())
    for path in sorted([REPO / "pyproject.toml", *REPO.glob("models/*/pyproject.toml")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def wsgi_venv() -> Path:
    """A virtualenv made from Debian's Python (mod_wsgi's) with this checkout installed in editable mode.

    The development .venv serves if it was made from that same Python; otherwise (pyenv, another 3.x) one
    is built once under var/apache-venv and reused until a pyproject.toml changes.
    """
    if os.path.realpath(sys.base_prefix) == "/usr" and sys.version_info[:2] == _system_python_version():
        return Path(sys.prefix)
    venv = REPO / "var" / "apache-venv"
    venv.parent.mkdir(exist_ok=True)
    with open(REPO / "var" / "apache-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        stamp = venv / "autoprov-stamp"
        if stamp.exists() and stamp.read_text() == _stamp():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", venv], check=True)
        models = [f"-e{p}" for p in sorted(REPO.glob("models/*")) if (p / "pyproject.toml").exists()]
        subprocess.run(
            [venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", f"-e{REPO}", *models],
            check=True,
        )
        stamp.write_text(_stamp())
    return venv


def _system_python_version() -> tuple[int, int]:
    out = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(*sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def as_run_user(argv: list[str]) -> list[str]:
    """The command as the user Apache's daemon runs as (so that files it creates stay writable by it)."""
    return ["runuser", "-u", RUN_AS, "--", *argv] if os.geteuid() == 0 else argv


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    crt, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return crt, key


class Apache:
    """One Apache httpd serving autoprov from deploy/apache, in a fresh directory, until ``stop()``.

    ``server_conf`` replaces deploy/apache/autoprov-server.conf (e.g. Debian's defaults, for comparison);
    ``extra`` is appended to the server configuration; ``vhost`` maps more of autoprov.conf's lines to this
    run's (applied first, e.g. to uncomment an Include). The autoprov configuration is ``self.config``.
    """

    def __init__(self, send_with: str = "apache", server_conf: str | None = None, extra: str = "",
                 vhost: dict[str, str] | None = None) -> None:
        self.venv = wsgi_venv()
        if os.geteuid() == 0:
            check = [str(self.venv / "bin" / "python"), "-c", "import autoprov.web"]
            if subprocess.run(as_run_user(check), capture_output=True).returncode:
                raise AssertionError(f"user {RUN_AS} (Apache's, as root) cannot import autoprov from {self.venv}: "
                                     f"make the checkout {REPO} readable by it (o+rX on every directory above)")
        # Not under pytest's tmp_path: that is private to root, and Apache's user must reach these files.
        self.root = Path(tempfile.mkdtemp(prefix="autoprov-apache-"))
        self.root.chmod(0o755)
        for sub in ("run", "logs", "db", "firmware"):
            (self.root / sub).mkdir()
        if os.geteuid() == 0:  # `autoprov init` (as that user) creates the database and each model's directory
            for sub in ("db", "firmware"):
                shutil.chown(self.root / sub, RUN_AS, RUN_AS)
        self.port, self.tls_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_url = f"https://127.0.0.1:{self.tls_port}"
        self.crt, key = self_signed_certificate(self.root / "run")
        self.firmware = self.root / "firmware"
        self.database = self.root / "db" / "autoprov.db"
        self.config = self.root / "autoprov.toml"
        self.config.write_text(
            f'[database]\nurl = "sqlite:///{self.database}"\n'
            f'[http]\npublic_url = "{self.url}"\n'
            f'[sip]\nserver = "pbx.example.test"\n'
            f'[firmware]\nroot = "{self.firmware}"\nsend_with = "{send_with}"\n',
            encoding="utf-8",
        )
        root = os.geteuid() == 0
        vhost_conf = _substitute((DEPLOY / "autoprov.conf").read_text(), {
            **(vhost or {}),
            "*:80": f"127.0.0.1:{self.port}",
            "*:443": f"127.0.0.1:{self.tls_port}",
            "user=autoprov group=autoprov": f"user={RUN_AS} group={RUN_AS}" if root else "",
            "python-home=/opt/autoprov": f"python-home={self.venv}",
            "/etc/autoprov": str(DEPLOY),
            "/srv/autoprov/firmware": str(self.firmware),
            "/etc/ssl/autoprov/prov.example.com.crt": str(self.crt),
            "/etc/ssl/autoprov/prov.example.com.key": str(key),
        })
        (self.root / "autoprov.conf").write_text(vhost_conf)
        (self.root / "autoprov-server.conf").write_text(
            server_conf if server_conf is not None else (DEPLOY / "autoprov-server.conf").read_text()
        )
        modules = "\n".join(f"LoadModule {m}_module {MODULE_DIR}/mod_{m}.so" for m in MODULES)
        self.conf = self.root / "apache2.conf"
        self.conf.write_text(f"""\
ServerRoot {self.root}
DefaultRuntimeDir {self.root}/run
PidFile {self.root}/run/apache2.pid
Define APACHE_LOG_DIR {self.root}/logs
ErrorLog {self.root}/logs/error.log
LogLevel warn
{modules}
{f"User {RUN_AS}{chr(10)}Group {RUN_AS}" if root else ""}
TypesConfig /etc/mime.types
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
Listen 127.0.0.1:{self.tls_port}
WSGISocketPrefix {self.root}/run/wsgi
SSLSessionCache shmcb:{self.root}/run/ssl_scache(512000)
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\"" combined
Include {self.root}/autoprov-server.conf
Include {self.root}/autoprov.conf
{extra}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def autoprov(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The ``autoprov`` command line of the daemon's virtualenv, on the daemon's database."""
        env = dict(os.environ, AUTOPROV_CONFIG=str(self.config))
        env.pop("AUTOPROV_DATABASE_URL", None)
        result = subprocess.run(as_run_user([str(self.venv / "bin" / "autoprov"), *args]),
                                capture_output=True, text=True, env=env, timeout=120)
        if result.returncode != 0:
            raise AssertionError(f"autoprov {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def start(self) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "AUTOPROV_CONFIG": str(self.config)}
        self.output = open(self.root / "logs" / "stdout.log", "wb")
        # Its own session: stop() can end Apache with every child and daemon process it started.
        self.proc = subprocess.Popen([APACHE, "-f", self.conf, "-DFOREGROUND"], env=env, stdout=self.output,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"apache2 exited ({self.proc.returncode}):\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"apache2 did not start listening:\n{self.logs()}")

    def graceful(self) -> None:
        """A graceful restart (SIGUSR1): Apache re-reads its configuration and starts new daemon processes,
        which read autoprov's configuration anew; requests in progress finish on the old ones."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # SIGTERM: Apache stops its children and the mod_wsgi daemons
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self.output.close()

    def logs(self) -> str:
        """Apache's error logs (the daemon's Python tracebacks land there) and its own output."""
        parts = []
        for name in ("stdout.log", "error.log", "autoprov-error.log"):
            path = self.root / "logs" / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-20000:]}")
        return "\n".join(parts)

    def daemon_connections(self) -> int:
        """Requests Apache's workers have handed to the mod_wsgi daemons (connected to their sockets)."""
        prefix = f"{self.root}/run/wsgi."
        rows = (line.split() for line in Path("/proc/net/unix").read_text().splitlines()[1:])
        # 02: waiting for a daemon thread to accept it, 03: accepted (01 is a listening socket)
        return sum(1 for row in rows if len(row) == 8 and row[5] in ("02", "03") and row[7].startswith(prefix))

    def access_log(self) -> list[str]:
        return (self.root / "logs" / "autoprov-access.log").read_text().splitlines()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _substitute(text: str, replacements: dict[str, str]) -> str:
    """The example file with this run's paths and ports; each original must be in it (they stay in step)."""
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"deploy/apache/autoprov.conf no longer contains {old!r}: update tests/apache.py")
        text = text.replace(old, new)
    return text
