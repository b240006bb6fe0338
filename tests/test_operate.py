"""Operating it: which configuration and database are in use, errors that name them, a server log an admin
can read during an outage, a busy port, a prompt stop, the CLI in a pipeline, a demo that can be rerun."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest

from autoprov.cli import build_cli
from autoprov.plugins import build_plugin_manager
from autoprov.schema import SchemaVersion
from autoprov.sitecommands import schema_problem
from tests.conftest import REPO, autoprov, cli, free_port, wait_until_listening, write_config
from tests.phones import headers
from tests.uploads_helpers import put_log

MAC = "0004f2aabbcc"


@contextmanager
def serve_process(config: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    """``autoprov serve`` with its output in ``log_path``; yields the process once it listens."""
    env = dict(os.environ, AUTOPROV_CONFIG=str(config))
    env.pop("AUTOPROV_DATABASE_URL", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "autoprov", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, proc, log_path.read_text)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> int:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers("polycom_ip330"))
    r = conn.getresponse()
    r.read()
    return r.status


# --- which configuration and database ---------------------------------------------------------------------


def test_config_show_names_the_file_the_database_and_its_schema(tmp_path, settings):
    settings.site_params = {}
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    with config.open("a") as fh:
        fh.write('[site_params]\n"reg.1.auth.password" = "param-secret"\n"up.backlight.idleIntensity" = "1"\n')
    before = cli("config", "show", config=config).stdout
    lines = before.splitlines()
    assert lines[0] == f"# configuration file: {config} (relative paths in it: from {tmp_path})"
    if settings.database.url.startswith("sqlite:"):
        assert lines[1] == f"# database: SQLite {tmp_path}/autoprov.db"
        assert "# schema: no schema, no file yet: run `autoprov init`" in lines
        assert not (tmp_path / "autoprov.db").exists()  # looking did not create it
    else:
        assert lines[1].startswith("# database: postgresql://postgres:***@127.0.0.1:")
        assert "# schema: no schema: run `autoprov init`" in lines
    assert f"# firmware: {settings.firmware.root}" in lines
    assert '"reg.1.auth.password" = "***"' in lines and '"up.backlight.idleIntensity" = "1"' in lines
    assert "param-secret" not in before and "autoprov-test" not in before  # the PostgreSQL password

    cli("init", config=config)
    (schema,) = [line for line in cli("config", "show", config=config).stdout.splitlines() if "# schema" in line]
    assert schema.startswith("# schema: access 1, adminui 1, agi 1, audit 1, core ") and schema.endswith(
        " (up to date)"), schema
    assert ", throttle 1" in schema, schema


def test_a_schema_behind_the_installed_code_is_named(site):
    assert schema_problem(site) is None
    with site.db.connection_context():
        SchemaVersion.update(version=0).where(SchemaVersion.component == "core").execute()
    core = max(m.version for m in site.migrations() if m.component == "core")
    assert schema_problem(site) == (
        f"the database schema is older than the installed autoprov (core 0 < {core}): run `autoprov init`"
    )


def test_a_database_that_cannot_be_opened_is_named(tmp_path, settings):
    if not settings.database.url.startswith("sqlite:"):
        pytest.skip("a SQLite path")
    (tmp_path / "a-file").write_text("not a directory")
    settings.database.url = f"sqlite:///{tmp_path}/a-file/autoprov.db"
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    for args in (("phone", "list"), ("models",), ("init",)):
        error = cli(*args, config=config, check=False).stderr
        assert f"SQLite {tmp_path}/a-file/autoprov.db" in error, error


# --- messages ---------------------------------------------------------------------------------------------


def test_no_help_text_shows_rst_markup():
    """Click prints docstrings as they are: ``double backticks`` would reach the admin literally."""
    group = build_cli(build_plugin_manager())

    def walk(command: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    checked = 0
    for path, _ in walk(group, []):
        text = cli(*path, "--help").stdout
        assert "``" not in text, (path, text)
        checked += 1
    assert checked > 30
    assert "as autoprov route list shows it" in cli("route", "remove", "--help").stdout


def test_dotted_macs_are_accepted_and_the_error_says_so(tmp_path, settings):
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    cli("init", config=config)
    cli("extension", "add", "1001", "--secret", "pw", config=config)
    assert cli("phone", "add", "0004.F2AA.BBCC", "--model", "polycom_ip330", "--line", "1001",
               config=config).stdout.startswith(f"added phone {MAC} ")
    error = cli("phone", "show", "0004f2.aabbcc", config=config, check=False).stderr
    assert error == ("Error: not a MAC address: '0004f2.aabbcc' (12 hex digits, optionally separated by : or -, "
                     "or dotted as 0004.f2aa.bbcc)\n")


def test_sightings_and_log_files_label_their_times_utc(tmp_path, site, client):
    client.get(f"/{MAC}.cfg", headers=headers("polycom_ip330"))
    assert put_log(client, MAC, b"0101000000|sip  |4|00|Registration failed\n").status_code < 300
    config = write_config(tmp_path / "autoprov.toml", site.settings, free_port())
    (seen,) = cli("sightings", config=config).stdout.splitlines()
    assert seen.split("\t")[0].endswith(" UTC") and f"\t{MAC}\t" in seen
    (files,) = cli("logs", "files", config=config).stdout.splitlines()
    assert files.startswith(f"{MAC}-app.log\t") and files.endswith(" UTC")


# --- the real process -------------------------------------------------------------------------------------


def test_the_cli_ends_like_unix_tools_when_its_reader_goes_away(tmp_path, settings):
    """``autoprov extension list | grep -q 1001``: grep exits at the first match; the CLI must not turn that
    into a silent exit 1 (nor a traceback): it ends by SIGPIPE, as the shell expects of a pipeline."""
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    cli("init", config=config)
    for ext in ("1001", "1002"):
        cli("extension", "add", ext, "--secret", "pw", config=config)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    env = dict(os.environ, AUTOPROV_CONFIG=str(config))
    result = subprocess.run([sys.executable, "-m", "autoprov", "extension", "list"], stdout=write_end,
                            stderr=subprocess.PIPE, env=env, timeout=120)
    os.close(write_end)
    assert result.returncode == -signal.SIGPIPE
    assert result.stderr == b""


def test_demo_set_up_runs_twice(tmp_path):
    """scripts/demo's set-up, twice on the same database: the second run adds nothing and fails nothing."""
    if not (REPO / ".venv" / "bin" / "autoprov").exists():
        pytest.skip("scripts/demo runs the repository's .venv (scripts/setup-venv)")
    env = dict(os.environ, AUTOPROV_DEMO_NO_SETUP="1", AUTOPROV_DEMO_SETUP_ONLY="1",
               AUTOPROV_DATABASE_URL=f"sqlite:///{tmp_path}/demo.db", AUTOPROV_FIRMWARE_ROOT=str(tmp_path / "fw"))
    env["AUTOPROV_CONFIG"] = str(tmp_path / "empty.toml")  # not /etc/autoprov/autoprov.toml if there is one
    (tmp_path / "empty.toml").write_text("")
    runs = [subprocess.run(["bash", str(REPO / "scripts" / "demo")], env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert "added phone 0004f2000330" in runs[0].stdout
    assert "added" not in runs[1].stdout and "Error" not in runs[1].stderr
    (tmp_path / "demo.toml").write_text(f"[database]\nurl = 'sqlite:///{tmp_path}/demo.db'\n")
    listing = cli("phone", "list", config=tmp_path / "demo.toml")
    assert [line.split("\t")[0] for line in listing.stdout.splitlines()] == ["0004f2000330", "0004f2004000"]


def test_serve_on_a_busy_port_is_one_line(tmp_path, settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "autoprov.toml", settings, port)
        result = autoprov("serve", config=config, check=False)
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_serve_before_init_warns_and_an_outage_logs_one_line_per_cause(tmp_path, settings):
    """The database is there but never initialised: serve says so at start; phones asking get 503 and the
    log gets a line per cause (per worker) with no traceback, not a traceback per request."""
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    # As installed: workers get [http] shutdown_timeout to stop (the test default 0 kills them at once, and a
    # killed worker cannot write, nor log, what it buffered).
    config.write_text(config.read_text().replace("shutdown_timeout = 0", "shutdown_timeout = 5"))
    log_path = tmp_path / "serve.log"
    with serve_process(config, port, log_path) as proc:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(20):
            assert get(port, f"/{MAC}.cfg", conn) == 404  # its sighting cannot be written
            assert get(port, f"/prov/polycom_ip330/{MAC}-phone.cfg", conn) == 503
        # SIGTERM, as systemd stops it: it ends by itself (gunicorn waits [http] shutdown_timeout at most for
        # requests in progress; none here).
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    log = log_path.read_text()
    where = (f"SQLite {tmp_path}/autoprov.db" if settings.database.url.startswith("sqlite:")
             else "postgresql://postgres:***@")
    assert f"autoprov serve: configuration {config}; database {where}" in log
    assert "WARNING: the database has no autoprov schema: run `autoprov init` (until then phones get 503)" in log
    assert "Traceback" not in log
    sighting_lines = [line for line in log.splitlines() if "could not write" in line and "sighting(s)" in line]
    unavailable = [line for line in log.splitlines() if "database unavailable (GET " in line]
    assert 1 <= len(sighting_lines) <= 2 and 1 <= len(unavailable) <= 2, log  # 2 workers, one line each
