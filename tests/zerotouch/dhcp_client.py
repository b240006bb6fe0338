"""A minimal DHCP client for tests: sends DHCPDISCOVER with a chosen client MAC (chaddr) from an interface and
prints the first DHCPOFFER's options as JSON ({"code": "hex", ..., "yiaddr": "a.b.c.d"}), or exits 2 on timeout.

Run inside the client's network namespace: ``python dhcp_client.py IFACE MAC [DEADLINE_SECONDS]``. The
broadcast flag is set, so the server's answer comes to 255.255.255.255:68 whatever the interface's own MAC.
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
# What a phone asks for, without 66 and 160: the server must send those anyway.
REQUESTED = bytes([1, 3, 6, 15, 42])


def discover(mac: bytes, xid: int) -> bytes:
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                         b"\0" * 4, b"\0" * 4, mac.ljust(16, b"\0"), b"", b"")
    options = bytes([53, 1, 1]) + bytes([55, len(REQUESTED)]) + REQUESTED + bytes([61, 7, 1]) + mac + b"\xff"
    return header + MAGIC + options


def parse_offer(packet: bytes, xid: int) -> dict[str, str] | None:
    if len(packet) < 240 or packet[0] != 2 or struct.unpack("!I", packet[4:8])[0] != xid or packet[236:240] != MAGIC:
        return None
    found: dict[str, str] = {"yiaddr": socket.inet_ntoa(packet[16:20])}
    i = 240
    while i < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        code, size = packet[i], packet[i + 1]
        found[str(code)] = packet[i + 2 : i + 2 + size].hex()
        i += 2 + size
    return found if found.get("53") == "02" else None


def main() -> int:
    iface, mac_text = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + (float(sys.argv[3]) if len(sys.argv) > 3 else 15.0)
    mac = bytes.fromhex(mac_text.replace(":", ""))
    xid = int.from_bytes(os.urandom(4), "big")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    packet = discover(mac, xid)
    while time.monotonic() < deadline:
        sock.sendto(packet, ("255.255.255.255", 67))  # again until answered: the server may still be starting
        resend = time.monotonic() + 0.5
        while (left := min(resend, deadline) - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                continue
            offer = parse_offer(sock.recv(4096), xid)
            if offer is not None:
                print(json.dumps(offer))
                return 0
    print("no DHCPOFFER before the deadline", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
