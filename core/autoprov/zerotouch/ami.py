"""check-sync through Asterisk's Manager Interface: ``PJSIPNotify`` to each phone's address, sent by Asterisk
(phones that accept a NOTIFY only from their registrar get it from there).

The AMI is a line protocol over TCP: a banner line (``Asterisk Call Manager/5.0.x``), then packets of
``Key: Value`` lines ended by a blank line. Every action carries an ``ActionID`` and its answer is the packet
echoing it; events (packets without it) are skipped. A refused login, a dropped connection and a peer that
stops answering each end the session with an AmiError saying which.
"""

from __future__ import annotations

import itertools
import socket
import time

BANNER_PREFIX = "Asterisk Call Manager/"


class AmiError(Exception):
    """The AMI session failed: the message says how (refused login, connection lost, timeout, ...)."""


def _clean(value: str, what: str) -> str:
    """A header value: a CR or LF would end the line and inject a header of the caller's choosing."""
    if "\r" in value or "\n" in value:
        raise AmiError(f"{what} contains a line break")
    return value


class AmiClient:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._buffer = b""
        self.broken = False  # the session failed: no Logoff on close
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise AmiError(f"cannot connect to the AMI at {host}:{port}: {exc.strerror or exc}") from None
        self.banner = self._line()
        if not self.banner.startswith(BANNER_PREFIX):
            self.close()
            raise AmiError(f"{host}:{port} is not an Asterisk Manager Interface (it said {self.banner[:80]!r})")

    def _read(self, deadline: float) -> None:
        self.broken = True  # until this read succeeds
        left = deadline - time.monotonic()
        if left <= 0:
            raise AmiError(f"no answer from the AMI within {self.timeout:g} s")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise AmiError(f"no answer from the AMI within {self.timeout:g} s") from None
        except OSError as exc:
            raise AmiError(f"the AMI connection failed: {exc.strerror or exc}") from None
        if not chunk:
            raise AmiError("the AMI closed the connection")
        self._buffer += chunk
        self.broken = False

    def _line(self) -> str:
        deadline = time.monotonic() + self.timeout
        while b"\r\n" not in self._buffer:
            self._read(deadline)
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def _packet(self, deadline: float) -> dict[str, str]:
        while b"\r\n\r\n" not in self._buffer:
            self._read(deadline)
        raw, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        packet: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            packet.setdefault(key.strip().lower(), value.strip())
        return packet

    def action(self, name: str, *headers: tuple[str, str]) -> dict[str, str]:
        """Send an action and return the answer that echoes its ActionID (keys lowercased)."""
        action_id = f"autoprov-{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {_clean(value, key)}" for key, value in headers]
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        except OSError as exc:
            raise AmiError(f"the AMI connection failed: {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            packet = self._packet(deadline)
            if packet.get("actionid") == action_id and "response" in packet:
                return packet

    def action_list(self, name: str, *headers: tuple[str, str]) -> list[dict[str, str]]:
        """An action answered by a list of events (``Response: Success``, the events carrying its ActionID,
        then one with ``EventList: Complete``): the events before that last one. AmiError if refused."""
        answer = self.action(name, *headers)
        if answer.get("response", "").lower() != "success":
            raise AmiError(f"{name} refused: {answer.get('message', 'no reason given')}")
        action_id = answer["actionid"]
        events = []
        deadline = time.monotonic() + self.timeout
        while True:
            packet = self._packet(deadline)
            if packet.get("actionid") != action_id or "event" not in packet:
                continue
            if packet.get("eventlist", "").lower() == "complete":
                return events
            events.append(packet)

    def login(self, user: str, secret: str) -> None:
        answer = self.action("Login", ("Username", user), ("Secret", secret), ("Events", "off"))
        if answer.get("response", "").lower() != "success":
            raise AmiError(f"AMI login refused for {user!r}: {answer.get('message', 'no reason given')}")

    def close(self) -> None:
        try:
            if not self.broken:
                self.action("Logoff")
        except AmiError:
            pass
        finally:
            self.sock.close()

    def __enter__(self) -> AmiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pjsip_notify(client: AmiClient, uri: str, event: str) -> tuple[bool, str]:
    """Ask Asterisk to send a NOTIFY with ``event`` to ``uri``; whether it accepted, and its message."""
    answer = client.action("PJSIPNotify", ("URI", uri), ("Variable", f"Event={event}"))
    ok = answer.get("response", "").lower() == "success"
    return ok, f"{answer.get('response', '?')}: {answer.get('message', '')}".rstrip(": ")
