"""The attack of issue 10, walked from outside against the production set-up (a real Apache with mod_ssl and
mod_wsgi, deploy/apache with mutual TLS), then the real phone's boot, then what the audit trail shows.

The outsider sits on the phones' network (loopback is in the default `secrets_allowed_from`, as the voice VLAN
would be), so the network rule does not stop it: the MAC-guessing throttle and the device certificate must.
It connects from 127.0.0.2; the phone from 127.0.0.1, so the phone is another client, as on a real network.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from tests.apache import Apache, mtls_apache, require_apache
from tests.phones import user_agent
from tests.pki import Pki, device_cas
from tests.uploads_helpers import log_lines

MODEL = "polycom_ip330"
OUI = "0004f2"
MAC = "0004f2a0b0c0"  # the site's phone, inside the guessed range
GUESSES = [f"{OUI}a0{n:04x}" for n in range(0xb000, 0xb000 + 300)]
BOOT = {"User-Agent": user_agent(MODEL, "3.1.0.0001", kind="Updater")}
APP = {"User-Agent": user_agent(MODEL, "3.3.2.0413", kind="Application")}
OUTSIDER = "127.0.0.2"
LIMIT = 30  # [throttle] unknown_macs, the default


@pytest.fixture(scope="module")
def walk() -> Iterator[tuple[Apache, Pki]]:
    require_apache()
    pki = device_cas("autoprov-attack-")
    directory = pki.dir
    server = mtls_apache(directory)
    try:
        # Defaults everywhere but how often the buffered writers write (the test reads what they wrote).
        config = server.config.read_text().replace("[http]\n", "[http]\nsighting_flush_interval = 0.1\n", 1)
        server.config.write_text(config + "[audit]\nflush_interval = 0.1\n[throttle]\nshare_interval = 0.1\n")
        server.autoprov("init")
        server.autoprov("extension", "add", "1001", "--first-name", "Reception", "--secret", "pw-1001")
        server.autoprov("phone", "add", MAC, "--model", MODEL, "--line", "1001")
        (server.firmware / MODEL / "sip.ld").write_bytes(os.urandom(64 * 1024))
        server.start()
        yield server, pki
    finally:
        server.stop()
        sys.stderr.write(server.logs())
        server.remove()
        shutil.rmtree(directory, ignore_errors=True)


def outsider_get(apache: Apache, paths: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """GETs over one keep-alive TLS connection from the outsider's address, without a client certificate."""
    context = ssl.create_default_context(cafile=str(apache.crt))
    conn = http.client.HTTPSConnection("127.0.0.1", apache.tls_port, source_address=(OUTSIDER, 0), context=context,
                                       timeout=30)
    answers = []
    try:
        for path in paths:
            conn.request("GET", path, headers=APP)  # the phone's own User-Agent: public knowledge
            r = conn.getresponse()
            answers.append((r.status, CaseInsensitiveDict(r.getheaders()), r.read()))
    finally:
        conn.close()
    return answers


def phone(apache: Apache, path: str, cert: tuple[str, str] | None, headers: dict[str, str] = APP,
          method: str = "GET", **kw) -> requests.Response:
    return requests.request(method, apache.tls_url + path, headers=headers, cert=cert, verify=str(apache.crt),
                            timeout=30, **kw)


def audit(apache: Apache, *args: str, want: int = 1) -> list[dict[str, object]]:
    """``autoprov audit --json`` once at least ``want`` records match (the server writes them every 0.1 s)."""
    deadline = time.monotonic() + 30
    while True:
        out = apache.autoprov("audit", "--json", *args).stdout
        records = [json.loads(line) for line in out.splitlines()]
        if len(records) >= want:
            return records
        assert time.monotonic() < deadline, f"audit {args}: {records}"
        time.sleep(0.2)


def test_guessing_is_throttled_the_phone_boots_a_wrong_certificate_is_refused_and_the_audit_shows_it(walk):
    apache, pki = walk

    # 1. The outsider walks 300 MACs of a public OUI, in order, with the phone's own User-Agent.
    answers = outsider_get(apache, [f"/prov/{MODEL}/{mac}-phone.cfg" for mac in GUESSES])
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {404, 429}, statuses  # never a 200: not even for the site's phone
    assert all(b"pw-1001" not in body for _, _, body in answers)
    first_block = statuses.index(429)
    # Each Apache daemon process blocks at once on what it sees; the others learn it within share_interval.
    assert LIMIT < first_block <= 2 * (LIMIT + 1), statuses[:80]
    assert statuses[GUESSES.index(MAC)] == 429  # the real MAC, guessed while blocked, tells nothing
    tail = answers[-200:]
    assert all(status == 429 for status, _, _ in tail)
    assert all(int(headers["Retry-After"]) > 0 for _, headers, _ in tail)

    # 2. The real phone, at its own address, boots through the same Apache while the outsider is blocked.
    certificate = pki.device("phone", MAC.upper(), "issuing")
    assert phone(apache, "/000000000000.cfg", None, BOOT).status_code == 200
    assert phone(apache, f"/prov/{MODEL}/sip.ld", None, BOOT).status_code == 200
    r = phone(apache, f"/prov/{MODEL}/{MAC}-phone.cfg", certificate)
    assert r.status_code == 200 and b'reg.1.auth.password="pw-1001"' in r.content
    r = phone(apache, f"/prov/{MODEL}/logs/{MAC}-app.log", certificate, method="PUT", data=b"".join(log_lines(3)))
    assert r.status_code == 200, r.text
    # The outsider is still refused, even for files that exist.
    assert [s for s, _, _ in outsider_get(apache, [f"/prov/{MODEL}/{MAC}-phone.cfg"])] == [429]

    # 3. A certificate naming the phone, signed by a CA no one trusts, is refused from the phone's own address.
    rogue = pki.device("rogue-phone", MAC.upper(), "rogue")
    r = phone(apache, f"/prov/{MODEL}/{MAC}-phone.cfg", rogue)
    assert r.status_code == 403 and b"pw-1001" not in r.content
    assert "failed verification" in r.text

    # 4. The audit trail shows all of it.
    throttled = audit(apache, "--client", OUTSIDER, "--outcome", "throttled")
    assert all(rec["status"] == 429 and rec["client"] == OUTSIDER for rec in throttled)
    blocked_count = sum(int(rec["count"]) for rec in throttled)
    assert blocked_count >= 1
    refused = audit(apache, "--mac", MAC, "--outcome", "refused")
    assert any("failed verification" in str(rec["reason"]) and rec["client"] == "127.0.0.1" for rec in refused)
    allowed = audit(apache, "--mac", MAC, "--outcome", "allowed")
    assert [rec["client"] for rec in allowed] == ["127.0.0.1"]  # the phone's fetch, and no one else's
    assert "certificate" in str(allowed[0]["reason"])
    # No secret reached the trail's text.
    shown = apache.autoprov("audit", "--limit", "1000").stdout
    assert "pw-1001" not in shown and OUTSIDER in shown
