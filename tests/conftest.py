"""Shared fixtures: a Site on a fresh database (SQLite, and PostgreSQL when one is configured), the WSGI
app as a phone reaches it, and a real ``autoprov serve`` process.

PostgreSQL: set AUTOPROV_TEST_POSTGRESQL_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres), as
.ci/run does; every database test then also runs against a database of its own there. In CI, a missing
PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from werkzeug.test import Client

from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site
from autoprov.web import create_app

PG_URL = os.environ.get("AUTOPROV_TEST_POSTGRESQL_URL")

# Fuzz tests (tests/test_fuzz.py): bounded and repeatable in CI, no per-example deadline on a shared machine;
# HYPOTHESIS_PROFILE=thorough for a long local hunt.
hypothesis_settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.register_profile("dev", max_examples=40, deadline=None)
hypothesis_settings.register_profile("thorough", max_examples=2000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
REPO = Path(__file__).resolve().parent.parent


def _pg_database(name: str, create: bool, template: str | None = None) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        if create:
            cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        else:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _pg_url(name: str) -> str:
    assert PG_URL
    return f"{PG_URL.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def pg_initialised_template() -> Iterator[str]:
    """A PostgreSQL database that `autoprov init` made, once per test process (each pytest-xdist worker has
    its own: a template cannot be copied while another session uses it). A test that builds a ``site`` gets a
    copy of it: running every migration again took most of a short PostgreSQL test's time, and
    ``site.init_database()`` still runs on the copy (and finds it current)."""
    name = f"autoprov_template_{uuid.uuid4().hex[:12]}"
    _pg_database(name, create=True)
    try:
        settings = Settings()
        settings.database.url = _pg_url(name)
        site = Site(settings, build_plugin_manager())
        site.init_database()
        site.close()
        yield name
    finally:
        _pg_database(name, create=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each backend: empty, or on PostgreSQL a copy of an initialised one when the test
    builds a ``site`` (which initialises it anyway)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/autoprov.db"
        return
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("AUTOPROV_TEST_POSTGRESQL_URL is not set in CI")
        pytest.skip("AUTOPROV_TEST_POSTGRESQL_URL not set")
    template = request.getfixturevalue("pg_initialised_template") if "site" in request.fixturenames else None
    name = f"autoprov_test_{uuid.uuid4().hex[:12]}"
    _pg_database(name, create=True, template=template)
    try:
        yield _pg_url(name)
    finally:
        _pg_database(name, create=False)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    s = Settings()
    s.database.url = database_url
    s.firmware.root = str(tmp_path / "firmware")
    s.http.public_url = "http://prov.example.test:8080"
    s.sip.server = "pbx.example.test"
    # Tests change the database and fetch at once: read the change counter on every request (the bound
    # itself is tested in test_caching.py).
    s.http.change_check_interval = 0
    return s


@pytest.fixture
def site(settings: Settings) -> Iterator[Site]:
    site = Site(settings, build_plugin_manager())
    site.init_database()
    for model in site.models.values():
        model.firmware_dir.mkdir(parents=True, exist_ok=True)
    yield site
    site.close()


class LoopbackClient(Client):
    """Werkzeug's test client, from 127.0.0.1 unless a test says otherwise: a real server always gives the
    client's address, and the access rules depend on it."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["environ_base"] = {"REMOTE_ADDR": "127.0.0.1", **(kwargs.get("environ_base") or {})}
        return super().open(*args, **kwargs)


class PhoneClient(LoopbackClient):
    """A test client that writes the site's buffered sightings after each request, so a test can read them."""

    def __init__(self, site: Site) -> None:
        super().__init__(create_app(site))
        self.site = site

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().open(*args, **kwargs)
        self.site.sightings.flush()
        return response


@pytest.fixture
def client(site: Site) -> Client:
    """The WSGI app, reached in-process as a phone would over HTTP."""
    return PhoneClient(site)


