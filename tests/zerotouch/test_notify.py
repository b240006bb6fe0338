"""``autoprov notify`` sends check-sync to a real SIP stack (SIPp from Debian's sip-tester, acting as the phone
on a private loopback port) at the address the phone was last seen from; ``autoprov asterisk notify-conf``."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.phones import headers

MAC = "0004f2aabbcc"
SCENARIO = Path(__file__).with_name("sipp_uas.xml")


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("sipp is not installed (bash scripts/install-zerotouch-packages)")
        pytest.skip("sipp is not installed (bash scripts/install-zerotouch-packages)")
    return found


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def config(tmp_path: Path, settings, client) -> Path:
    """A phone with line 1001 that fetched its config from 127.0.0.1 (so it has a last known address)."""
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    autoprov("extension", "add", "1001", "--secret", "pw", config=path)
    autoprov("extension", "add", "1002", "--secret", "pw2", config=path)
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", "--line", "1002", config=path)
    assert client.get(f"/prov/polycom_ip330/{MAC}-phone.cfg", headers=headers("polycom_ip330")).status_code == 200
    return path


class Sipp:
    """SIPp as the phone's SIP stack: answers one NOTIFY with ``status`` and logs every message it sees."""

    def __init__(self, tmp_path: Path, status: str) -> None:
        scenario = tmp_path / "uas.xml"
        scenario.write_text(SCENARIO.read_text(encoding="utf-8").replace("@STATUS@", status), encoding="utf-8")
        self.port = free_udp_port()
        self.messages = tmp_path / "sipp-messages.log"
        self.output = tmp_path / "sipp-output.log"
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                [sipp_binary(), "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(self.port), "-m", "1",
                 "-timeout", "30", "-timeout_error", "-trace_msg", "-message_file", str(self.messages), "-nostdin"],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        self.wait_listening()

    def wait_listening(self) -> None:
        """Until SIPp holds its port (a NOTIFY sent before would meet a closed port: ICMP unreachable)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output.read_text()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", self.port))
                except OSError:
                    return
            time.sleep(0.02)  # polling a process start-up, with the deadline above
        raise AssertionError(f"SIPp did not bind 127.0.0.1:{self.port}")

    def finish(self) -> int:
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def received(self) -> str:
        """The one request SIPp received, as it logged it."""
        log = self.messages.read_text(encoding="utf-8", errors="replace")
        (request,) = re.findall(r"UDP message received \[\d+\] bytes :\n\n(.*?)\n\n---", log + "\n---", re.S)
        return request


@pytest.fixture
def sipp(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sipp]:
    peer = Sipp(tmp_path, getattr(request, "param", "200 OK"))
    yield peer
    if peer.process.poll() is None:
        peer.process.kill()
        peer.process.wait()


def header(message: str, name: str) -> str:
    (value,) = re.findall(rf"^{name}: (.*)$", message, re.M)
    return value.strip()


@pytest.mark.parametrize("reboot,event", [(False, "check-sync"), (True, "check-sync;reboot=true")])
def test_sipp_receives_check_sync_and_its_answer_is_reported(config, sipp, reboot, event):
    args = ["notify", MAC, "--port", str(sipp.port), "--timeout", "20"] + (["--reboot"] if reboot else [])
    result = autoprov(*args, config=config)
    assert sipp.finish() == 0, sipp.output.read_text()  # SIPp's own checks: Event and Content-Length
    (line,) = result.stdout.splitlines()
    assert line == (f"{MAC} 127.0.0.1:{sipp.port}: sent NOTIFY sip:1001@127.0.0.1:{sipp.port} Event: {event} "
                    "-> 200 OK")
    request = sipp.received()
    assert request.splitlines()[0] == f"NOTIFY sip:1001@127.0.0.1:{sipp.port} SIP/2.0"
    assert header(request, "Event") == event
    assert header(request, "To") == f"<sip:1001@127.0.0.1:{sipp.port}>"
    assert re.fullmatch(r"<sip:autoprov@127\.0\.0\.1:\d+>;tag=[0-9a-f]+", header(request, "From"))
    assert header(request, "CSeq") == "1 NOTIFY"
    assert header(request, "Content-Length") == "0" and request.rstrip("\n").endswith("Content-Length: 0")  # no body


@pytest.mark.parametrize("sipp", ["481 Call/Transaction Does Not Exist"], indirect=True)
def test_a_refusal_is_reported_and_the_exit_status_says_so(config, sipp):
    result = autoprov("notify", "--all", "--port", str(sipp.port), "--timeout", "20", config=config, check=False)
    assert sipp.finish() == 0
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith("-> 481 Call/Transaction Does Not Exist (FAILED)")
    assert result.stderr.strip() == "1 of 1 phone(s) failed"


def test_silence_is_a_timeout_and_an_unseen_phone_is_not_sent(config):
    autoprov("phone", "add", "0004f2000001", "--model", "polycom_ip330", config=config)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # receives, never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = autoprov("notify", "--model", "polycom_ip330", "--port", str(port), "--timeout", "1.2",
                          config=config, check=False)
        sent = []
        silent.settimeout(0)
        while True:
            try:
                sent.append(silent.recv(65535))
            except BlockingIOError:
                break
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "0004f2000001: not sent: never seen and not registered: no address to send to (FAILED)",
        f"{MAC} 127.0.0.1:{port}: sent NOTIFY sip:1001@127.0.0.1:{port} Event: check-sync -> no answer within "
        "1.2 s (FAILED)",
    ]
    assert result.stderr.strip() == "2 of 2 phone(s) failed"
    # Retransmitted on RFC 3261's timer E (0.5 s, then 1 s): the same request each time.
    assert len(sent) >= 2 and len(set(sent)) == 1 and sent[0].startswith(b"NOTIFY ")


def test_nothing_listening_is_reported_at_once(config):
    port = free_udp_port()
    result = autoprov("notify", MAC, "--port", str(port), "--timeout", "20", config=config, check=False)
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith("-> port unreachable (nothing listens there) (FAILED)")


@pytest.mark.parametrize("args,message", [
    ((), "name the phones"),
    ((MAC, "--all"), "name the phones"),
    (("--model", "no_such_model"), "model no_such_model is not installed"),
    (("zz:zz",), "not a MAC address"),
])
def test_bad_selections_are_refused(config, args, message):
    result = autoprov("notify", *args, config=config, check=False)
    assert result.returncode != 0 and message in result.stderr


def test_notify_conf_has_a_section_per_event_and_a_reboot_variant(config):
    text = autoprov("asterisk", "notify-conf", config=config).stdout
    sections = re.findall(r"^\[([^\]]+)\]\nEvent=>(.*)$", text, re.M)
    assert sections == [("autoprov-check-sync", "check-sync"),
                        ("autoprov-check-sync-reboot", "check-sync\\;reboot=true")]
    assert "polycom_ip330" in text
