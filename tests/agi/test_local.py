"""``autoprov agi run``: a real process whose stdin/stdout are the AGI streams, as Asterisk's AGI() runs it."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from autoprov.agi.tables import CallerName, Route
from autoprov.agi.testing import local_call, wait_listening
from autoprov.config import DEFAULT_CONFIG_PATH
from autoprov.site import Site


def agi_run(tmp_path: Path, database_url: str, script: str, *extra: str, **knobs: object):  # noqa: ANN201
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[time]\ntime_zone = "Europe/London"\n'
                      f'[agi]\nlog = "{tmp_path}/agi.log"\n')  # not the machine's syslog
    argv = [sys.executable, "-m", "autoprov", "-vv", "--config", str(config), "agi", "run", script, *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    return local_call(argv, process_env=env, **knobs)  # type: ignore[arg-type]


def test_local_cid_name(tmp_path: Path, agi_site: Site) -> None:
    with agi_site.db.connection_context():
        CallerName.create(number="5551234", name="Acme Sales")
    t, proc = agi_run(tmp_path, agi_site.settings.database.url, "cid-name", env={"callerid": "5551234"})
    assert t.commands == [["SET", "VARIABLE", "CALLERID(name)", "Acme Sales"]]  # nothing else on stdout
    assert t.status == "SUCCESS" and proc.returncode == 0
    assert b'>> SET VARIABLE "CALLERID(name)" "Acme Sales"' in proc.stderr  # debug log: stderr only


def test_local_route_with_arguments_and_a_sighup(tmp_path: Path, agi_site: Site) -> None:
    with agi_site.db.connection_context():
        Route.create(pattern="5551000", dest_type="extension", destination="1001")
    t, proc = agi_run(tmp_path, agi_site.settings.database.url, "route", "tech=IAX2",
                      env={"extension": "5551000"}, args=("agi", "run", "route", "tech=IAX2"), hangup_at=3)
    assert t.executed == [("Dial", "IAX2/1001,30")]
    assert t.commands[-1][:2] == ["SET", "VARIABLE"]  # dead-safe after the hangup
    assert proc.returncode == 0  # Asterisk's SIGHUP (local_call sends a real one) is handled, not fatal


def test_local_with_the_database_down_still_speaks_agi(tmp_path: Path) -> None:
    (tmp_path / "down.db").mkdir()
    t, proc = agi_run(tmp_path, f"sqlite:///{tmp_path}/down.db", "cid-name", env={"callerid": "5551234"})
    assert t.commands == [] and t.status == "FAILURE"
    assert proc.returncode == 1


def test_local_with_a_broken_configuration_still_speaks_agi(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[database\nurl = ")
    argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "cid-name"]
    t, proc = local_call(argv, env={"callerid": "5551234"})
    assert t.status == "FAILURE" and t.commands == []
    assert b"broken.toml" in proc.stderr  # the reason, in Asterisk's log


def test_local_unknown_script(tmp_path: Path, agi_site: Site) -> None:
    t, proc = agi_run(tmp_path, agi_site.settings.database.url, "no-such-script")
    assert t.status == "FAILURE" and proc.returncode == 1


def test_agi_serve_as_a_process_finishes_live_calls_on_sigterm(tmp_path: Path, agi_site: Site) -> None:
    import signal
    import socket
    import subprocess
    import threading
    import time

    from autoprov.agi.testing import ScriptedAsterisk, environment, fastagi_call

    with agi_site.db.connection_context():
        CallerName.create(number="5551234", name="Acme Sales")
        Route.create(pattern="5551000", dest_type="extension", destination="1001")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{agi_site.settings.database.url}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    proc = subprocess.Popen([sys.executable, "-m", "autoprov", "--config", str(config), "agi", "serve",
                             "--port", str(port), "--grace", "20"], env=env, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        t = fastagi_call("127.0.0.1", port, "cid-name", env={"callerid": "5551234"})
        assert t.variables["CALLERID(name)"] == "Acme Sales"
        # A call in the middle of a 2-second Dial when the service is stopped still completes.
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        peer = ScriptedAsterisk(sock.recv, sock.sendall, exec_delay=2.0, variables={"DIALSTATUS": "ANSWER"})
        call = threading.Thread(target=lambda: peer.run(environment("route", extension="5551000")))
        call.start()
        while not peer.t.executed:  # the Dial is under way
            assert call.is_alive()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        call.join(30)
        sock.close()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert peer.t.variables["ROUTE_STATUS"] == "ROUTED" and peer.t.status == "SUCCESS"


def test_local_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    t, proc = agi_run(tmp_path, f"sqlite:///{missing}", "cid-name", env={"callerid": "5551234"})
    assert t.status == "FAILURE" and t.commands == []
    assert not missing.exists()
    assert f"no SQLite database at {missing}".encode() in proc.stderr


@pytest.mark.skipif(DEFAULT_CONFIG_PATH.exists(), reason=f"this machine has {DEFAULT_CONFIG_PATH}")
def test_local_without_a_configuration_file_creates_nothing(tmp_path: Path) -> None:
    # Asterisk runs the program in its own directory, without AUTOPROV_CONFIG: the embedded default
    # (./var/autoprov.db) is not the site's database, and must not be created there.
    argv = [sys.executable, "-m", "autoprov", "agi", "run", "cid-name"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    t, proc = local_call(argv, env={"callerid": "5551234"}, process_env=env, cwd=str(tmp_path))
    assert t.status == "FAILURE" and list(tmp_path.iterdir()) == []
    assert str(DEFAULT_CONFIG_PATH).encode() in proc.stderr and b"AUTOPROV_CONFIG" in proc.stderr


def test_local_logs_to_the_file_in_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "down.db").mkdir()
    logfile = tmp_path / "agi.log"
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/down.db"\n[agi]\nlog = "{logfile}"\n')
    argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "cid-name"]
    t, proc = local_call(argv, env={"callerid": "5551234"})
    assert t.status == "FAILURE"
    text = logfile.read_text()
    assert "autoprov-agi[" in text and "ERROR" in text and "down.db" in text, text


def test_local_logs_to_syslog(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(path)
        syslog.settimeout(10)
        config = tmp_path / "autoprov.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/none.db"\n[agi]\nlog = "syslog:{path}"\n')
        argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "cid-name"]
        t, proc = local_call(argv, env={"callerid": "5551234"})
        assert t.status == "FAILURE"
        record = syslog.recv(65536).decode()
    assert record.startswith("<27>autoprov-agi[")  # facility daemon (3), severity error (3)
    assert "no SQLite database" in record