@pytest.fixture
def db(site: Site) -> Iterator[None]:
    """A database connection for a test that reads or writes tables directly."""
    with site.db.connection_context():
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, settings: Settings, port: int) -> Path:
    """A TOML configuration file for a subprocess, from a Settings object."""
    path.write_text(
        f"""
[database]
url = "{settings.database.url}"
[http]
public_url = "{settings.http.public_url}"
host = "127.0.0.1"
port = {port}
workers = 2
threads = 4
retry_after = {settings.http.retry_after}
change_check_interval = {settings.http.change_check_interval}
sighting_flush_interval = 0.05
shutdown_timeout = 0
[sip]
server = "{settings.sip.server}"
[firmware]
root = "{settings.firmware.root}"
""",
        encoding="utf-8",
    )
    return path


def autoprov(*args: str, config: Path | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run the real ``autoprov`` command line."""
    env = dict(os.environ)
    if config is not None:
        env["AUTOPROV_CONFIG"] = str(config)
    env.pop("AUTOPROV_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "autoprov", *args], capture_output=True, text=True, env=env, timeout=120, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(f"autoprov {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


_cli_plugins = None


def cli(*args: str | bytes, config: Path | None = None, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run the ``autoprov`` command line in this process (click's CliRunner): the same commands, output and
    exit status as :func:`autoprov`, without starting Python each time; ``input`` is its standard input. Use
    :func:`autoprov` where the process itself matters: exit by signal, plugins found through PYTHONPATH, what a
    real shell sees."""
    from click.testing import CliRunner

    from autoprov.cli import build_cli
    from autoprov.db import database

    global _cli_plugins
    if _cli_plugins is None:
        _cli_plugins = build_plugin_manager()
    argv = [os.fsdecode(a) for a in args]  # bytes as the real process gets them (surrogate escapes)
    env = {"AUTOPROV_CONFIG": str(config) if config is not None else None, "AUTOPROV_DATABASE_URL": None}
    saved = database.obj
    try:
        result = CliRunner().invoke(build_cli(_cli_plugins), argv, input=input, env=env, prog_name="autoprov")
    finally:
        # The command bound the shared database proxy to a database of its own: close it, give the test's back.
        if database.obj is not saved and database.obj is not None:
            database.obj.close()
        database.initialize(saved)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash, which the real process would print as a traceback
    completed = subprocess.CompletedProcess(["autoprov", *argv], result.exit_code, result.stdout, result.stderr)
    if check and completed.returncode != 0:
        raise AssertionError(f"autoprov {' '.join(argv)} failed ({completed.returncode}):\n{completed.stderr}")
    return completed


def wait_until_listening(port: int, proc: subprocess.Popen, output: Callable[[], str], timeout: float = 30) -> None:
    """Poll until something listens on the loopback ``port``; fail with ``output()`` if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"autoprov serve exited: {output()}") from None
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"autoprov serve did not start listening: {output()}") from None
            time.sleep(0.05)


@contextmanager
def running_server(config: Path, port: int, env: dict[str, str] | None = None, log=None,
                   options: tuple[str, ...] = ()) -> Iterator[str]:
    """Run ``autoprov serve`` with ``config`` until the block ends; yields its base URL once it listens.

    ``env`` adds to (or overrides) this process's environment, e.g. a PYTHONPATH with more plugins; ``log``, a
    binary file the server's output goes to (a test reading what it printed), closed at the end; ``options``
    go before ``serve`` (``("-vv",)``: debug logging).
    """
    env = dict(os.environ, **(env or {}), AUTOPROV_CONFIG=str(config))
    # Output to a file, never a pipe nobody reads: the access log would fill it and stall the server.
    log = log if log is not None else tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "autoprov", *options, "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    wait_until_listening(port, proc, output)
    try:
        yield url
    finally:
        # SIGINT: gunicorn's quick shutdown; with shutdown_timeout = 0 (write_config) a worker still waiting on a
        # test's open connection is killed at once instead of keeping the teardown waiting.
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        # The server's own log, shown by pytest when the test failed (captured otherwise).
        log.seek(0)
        sys.stderr.write(log.read()[-20000:].decode(errors="replace"))
        log.close()


@pytest.fixture
def server(tmp_path: Path, site: Site) -> Iterator[str]:
    """A real ``autoprov serve`` (gunicorn, 2 workers) on a free loopback port; yields its base URL."""
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    with running_server(config, port) as url:
        yield url
