"""What phones upload, as bytes: realistic log files, and the requests that carry them."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from autoprov.phonefiles.tables import LogLine
from tests.phones import headers

MODEL = "polycom_ip330"
MODULES = ("sip  ", "lldp ", "so   ", "app1 ", "cfg  ", "dns  ")


def log_lines(count: int, start: int = 0, month_day: str = "1015") -> list[bytes]:
    """``count`` distinct lines in the phone's format, numbered from ``start`` (each ends with a newline)."""
    out = []
    for n in range(start, start + count):
        seconds = n % 86400
        stamp = f"{month_day}{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        out.append(f"{stamp}|{MODULES[n % len(MODULES)]}|{n % 7}|00|event number {n}: registered line 1\n".encode())
    return out


def log_path(mac: str, name: str = "app", model: str = MODEL) -> str:
    return f"/prov/{model}/logs/{mac}-{name}.log"


def put_log(client, mac: str, body: bytes, name: str = "app", start: int | None = None, model: str = MODEL):
    """A PUT as the phone sends it: the whole file, or (``start`` given) an appending Content-Range."""
    h = headers(model)
    if start is not None:
        h["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/*"
    return client.put(log_path(mac, name, model), data=body, headers=h)


def head_log(client, mac: str, name: str = "app", model: str = MODEL):
    return client.head(log_path(mac, name, model), headers=headers(model))


def stored_messages(mac: str, name: str | None = None) -> list[str]:
    query = LogLine.select(LogLine.message).where(LogLine.mac == mac)
    if name:
        query = query.where(LogLine.file == name)
    return [row.message for row in query.order_by(LogLine.id)]


def generations(mac: str, name: str = "app") -> dict[int, list[str]]:
    """The stored messages of each generation of one file, in the order they were stored."""
    out: dict[int, list[str]] = {}
    query = LogLine.select(LogLine.generation, LogLine.message).where(LogLine.mac == mac, LogLine.file == name)
    for row in query.order_by(LogLine.id):
        out.setdefault(row.generation, []).append(row.message)
    return out


def messages(lines: list[bytes]) -> list[str]:
    """What ``log_lines`` lines are stored as."""
    return [line.rstrip(b"\n").split(b"|", 4)[4].decode() for line in lines]


def send_raw(base_url: str, path: str, headers_text: str, payload: bytes, user_agent: str) -> bytes:
    """A PUT written by hand, ``headers_text`` (``Name: value\\r\\n`` lines) and ``payload`` as given; then the
    phone closes its side. Returns what the server answered (b"" if it just closed)."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = f"PUT {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: {user_agent}\r\n{headers_text}\r\n"
        sock.sendall(head.encode() + payload)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:  # the server may answer (400) or just close; either way the phone is gone
            while data := sock.recv(4096):
                answer += data
        except OSError:
            pass
        return answer


def send_cut_off(base_url: str, path: str, declared: int, sent: bytes, user_agent: str) -> bytes:
    """A phone that announces ``declared`` bytes, sends ``sent`` (fewer), then closes its socket."""
    headers_text = f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n"
    return send_raw(base_url, path, headers_text, sent, user_agent)


def send_chunked(base_url: str, path: str, chunks: list[bytes], user_agent: str, end: bytes = b"") -> bytes:
    """A chunked PUT of ``chunks`` followed by ``end`` (b"0\\r\\n\\r\\n" for a complete body), then closed."""
    payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + end
    return send_raw(base_url, path, "Transfer-Encoding: chunked\r\n", payload, user_agent)
