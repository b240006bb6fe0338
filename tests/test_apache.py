"""The production set-up, for real: Debian's Apache httpd with mod_wsgi, configured by deploy/apache (daemon
process group, python-home, TLS, the event MPM with mod_reqtimeout, firmware sent by Apache itself), on
private loopback ports. A phone boots through it request by request, as it would on site.

Skipped only where apache2 and mod_wsgi are not installed; in CI (CI set) that is a failure.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import requests

from tests.apache import Apache, require_apache
from tests.phones import user_agent
from tests.uploads_helpers import log_lines

MODEL = "polycom_ip330"
MAC = "0004f2a0b0c0"
BOOT = {"User-Agent": user_agent(MODEL, "3.1.0.0001", kind="Updater")}
APP = {"User-Agent": user_agent(MODEL, "3.3.2.0413", kind="Application")}


@pytest.fixture(scope="module")
def apache() -> Iterator[Apache]:
    require_apache()
    server = Apache()
    try:
        server.autoprov("init")
        server.autoprov("extension", "add", "1001", "--secret", "pw-1001", "--first-name", "Ada",
                        "--last-name", 'O"Brien <&>')
        server.autoprov("extension", "add", "1002", "--secret", "pw-1002")
        server.autoprov("phone", "add", MAC, "--model", MODEL, "--line", "1001", "--line", "1002")
        firmware = server.firmware / MODEL
        (firmware / "sip.ld").write_bytes(os.urandom(1024 * 1024 + 7))
        (firmware / "bootrom.ld").write_bytes(os.urandom(64 * 1024))
        server.start()
        yield server
    finally:
        server.stop()
        sys.stderr.write(server.logs())  # shown by pytest when a test failed
        server.remove()


def apache_etag(path) -> str:
    """The ETag Apache's own file handler gives a file (FileETag MTime Size): what the daemon cannot make."""
    st = os.stat(path)
    return f'"{st.st_size:x}-{st.st_mtime_ns // 1000:x}"'


