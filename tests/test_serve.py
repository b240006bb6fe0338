"""A real ``autoprov serve`` (gunicorn, two workers) driven over HTTP exactly as phones boot."""

from __future__ import annotations

import http.client
import os
import socket
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from tests.phones import headers, user_agent

# (model, MAC, extensions) for one phone of each model
PHONES = [
    ("polycom_ip330", "0004f2000330", ["3301", "3302"]),
    ("polycom_ip331", "64167f000331", ["3311"]),
    ("polycom_ip4000", "482567004000", ["4001"]),
]


@pytest.fixture
def fleet(site):
    with site.db.connection_context():
        for model, mac, exts in PHONES:
            for ext in exts:
                admin.add_extension(ExtensionData(ext, f"pw-{ext}", f"User {ext}", 'O"Brien <&>'))
            admin.add_phone(site, mac, model, exts)
    images = {}
    for model, _, _ in PHONES:
        images[model] = os.urandom(64 * 1024)
        (site.models[model].firmware_dir / "sip.ld").write_bytes(images[model])
        (site.models[model].firmware_dir / "bootrom.ld").write_bytes(images[model][:4096])
    return images


def test_full_boot_walk(server, fleet):
    """Each model's phone boots in turn through one server (as on a site with all three)."""
    for model, mac, exts in PHONES:
        boot_walk(server, fleet, model, mac, exts)


def boot_walk(server: str, fleet: dict[str, bytes], model: str, mac: str, exts: list[str]) -> None:
    s = requests.Session()
    boot = {"User-Agent": user_agent(model, "3.1.0.0001", kind="Updater")}
    app = {"User-Agent": user_agent(model, "3.3.2.0413", kind="Application")}
    # BootROM at the root, then the root's master config: the initial config.
    assert s.get(f"{server}/bootrom.ld", headers=boot).content == fleet[model][:4096]
    assert s.get(f"{server}/{mac}.cfg", headers=boot).status_code == 404
    initial = ET.fromstring(s.get(f"{server}/000000000000.cfg", headers=boot).content)
    device_cfg = initial.get("CONFIG_FILES").split(", ")[0]
    device = ET.fromstring(s.get(f"{server}/{device_cfg}", headers=boot).content)
    base = "/" + device.get("device.prov.serverName").split("/", 1)[1]
    assert base == f"/prov/{model}"
    # After the reboot, everything comes from the model's path.
    assert s.get(f"{server}{base}/{mac}.cfg", headers=boot).status_code == 404
    master = ET.fromstring(s.get(f"{server}{base}/000000000000.cfg", headers=boot).content)
    image = master.get("APP_FILE_PATH")
    # The application image in two ranges, as a resumed download would fetch it.
    half = len(fleet[model]) // 2
    a = s.get(f"{server}{base}/{image}", headers={**boot, "Range": f"bytes=0-{half - 1}"})
    b = s.get(f"{server}{base}/{image}", headers={**boot, "Range": f"bytes={half}-"})
    assert (a.status_code, b.status_code) == (206, 206)
    assert a.content + b.content == fleet[model]
    for name in master.get("CONFIG_FILES").split(", "):
        r = s.get(f"{server}{base}/{name.replace('[PHONE_MAC_ADDRESS]', mac)}", headers=app)
        assert r.status_code == 200, name
        root = ET.fromstring(r.content)
        if name.endswith("-phone.cfg"):
            regs = root.findall("reg")
            assert [reg.get(f"reg.{i}.auth.userId") for i, reg in enumerate(regs, 1)] == exts
            assert regs[0].get("reg.1.displayName") == f'User {exts[0]} O"Brien <&>'
            again = s.get(r.url, headers={**app, "If-None-Match": r.headers["ETag"]})
            assert again.status_code == 304


def test_many_phones_at_once_each_get_their_own_config(server, site):
    count = 60
    with site.db.connection_context():
        for i in range(count):
            admin.add_extension(ExtensionData(f"5{i:03d}", f"secret-{i}"))
            admin.add_phone(site, f"0004f2{i:06x}", "polycom_ip331", [f"5{i:03d}"])

    def fetch(i: int) -> tuple[int, bytes]:
        r = requests.get(f"{server}/prov/polycom_ip331/0004f2{i:06x}-phone.cfg", headers=headers("polycom_ip331"))
        return r.status_code, r.content

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(fetch, range(count)))
    for i, (status, body) in enumerate(results):
        assert status == 200
        assert ET.fromstring(body).find("reg").get("reg.1.auth.password") == f"secret-{i}"


PATH_TRICKS = [
    "/prov/polycom_ip330/../../../../etc/passwd",
    "/prov/polycom_ip330/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/prov/polycom_ip330/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/prov/polycom_ip330/%252e%252e%252fetc%252fpasswd",
    "/prov/polycom_ip330//etc/passwd",
    "/prov/polycom_ip330/..\\..\\..\\etc\\passwd",
    "/prov/polycom_ip330/escape",
    "/%2e%2e/%2e%2e/etc/passwd",
]


def test_path_tricks_over_real_http(server, site):
    """The bytes as an attacker sends them, not as an HTTP client library would tidy them up: every trick in
    turn, each on a new connection, to one server (as an attacker would; and one server start, not eight)."""
    fw = site.models["polycom_ip330"].firmware_dir
    (fw / "escape").symlink_to("/etc/passwd")
    port = int(server.rsplit(":", 1)[1])
    for raw_path in PATH_TRICKS:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("GET", raw_path, skip_accept_encoding=True)
        conn.putheader("User-Agent", user_agent("polycom_ip330"))
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        conn.close()
        assert r.status in (400, 404), raw_path
        assert b"root:" not in body, raw_path


def test_slow_and_idle_clients_do_not_stop_phones(server, fleet):
    """Connections that send half a request, or nothing, hold no worker thread: a phone is still answered
    (gunicorn's gthread workers answered nobody once 16 such connections held their threads)."""
    port = int(server.rsplit(":", 1)[1])
    held = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"GET /prov/polycom_ip330/0004f2000330-phone.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag")
            held.append(s)
        model, mac, exts = PHONES[0]
        r = requests.get(f"{server}/prov/{model}/{mac}-phone.cfg", headers=headers(model), timeout=10)
        assert r.status_code == 200
        assert [reg.get(f"reg.{i}.auth.userId") for i, reg in enumerate(ET.fromstring(r.content).findall("reg"), 1)] \
            == exts
    finally:
        for s in held:
            s.close()
