"""check-sync without Asterisk: a SIP NOTIFY sent straight to a phone's last known address over UDP, and what
came back (a final response, or nothing before the deadline); ``pjsip_notify.conf`` sections for Asterisk.

The Event comes from the phone's model (``DeviceModel.check_sync_event``); ``--reboot`` adds ``;reboot=true``,
the parameter Asterisk's sample notify configuration uses for phones that should restart, not only re-read.
Retransmission follows RFC 3261's timer E for a non-INVITE request over UDP (500 ms, doubling to 4 s).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from autoprov.devices import DeviceModel

SIP_PORT = 5060
T1, T2 = 0.5, 4.0
# RFC 3261 token characters: what an Event package name may hold.
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
REBOOT_PARAM = ";reboot=true"


class NotifyError(ValueError):
    pass


def event_of(model: DeviceModel, reboot: bool) -> str:
    """The Event header value for ``model``'s phones; NotifyError if the model declares none (or a bad one)."""
    event = model.check_sync_event
    if not event:
        raise NotifyError(f"model {model.name} declares no check-sync event")
    if not _TOKEN.fullmatch(event):
        raise NotifyError(f"model {model.name}: check-sync event {event!r} is not a SIP token")
    return event + (REBOOT_PARAM if reboot else "")


@dataclass(frozen=True)
class Target:
    mac: str
    host: str
    port: int
    user: str  # the Request-URI's user: the phone's first line, else its MAC
    event: str
    found_by: str = "last seen"  # where the address comes from: its registration or its last sighting


@dataclass(frozen=True)
class Outcome:
    target: Target
    request: str  # the request line and the Event, for the report
    status: int | None  # the final response's code; None: none came
    reason: str  # the response's reason phrase, or why none came

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_request(target: Target, local_host: str, local_port: int, call_id: str, branch: str, tag: str) -> bytes:
    uri = f"sip:{target.user}@{uri_host(target.host)}:{target.port}"
    local = f"{uri_host(local_host)}:{local_port}"
    lines = [
        f"NOTIFY {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {local};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:autoprov@{local}>;tag={tag}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 NOTIFY",
        f"Contact: <sip:autoprov@{local}>",
        f"Event: {target.event}",
        "Subscription-State: terminated",
        "User-Agent: autoprov",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


_STATUS = re.compile(rb"^SIP/2\.0 (\d{3}) ?([^\r\n]*)")


def _header(message: bytes, name: str) -> str | None:
    for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.decode("utf-8", "replace").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def send_notify(target: Target, timeout: float) -> Outcome:
    """Send the NOTIFY to ``target`` and wait up to ``timeout`` seconds for its final response."""
    family = socket.AF_INET6 if ipaddress.ip_address(target.host).version == 6 else socket.AF_INET
    call_id = f"{secrets.token_hex(12)}@autoprov"
    branch, tag = f"z9hG4bK{secrets.token_hex(8)}", secrets.token_hex(6)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((target.host, target.port))  # also picks the local address the phone can answer to
        local_host, local_port = sock.getsockname()[:2]
        packet = build_request(target, local_host, local_port, call_id, branch, tag)
        summary = f"NOTIFY sip:{target.user}@{uri_host(target.host)}:{target.port} Event: {target.event}"
        deadline = time.monotonic() + timeout
        interval, resend = T1, time.monotonic()
        while (now := time.monotonic()) < deadline:
            if now >= resend:
                try:
                    sock.send(packet)
                except OSError as exc:
                    return Outcome(target, summary, None, f"cannot send: {exc.strerror or exc}")
                resend, interval = now + interval, min(interval * 2, T2)
            ready = select.select([sock], [], [], max(0.0, min(resend, deadline) - time.monotonic()))[0]
            if not ready:
                continue
            try:
                data = sock.recv(65535)
            except ConnectionRefusedError:  # ICMP port unreachable: nothing listens there
                return Outcome(target, summary, None, "port unreachable (nothing listens there)")
            except OSError as exc:
                return Outcome(target, summary, None, f"receive failed: {exc.strerror or exc}")
            status = _STATUS.match(data)
            if status is None or _header(data, "Call-ID") != call_id or branch not in (_header(data, "Via") or ""):
                continue  # not an answer to this request
            code = int(status.group(1))
            if code >= 200:
                return Outcome(target, summary, code, status.group(2).decode("utf-8", "replace"))
            # A provisional answer: the phone has it; keep waiting for the final one without resending.
            resend = deadline
    return Outcome(target, summary, None, f"no answer within {timeout:g} s")


def notify_conf(models: Iterable[DeviceModel]) -> tuple[str, list[str]]:
    """``pjsip_notify.conf`` sections (``[autoprov-<event>]`` and ``[autoprov-<event>-reboot]``) for the
    events the installed models declare, and the problems found (a model with none, or a bad one)."""
    events: dict[str, list[str]] = {}
    problems = []
    for model in models:
        try:
            events.setdefault(event_of(model, reboot=False), []).append(model.name)
        except NotifyError as exc:
            problems.append(str(exc))
    lines = ["; autoprov: NOTIFY events that make phones re-read their configuration (pjsip_notify.conf).",
             "; Generated by `autoprov asterisk notify-conf`; use: pjsip send notify autoprov-check-sync endpoint 1001"]
    for event, names in sorted(events.items()):
        lines += ["", f"; {', '.join(names)}", f"[autoprov-{event}]", f"Event=>{event}",
                  f"[autoprov-{event}-reboot]", f"Event=>{event}{REBOOT_PARAM.replace(';', chr(92) + ';')}"]
    return "\n".join(lines) + "\n", problems