def test_a_phone_boots_through_apache(apache):
    s = requests.Session()
    url = apache.url
    walk: list[tuple[str, str, int]] = []

    def fetch(method: str, path: str, expect: int, headers: dict[str, str], **kw) -> requests.Response:
        r = s.request(method, url + path, headers=headers, timeout=30, **kw)
        walk.append((method, path + "".join(f" [{k}: {v}]" for k, v in headers.items() if k != "User-Agent"),
                     r.status_code))
        assert r.status_code == expect, (path, r.status_code, r.text[:300])
        return r

    firmware = apache.firmware / MODEL
    image, bootrom = (firmware / "sip.ld").read_bytes(), (firmware / "bootrom.ld").read_bytes()
    try:
        # Factory-fresh: the BootROM and the master config at the server's root, chosen by the User-Agent.
        assert fetch("GET", "/bootrom.ld", 200, BOOT).content == bootrom
        fetch("GET", f"/{MAC}.cfg", 404, BOOT)
        initial = ET.fromstring(fetch("GET", "/000000000000.cfg", 200, BOOT).content)
        device_cfg = initial.get("CONFIG_FILES").split(", ")[0]
        device = ET.fromstring(fetch("GET", f"/{device_cfg}", 200, BOOT).content)
        base = "/" + device.get("device.prov.serverName").split("/", 1)[1]
        assert base == f"/prov/{MODEL}"
        assert device.get("device.prov.serverName").split("/")[0] == f"127.0.0.1:{apache.port}"
        # After its reboot, everything comes from the model's path.
        fetch("GET", f"{base}/{MAC}.cfg", 404, BOOT)
        master = ET.fromstring(fetch("GET", f"{base}/000000000000.cfg", 200, BOOT).content)
        sip = f"{base}/{master.get('APP_FILE_PATH')}"
        # The application image in two ranges, as a resumed download fetches it; Apache sends it.
        half = len(image) // 2
        a = fetch("GET", sip, 206, {**BOOT, "Range": f"bytes=0-{half - 1}"})
        b = fetch("GET", sip, 206, {**BOOT, "Range": f"bytes={half}-"})
        assert a.content + b.content == image
        assert a.headers["Content-Range"] == f"bytes 0-{half - 1}/{len(image)}"
        assert a.headers["ETag"].removeprefix("W/") == apache_etag(firmware / "sip.ld")
        etag = apache_etag(firmware / "sip.ld")
        assert fetch("GET", sip, 304, {**BOOT, "If-None-Match": etag}).content == b""
        # Its own files, from the database.
        names = [n.replace("[PHONE_MAC_ADDRESS]", MAC) for n in master.get("CONFIG_FILES").split(", ")]
        assert names == [f"{MAC}-phone.cfg", "site.cfg"]
        phone = fetch("GET", f"{base}/{names[0]}", 200, APP)
        regs = ET.fromstring(phone.content).findall("reg")
        assert [r.get(f"reg.{i}.auth.password") for i, r in enumerate(regs, 1)] == ["pw-1001", "pw-1002"]
        assert regs[0].get("reg.1.displayName") == 'Ada O"Brien <&>'
        assert phone.headers["Cache-Control"] == "no-cache"
        site_cfg = ET.fromstring(fetch("GET", f"{base}/{names[1]}", 200, APP).content)
        assert site_cfg.find("voIpProt").get("voIpProt.server.1.address") == "pbx.example.test"
        # Polling: nothing changed, so 304.
        assert fetch("GET", f"{base}/{names[0]}", 304, {**APP, "If-None-Match": phone.headers["ETag"]}).content == b""
        # Its log: the whole file, then what it wrote since, appended.
        lines = log_lines(30)
        first, rest = b"".join(lines[:20]), b"".join(lines[20:])
        log = f"{base}/logs/{MAC}-app.log"
        fetch("HEAD", log, 404, APP)
        fetch("PUT", log, 200, APP, data=first)
        assert int(fetch("HEAD", log, 200, APP).headers["Content-Length"]) == len(first)
        end = len(first) + len(rest) - 1
        fetch("PUT", log, 200, {**APP, "Content-Range": f"bytes {len(first)}-{end}/*"}, data=rest)
    finally:
        print(f"\nboot sequence through Apache {apache.url}:")
        for method, path, status in walk:
            print(f"  {status}  {method} {path}")
    shown = apache.autoprov("logs", "show", MAC, "--limit", "0").stdout
    assert all(f"event number {n}:" in shown for n in range(30))
    # The daemon saw the phone's own address and User-Agent (sightings are written off the request path,
    # every [http] sighting_flush_interval, by a thread of the daemon process).
    deadline = time.monotonic() + 30
    while not all(word in (seen := apache.autoprov("sightings").stdout) for word in (MAC, "127.0.0.1", "3.3.2.0413")):
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def test_a_change_from_the_command_line_reaches_every_daemon_process(apache):
    """Two daemon processes each cache rendered files; a change made outside them is served by both soon."""
    url = f"{apache.url}/prov/{MODEL}/{MAC}-phone.cfg"
    before = requests.get(url, headers=APP, timeout=30)
    apache.autoprov("extension", "update", "1001", "--first-name", "Augusta")
    deadline = time.monotonic() + 30
    fresh = 0
    while fresh < 10:  # ten answers in a row, each over a new connection (either process may take it)
        r = requests.get(url, headers={**APP, "If-None-Match": before.headers["ETag"]}, timeout=30)
        if r.status_code == 200 and b"Augusta" in r.content:
            fresh += 1
            continue
        fresh = 0
        assert time.monotonic() < deadline, (r.status_code, r.content[:200])
        time.sleep(0.1)


def test_the_same_phone_over_https(apache):
    verify = str(apache.crt)
    r = requests.get(f"{apache.tls_url}/prov/{MODEL}/{MAC}-phone.cfg", headers=APP, verify=verify, timeout=30)
    assert r.status_code == 200 and b"pw-1001" in r.content
    r = requests.get(f"{apache.tls_url}/prov/{MODEL}/sip.ld", headers={**BOOT, "Range": "bytes=10-19"},
                     verify=verify, timeout=30)
    image = (apache.firmware / MODEL / "sip.ld").read_bytes()
    assert (r.status_code, r.content) == (206, image[10:20])


def test_firmware_validators_come_from_the_file_apache_sends(apache):
    """A replaced image gets a new ETag even at the same size, so a resumed download never mixes two."""
    path = apache.firmware / MODEL / "alt.ld"
    path.write_bytes(b"A" * 4096)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    url = f"{apache.url}/prov/{MODEL}/alt.ld"
    old = requests.get(url, headers=BOOT, timeout=30)
    assert old.headers["ETag"] == apache_etag(path)
    path.write_bytes(b"B" * 4096)
    os.utime(path, (1_100_000_000, 1_100_000_000))
    assert requests.get(url, headers={**BOOT, "If-None-Match": old.headers["ETag"]}, timeout=30).status_code == 200
    r = requests.get(url, headers={**BOOT, "Range": "bytes=100-", "If-Range": old.headers["ETag"]}, timeout=30)
    assert (r.status_code, r.content) == (200, b"B" * 4096)
    r = requests.get(url, headers={**BOOT, "If-Modified-Since": old.headers["Last-Modified"]}, timeout=30)
    assert r.status_code == 200
    head = requests.head(url, headers=BOOT, timeout=30)
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, "4096", b"")


