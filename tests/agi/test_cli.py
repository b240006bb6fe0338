"""``autoprov cid ...`` and ``autoprov route ...``: the tables admins manage from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from autoprov.agi.tables import CallerName, Route
from autoprov.agi.testing import fastagi_call
from autoprov.cli import build_cli
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site


@pytest.fixture
def run(tmp_path: Path, agi_site: Site):  # noqa: ANN201
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{agi_site.settings.database.url}"\n')
    cli = build_cli(build_plugin_manager(load_entry_points=False))

    def run(*args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def test_cid_add_list_remove(run, agi_site: Site) -> None:  # noqa: ANN001
    run("cid", "add", "(555) 123-4567", "Acme Sales")
    run("cid", "add", "5550001", "First")
    run("cid", "add", "555-0001", "Replaced")  # same number: the name is replaced
    assert run("cid", "list").output == "5550001\tReplaced\n5551234567\tAcme Sales\n"
    run("cid", "remove", "5550001")
    with agi_site.db.connection_context():
        assert [(r.number, r.name) for r in CallerName.select()] == [("5551234567", "Acme Sales")]
    assert "no caller-ID name" in run("cid", "remove", "5550001", ok=False).output


@pytest.mark.parametrize("number, name", [("555;1", "x"), ("5551", "two\nlines"), ("5551", ""), ("5551", "x" * 81)])
def test_cid_add_refuses_bad_values(run, number: str, name: str) -> None:  # noqa: ANN001
    assert "Error:" in run("cid", "add", number, name, ok=False).output


def test_route_add_list_remove(run, agi_site: Site) -> None:  # noqa: ANN001
    from autoprov.tables import Extension

    with agi_site.db.connection_context():
        Extension.create(user_id="1001", secret="s3cret")
    result = run("route", "add", "_555XXXX", "group", "1001,1002", "--priority", "10", "--days", "mon-fri",
                 "--from", "09:00", "--to", "17:00", "--time-zone", "America/New_York",
                 "--fallback", "external:+15559876", "--description", "office hours")
    assert result.stdout == "route 1: _555XXXX -> group 1001,1002\n"
    assert result.stderr == "warning: extension 1002 is not provisioned\n"  # a warning, not a refusal
    run("route", "add", "5551000", "extension", "1099")
    run("route", "add", "_1-800-NXXXXXX", "extension", "1099")
    listing = run("route", "list").stdout.splitlines()
    assert listing[0].split("\t")[:4] == ["1", "10", "_555XXXX", "group 1001,1002 else external +15559876"]
    assert "mon-fri 09:00-17:00 America/New_York" in listing[0]
    assert listing[1].split("\t")[2:5] == ["5551000", "extension 1099", "always"]
    run("route", "remove", "1")
    with agi_site.db.connection_context():
        assert [r.pattern for r in Route.select()] == ["5551000", "_1-800-NXXXXXX"]
    assert "no route 1" in run("route", "remove", "1", ok=False).output


@pytest.mark.parametrize(
    "args",
    [
        ("5551000", "extension", "1001&PJSIP/x"),
        ("5551000", "voicemail", "1001"),
        ("555 1000", "extension", "1001"),
        ("_555[", "extension", "1001"),
        ("_9.5", "extension", "1001"),  # Asterisk would ignore the 5: refused rather than misread
        ("5551000", "extension", "1001", "--days", "weekdays"),
        ("5551000", "extension", "1001", "--from", "25:00"),
        ("5551000", "extension", "1001", "--from", "09:00", "--to", "09:00"),  # never holds
        ("5551000", "extension", "1001", "--from", "24:00"),  # 24:00 only ends a window
        ("5551000", "extension", "1001", "--to", "00:00"),  # from 00:00 (the default) to 00:00
        ("5551000", "extension", "1001", "--time-zone", "Mars/Olympus"),
        ("5551000", "extension", "1001", "--fallback", "1002"),
    ],
)
def test_route_add_refuses_what_the_script_could_not_dial(run, args: tuple[str, ...]) -> None:  # noqa: ANN001
    assert run("route", "add", *args, ok=False).exit_code != 0


def test_agi_commands_are_listed(run) -> None:  # noqa: ANN001
    out = run("agi", "--help").output
    assert "serve" in out and "run" in out


def test_route_add_refuses_a_backwards_range_with_one_line(run) -> None:  # noqa: ANN001
    result = run("route", "add", "_[5-1]X", "extension", "1001", ok=False)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # not a traceback
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "_[5-1]X" in result.output


def test_route_add_says_why_a_window_is_refused(run) -> None:  # noqa: ANN001
    out = run("route", "add", "5551000", "extension", "1001", "--from", "09:00", "--to", "09:00", ok=False).output
    assert out == "Error: an empty time window: from 09:00 to 09:00\n"
    out = run("route", "add", "5551000", "extension", "1001", "--from", "24:00", ok=False).output
    assert out == "Error: 24:00 can only end a window (--to); start at 00:00\n"
    run("route", "add", "5551000", "extension", "1001", "--from", "22:00", "--to", "00:00")  # till midnight
    run("route", "add", "5551000", "extension", "1001", "--from", "00:00", "--to", "24:00")  # all day


def test_agi_serve_shuts_down_once_on_sigterm(tmp_path: Path, agi_site: Site) -> None:
    """SIGTERM: no new calls, the live one ended after --grace with the failure line, each step logged once."""
    with agi_site.db.connection_context():
        Route.create(pattern="5551000", dest_type="extension", destination="1001")
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{agi_site.settings.database.url}"\n')
    env = dict(os.environ, AUTOPROV_CONFIG=str(config))
    env.pop("AUTOPROV_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "autoprov", "agi", "serve", "--port", "0", "--grace", "0.2"],
                            env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        banner = proc.stderr.readline()  # FastAGI on 127.0.0.1:PORT: cid-name, route
        assert banner.startswith("FastAGI on 127.0.0.1:"), banner + proc.stderr.read()
        port = int(banner.split(":")[1])
        dialing, hang_up = threading.Event(), threading.Event()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(fastagi_call, "127.0.0.1", port, "route", env={"extension": "5551000"},
                                  on_exec=lambda *_: (dialing.set(), hang_up.wait(60)))
            try:
                assert dialing.wait(20)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(60) == 0
            finally:
                hang_up.set()
            t = pending.result(30)
        log = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert t.status == "FAILURE" and t.executed == [("Dial", "PJSIP/1001,30")]
    assert log.count("signal 15: no new calls") == 1, log
    assert log.count("after shutdown began; ending it") == 1, log
