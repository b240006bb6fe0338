"""After a CLI edit, the phones whose own files changed are named (not every phone sharing the extension) with
how to notify them; ``--notify`` sends check-sync at once through the core hook, here to SIPp at the address
Asterisk's AMI (the scripted peer) says the phone registered from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.zerotouch.sqlite import database_url  # noqa: F401  (SQLite only)
from tests.zerotouch.test_notify import Sipp, header
from tests.zerotouch.test_notify_ami import AmiPeer, ami_config, contact

A, B, C = "0004f2aaaa01", "001565aaaa02", "0004f2aaaa03"
T46S = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:aa:02"



@pytest.fixture
def config(tmp_path: Path, settings, site) -> Path:
    """1001 on A (IP 330) and B (T46S), 1002 on C."""
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    for ext in ("1001", "1002", "1003"):
        autoprov("extension", "add", ext, "--secret", f"pw-{ext}", config=path)
    autoprov("phone", "add", A, "--model", "polycom_ip330", "--line", "1001", config=path)
    autoprov("phone", "add", B, "--model", "yealink_t46s", "--line", "1001", config=path)
    autoprov("phone", "add", C, "--model", "polycom_ip330", "--line", "1002", config=path)
    return path


def test_only_phones_whose_files_change_are_named(config):
    out = autoprov("extension", "update", "1001", "--secret", "new", config=config).stdout.splitlines()
    assert out == ["updated extension 1001: secret", f"config changed for 2 phone(s): {A} {B}",
                   f"  they read it at their next poll or reboot; now: autoprov notify {A} {B} "
                   "(or --notify on the edit)"]
    # Shared by A and B, but only the company directory reads it: neither phone's own files change.
    out = autoprov("extension", "update", "1001", "--no-directory", config=config).stdout.splitlines()
    assert out[1:] == ["no phone's config changed"]
    assert autoprov("phone", "update", A, "--notes", "desk 4", config=config).stdout.splitlines()[1:] == \
        ["no phone's config changed"]
    out = autoprov("phone", "update", A, "--line", "1003", config=config).stdout.splitlines()
    assert out[1] == f"config changed for 1 phone(s): {A}"
    # The same value again changes nothing.
    assert autoprov("extension", "update", "1002", "--secret", "pw-1002", config=config).stdout.splitlines()[1:] == \
        ["no phone's config changed"]


def test_a_new_phone_counts_once_it_has_asked(config, tmp_path, client):
    assert client.get("/001565aaaa09.cfg", headers={"User-Agent": T46S.replace("aa:02", "aa:09")}).status_code == 404
    csv = tmp_path / "new.csv"
    csv.write_text("extension,secret,mac,model\n2001,pw-2001,001565aaaa09,yealink_t46s\n"
                   "2002,pw-2002,0004f2aaaa0a,polycom_ip330\n")
    out = autoprov("import", str(csv), config=config).stdout.splitlines()
    assert out[1] == "config changed for 1 phone(s): 001565aaaa09"  # 0004f2aaaa0a never asked: nothing to tell


def test_notify_after_an_edit_reaches_the_registered_phone(config, tmp_path):
    sipp = Sipp(tmp_path, "200 OK")
    peer = AmiPeer(contacts=(contact("1001", f"sip:1001@127.0.0.1:{sipp.port}"),))
    try:
        ami_config(config, peer.port).write_text(config.read_text() + 'registrations = "ami"\n')
        result = autoprov("phone", "update", A, "--time-zone", "Europe/Paris", "--notify", config=config)
        assert sipp.finish() == 0, sipp.output.read_text()
    finally:
        peer.close()
        if sipp.process.poll() is None:
            sipp.process.kill()
    out = result.stdout.splitlines()
    assert out[1] == f"config changed for 1 phone(s): {A}"
    assert out[2] == (f"  {A} 127.0.0.1:{sipp.port} (registered (AMI)): sent NOTIFY sip:1001@127.0.0.1:{sipp.port} "
                      "Event: check-sync -> 200 OK")
    assert header(sipp.received(), "Event") == "check-sync"


def test_notify_failure_keeps_the_edit(config):
    result = autoprov("extension", "update", "1002", "--first-name", "Cy", "--notify", config=config)
    assert result.returncode == 0
    assert result.stdout.splitlines()[1:] == [
        f"config changed for 1 phone(s): {C}",
        f"  {C}: not sent: never seen and not registered: no address to send to (FAILED)"]
    assert "1 of 1 phone(s) not notified; the edit itself is saved" in result.stderr
    assert "Cy" in autoprov("extension", "show", "1002", config=config).stdout