def test_a_link_inside_the_model_directory_is_served(apache):
    """autoprov follows it (the part-numbered image name); Apache is sent to its target, not the link."""
    firmware = apache.firmware / MODEL
    link = firmware / "2345-12200-001.sip.ld"
    if not link.is_symlink():
        link.symlink_to(firmware / "sip.ld")
    r = requests.get(f"{apache.url}/prov/{MODEL}/{link.name}", headers=BOOT, timeout=30)
    assert r.status_code == 200 and r.content == (firmware / "sip.ld").read_bytes()


def raw_get(port: int, target: str) -> bytes:
    """A request exactly as written (no client library tidying the path); the status line back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {target} HTTP/1.0\r\nUser-Agent: {BOOT['User-Agent']}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("target", [
    f"/autoprov-firmware/{MODEL}/sip.ld",
    f"/%61utoprov-firmware/{MODEL}/sip.ld",
    f"//autoprov-firmware/{MODEL}/sip.ld",
    f"/autoprov-firmware/{MODEL}/outside",
    f"/autoprov-firmware/{MODEL}/.hidden",
    "/autoprov-firmware/",
])
def test_the_firmware_alias_is_not_reachable_directly(apache, target):
    """Only autoprov's redirect reads the Alias, so its checks (dot-files, links out) cannot be bypassed."""
    firmware = apache.firmware / MODEL
    if not (firmware / "outside").is_symlink():
        (firmware / "outside").symlink_to("/etc/passwd")
        (firmware / ".hidden").write_bytes(b"hidden")
    answer = raw_get(apache.port, target)
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
    assert b"root:" not in answer and b"hidden" not in answer.split(b"\r\n\r\n", 1)[1]
    # Through autoprov, the same files are refused too.
    assert raw_get(apache.port, f"/prov/{MODEL}/outside").startswith(b"HTTP/1.1 404 ")
    assert raw_get(apache.port, f"/prov/{MODEL}/.hidden").startswith(b"HTTP/1.1 404 ")


def test_phones_are_served_while_slow_clients_hold_connections(apache):
    """200 connections that sent half a request and 200 that sent nothing: a phone still gets its config
    at once, while every one of them is still open (mod_reqtimeout has not had to cut them yet)."""
    slow: list[socket.socket] = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", apache.port), timeout=10)
            s.sendall(f"GET /prov/{MODEL}/{MAC}-phone.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: ".encode())
            slow.append(s)
        idle = [socket.create_connection(("127.0.0.1", apache.port), timeout=10) for _ in range(200)]
        slow.extend(idle)
        r = requests.get(f"{apache.url}/prov/{MODEL}/{MAC}-phone.cfg", headers=APP, timeout=(10, 10))
        assert r.status_code == 200 and b"pw-1001" in r.content
        for s in slow:  # none was answered or closed: they were all held while the phone was served
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        for s in slow:
            s.close()
    # And Apache cuts such a client off on its own (408), freeing the thread it held.
    # (Runs last in this test: it waits for mod_reqtimeout's 5 s.)
    with socket.create_connection(("127.0.0.1", apache.port), timeout=60) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_phones_are_served_while_slow_uploads_hold_python_threads(apache):
    """A body reaches the daemon as it arrives, so a slow upload holds a Python thread; 40 of them (more
    than the 30 threads that serve phones) must only hold the upload processes' threads."""
    uploads: list[socket.socket] = []
    try:
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", apache.port), timeout=10)
            s.sendall(f"PUT /prov/{MODEL}/logs/0004f2ee{i:04x}-app.log HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"User-Agent: {APP['User-Agent']}\r\nContent-Length: 1000000\r\n\r\n".encode()
                      + b"".join(log_lines(10)))
            uploads.append(s)
        deadline = time.monotonic() + 30
        while apache.daemon_connections() < len(uploads):  # every upload is with the daemons now
            assert time.monotonic() < deadline, f"{apache.daemon_connections()} uploads reached the daemons"
            time.sleep(0.05)
        r = requests.get(f"{apache.url}/prov/{MODEL}/{MAC}-phone.cfg", headers=APP, timeout=(10, 10))
        assert r.status_code == 200 and b"pw-1001" in r.content
        for s in uploads:  # still waiting for the rest of their bodies
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        for s in uploads:
            s.close()
