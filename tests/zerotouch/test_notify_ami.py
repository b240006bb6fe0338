"""``autoprov notify --via ami``: PJSIPNotify through Asterisk's Manager Interface, against a scripted AMI peer
that speaks the protocol as Asterisk does (banner, Response before ActionID, events in between, Goodbye on
Logoff, the connection closed after a refused login); refused login, dropped connection, silence."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.phones import headers

MACS = ("0004f2aabbcc", "0004f2aabbcd")


class AmiPeer:
    """One AMI connection at a time on a loopback port; ``mode``: ok, refuse, drop (close on PJSIPNotify),
    silent (never answer PJSIPNotify), notify-error (Asterisk could not send it), not-ami (another banner)."""

    def __init__(self, mode: str = "ok", contacts: tuple[dict[str, str], ...] = ()) -> None:
        self.mode = mode
        self.contacts = contacts  # ContactList events PJSIPShowContacts lists (fields as Asterisk names them)
        self.actions: list[dict[str, str]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:  # one connection after another, as Asterisk takes them
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        self.conns.append(conn)
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" if self.mode == "not-ami" else b"Asterisk Call Manager/5.0.2\r\n")
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                raw, buffer = buffer.split(b"\r\n\r\n", 1)
                action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n"))
                self.actions.append(action)
                if not self._answer(conn, action):
                    return

    def _answer(self, conn: socket.socket, action: dict[str, str]) -> bool:
        def reply(*lines: str) -> None:
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

        aid = f"ActionID: {action.get('ActionID', '')}"
        name = action["Action"]
        if name == "Login":
            if self.mode == "refuse" or action.get("Secret") != "s3cret":
                reply("Response: Error", aid, "Message: Authentication failed")
                return False  # Asterisk hangs up after a failed login
            reply("Response: Success", aid, "Message: Authentication accepted")
            reply("Event: FullyBooted", "Privilege: system,all", "Uptime: 12", "Status: Fully Booted")
        elif name == "PJSIPNotify":
            if self.mode == "drop":
                return False
            if self.mode == "silent":
                return True
            reply("Event: TestEvent", f"{aid}-not-a-response")  # an event is never the answer
            if self.mode == "notify-error":
                reply("Response: Error", aid, "Message: Unable to send NOTIFY")
            else:
                reply("Response: Success", aid, "Message: NOTIFY sent")
        elif name == "PJSIPShowContacts":  # a list: Success, one event per contact, then the Complete event
            reply("Response: Success", aid, "EventList: start",
                  "Message: A listing of Contacts follows, presented as ContactList events")
            for contact in self.contacts:
                reply("Event: ContactList", aid, "ObjectType: contact", *(f"{k}: {v}" for k, v in contact.items()))
            reply("Event: ContactListComplete", aid, "EventList: Complete", f"ListItems: {len(self.contacts)}")
        elif name == "Logoff":
            reply("Response: Goodbye", aid, "Message: Thanks for all the fish.")
            return False
        else:
            reply("Response: Error", aid, "Message: Invalid/unknown command")
        return True

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not, on Linux)
        except OSError:
            pass
        self.listener.close()
        for conn in self.conns:  # a session the client left open (silent mode) ends now, not at a timeout
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the scripted AMI peer did not stop"


@pytest.fixture
def phones(tmp_path: Path, settings, client) -> Path:
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    autoprov("extension", "add", "1001", config=path)
    autoprov("extension", "add", "1002", config=path)
    for mac, line in zip(MACS, ("1001", "1002"), strict=True):
        autoprov("phone", "add", mac, "--model", "polycom_ip330", "--line", line, config=path)
        assert client.get(f"/prov/polycom_ip330/{mac}-phone.cfg", headers=headers("polycom_ip330")).status_code == 200
    return path


def ami_config(path: Path, port: int, secret: str = "s3cret", timeout: float = 5.0) -> Path:
    text = path.read_text(encoding="utf-8")
    path.write_text(text + f'[asterisk]\nami_port = {port}\nami_user = "autoprov"\nami_secret = "{secret}"\n'
                    f"ami_timeout = {timeout}\n", encoding="utf-8")
    return path


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[AmiPeer]:
    p = AmiPeer(getattr(request, "param", "ok"))
    yield p
    p.close()


def test_each_phone_is_notified_through_asterisk(phones, peer):
    result = autoprov("notify", "--all", "--via", "ami", "--reboot", config=ami_config(phones, peer.port))
    peer.close()
    assert result.stdout.splitlines() == [
        f"{mac} via AMI 127.0.0.1:{peer.port}: sent PJSIPNotify URI: sip:{line}@127.0.0.1:5060 "
        "Event: check-sync;reboot=true -> Success: NOTIFY sent"
        for mac, line in zip(MACS, ("1001", "1002"), strict=True)]
    login, first, second, logoff = peer.actions
    assert (login["Action"], login["Username"], login["Secret"], login["Events"]) == ("Login", "autoprov", "s3cret",
                                                                                       "off")
    assert [(a["Action"], a["URI"], a["Variable"]) for a in (first, second)] == [
        ("PJSIPNotify", "sip:1001@127.0.0.1:5060", "Event=check-sync;reboot=true"),
        ("PJSIPNotify", "sip:1002@127.0.0.1:5060", "Event=check-sync;reboot=true")]
    assert logoff["Action"] == "Logoff"
    assert len({a["ActionID"] for a in peer.actions}) == 4  # each action its own ActionID


@pytest.mark.parametrize("peer,message", [
    ("refuse", "AMI login refused for 'autoprov': Authentication failed"),
    ("drop", "the AMI closed the connection"),
    ("silent", "no answer from the AMI within 0.5 s"),
    ("notify-error", "Error: Unable to send NOTIFY"),
    ("not-ami", "is not an Asterisk Manager Interface (it said 'SSH-2.0-OpenSSH_9.2')"),
], indirect=["peer"])
def test_a_failed_session_fails_every_phone_it_did_not_reach(phones, peer, message):
    result = autoprov("notify", *MACS, "--via", "ami", config=ami_config(phones, peer.port, timeout=0.5),
                      check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(" -> " in line and line.endswith(f"{message} (FAILED)") for line in lines), lines
    assert result.stderr.strip() == "2 of 2 phone(s) failed"
    if peer.mode == "refuse":
        assert [a["Action"] for a in peer.actions] == ["Login"]


def test_unreachable_ami_missing_login_and_an_injected_secret(phones):
    port = free_port()  # nothing listens there
    result = autoprov("notify", MACS[0], "--via", "ami", config=ami_config(phones, port), check=False)
    assert result.returncode == 1 and f"cannot connect to the AMI at 127.0.0.1:{port}" in result.stdout
    bare = phones.parent / "bare.toml"
    bare.write_text(phones.read_text(encoding="utf-8").split("[asterisk]")[0], encoding="utf-8")
    result = autoprov("notify", MACS[0], "--via", "ami", config=bare, check=False)
    assert result.returncode == 1 and "set [asterisk] ami_user and ami_secret" in result.stdout
    peer = AmiPeer()
    try:
        injected = ami_config(bare, peer.port, secret="x\\r\\nAction: Originate")
        result = autoprov("notify", MACS[0], "--via", "ami", config=injected, check=False)
    finally:
        peer.close()
    assert result.returncode == 1 and "Secret contains a line break" in result.stdout
    assert all(a["Action"] != "Originate" for a in peer.actions)


def contact(aor: str, uri: str, via: str = "", via_port: str = "0") -> dict[str, str]:
    """A ContactList event's fields as Asterisk 18-20 sends them (ObjectName is the contact's id)."""
    return {"ObjectName": f"{aor};@0f3c5a2b9e8d7c6b5a4f3e2d1c0b9a8f", "ViaAddr": via, "ViaPort": via_port,
            "QualifyTimeout": "3.000000", "CallId": "3c2d9a1e-5f4b", "RegServer": "", "PruneOnBoot": "no",
            "Path": "", "Endpoint": aor, "AuthenticateQualify": "false", "Uri": uri, "QualifyFrequency": "0",
            "UserAgent": "PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413", "ExpirationTime": "1796000000",
            "OutboundProxy": "", "Status": "NonQualified", "RoundtripUsec": "N/A"}


def test_registrations_from_the_ami_come_before_the_last_sighting(phones):
    """Both phones were last seen at 127.0.0.1; Asterisk knows where they registered: 1001 once, at
    10.20.30.40:5062, which is used; 1002 twice (two phones share it), neither at the phone's last seen address:
    the contact cannot be told apart, so the sighting is used."""
    peer = AmiPeer(contacts=(contact("1001", "sip:1001@10.20.30.40:5062;transport=udp", "10.20.30.40", "5062"),
                             contact("1002", "sip:1002@10.9.9.9:5060"), contact("1002", "sip:1002@10.9.9.8"),
                             contact("9999", "sip:9999@not-an-address")))
    try:
        config = ami_config(phones, peer.port)
        config.write_text(config.read_text(encoding="utf-8") + 'registrations = "ami"\nnotify_via = "ami"\n')
        result = autoprov("notify", *MACS, config=config)
    finally:
        peer.close()
    assert result.stdout.splitlines() == [
        f"{MACS[0]} via AMI 127.0.0.1:{peer.port} (registered (AMI)): sent PJSIPNotify URI: sip:1001@10.20.30.40:5062 "
        "Event: check-sync -> Success: NOTIFY sent",
        f"{MACS[1]} via AMI 127.0.0.1:{peer.port}: sent PJSIPNotify URI: sip:1002@127.0.0.1:5060 "
        "Event: check-sync -> Success: NOTIFY sent"]
    assert [a["Action"] for a in peer.actions] == ["Login", "PJSIPShowContacts", "Logoff", "Login", "PJSIPNotify",
                                                   "PJSIPNotify", "Logoff"]


def test_registrations_unreadable_fall_back_to_sightings(phones):
    peer = AmiPeer(mode="refuse")
    try:
        config = ami_config(phones, peer.port)
        config.write_text(config.read_text(encoding="utf-8") + 'registrations = "ami"\n')
        result = autoprov("notify", MACS[0], "--port", str(free_port()), "--timeout", "0.3", config=config,
                          check=False)
    finally:
        peer.close()
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{MACS[0]} 127.0.0.1:") and "[registrations not read (ami: AMI login refused" in line
