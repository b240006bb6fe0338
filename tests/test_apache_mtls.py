"""Mutual TLS under a real Apache (mod_ssl, mod_wsgi daemon mode), configured by deploy/apache with
autoprov-mtls.conf included in its HTTPS virtual host: a phone's device certificate binds it to its own files.

The test is its own PKI (openssl): a device root CA and an issuing CA under it (a chain, as Polycom's factory
certificates have), device certificates whose CN is a phone's MAC as on Polycom's, one naming no phone (like
a vendor's generic certificate), and a second root no one trusts. Phones fetch with their real User-Agent
(SIP 3.2 and later do mutual TLS). Loopback is NOT in this site's `secrets_allowed_from`, so what the
certificate admits is told apart from what the network rule would have.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from tests.apache import Apache, mtls_apache, require_apache
from tests.phones import user_agent
from tests.pki import device_cas
from tests.uploads_helpers import log_lines

MODEL = "polycom_ip330"
MAC, OTHER, STRANGER = "0004f2a0b0c0", "0004f2a0b0c1", "0004f2ffff01"
BOOT = {"User-Agent": user_agent(MODEL, "3.1.0.0001", kind="Updater")}
APP = {"User-Agent": user_agent(MODEL, "3.3.2.0413", kind="Application")}
LOGIN = "prov-login-secret"
@pytest.fixture(scope="module")
def site() -> Iterator[tuple[Apache, dict[str, tuple[str, str]]]]:
    require_apache()
    pki = device_cas("autoprov-mtls-")
    directory = pki.dir
    certs = {
        "phone": pki.device("phone", MAC.upper(), "issuing"),
        "other": pki.device("other", OTHER.upper(), "issuing"),
        "generic": pki.device("generic", "Polycom generic device", "issuing"),
        "stranger": pki.device("stranger", STRANGER.upper(), "issuing"),  # a real phone, not this site's
        "rogue": pki.device("rogue-phone", MAC.upper(), "rogue"),  # names the phone, signed by no trusted CA
        "expired": pki.expired("expired", MAC.upper(), "issuing"),
    }
    server = mtls_apache(directory)
    try:
        # A provisioning login in the public URL makes device.cfg (shared by every phone) a secret file.
        config = server.config.read_text().replace(
            "[http]\n", '[http]\nsecrets_allowed_from = ["192.0.2.0/24"]\nsighting_flush_interval = 0.1\n', 1
        ).replace(f'public_url = "{server.url}"', f'public_url = "http://prov:{LOGIN}@127.0.0.1:{server.port}"')
        server.config.write_text(config + "[audit]\nflush_interval = 0.1\n")
        server.autoprov("init")
        server.autoprov("extension", "add", "1001", "--secret", "pw-1001")
        server.autoprov("extension", "add", "1002", "--secret", "pw-1002")
        server.autoprov("phone", "add", MAC, "--model", MODEL, "--line", "1001")
        server.autoprov("phone", "add", OTHER, "--model", MODEL, "--line", "1002")
        (server.firmware / MODEL / "sip.ld").write_bytes(os.urandom(4096))
        server.start()
        yield server, certs
    finally:
        server.stop()
        sys.stderr.write(server.logs())  # shown by pytest when a test failed
        server.remove()
        shutil.rmtree(directory, ignore_errors=True)


def fetch(apache: Apache, path: str, cert: tuple[str, str] | None = None, headers: dict[str, str] = APP,
          method: str = "GET", tls: bool = True, **kw) -> requests.Response:
    base = apache.tls_url if tls else apache.url
    return requests.request(method, base + path, headers=headers, cert=cert, verify=str(apache.crt),
                            timeout=30, **kw)


def sighting_problem(apache: Apache, mac: str, text: str) -> str:
    """The sightings listing once the phone's row carries ``text`` (they are written every 0.1 s here)."""
    deadline = time.monotonic() + 30
    while True:
        shown = apache.autoprov("sightings").stdout
        if any(row.split("\t")[1:2] == [mac] and text in row for row in shown.splitlines()):
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)


def config_of(mac: str) -> str:
    return f"/prov/{MODEL}/{mac}-phone.cfg"


def test_a_phone_gets_its_own_config_by_its_certificate(site):
    """From an address the network rule refuses: the verified certificate naming this MAC admits it."""
    apache, certs = site
    r = fetch(apache, config_of(MAC), certs["phone"])
    assert r.status_code == 200, r.text[:300]
    assert b'reg.1.auth.password="pw-1001"' in r.content and b"pw-1002" not in r.content
    # Its other per-phone files too: the directory with its own contacts, its log upload.
    assert fetch(apache, f"/prov/{MODEL}/{MAC}-directory.xml", certs["phone"]).status_code == 200
    log = b"".join(log_lines(3))
    assert fetch(apache, f"/prov/{MODEL}/logs/{MAC}-app.log", certs["phone"], method="PUT", data=log).status_code == 200


def test_another_phones_files_are_refused_and_recorded(site):
    apache, certs = site
    r = fetch(apache, config_of(OTHER), certs["phone"])
    assert r.status_code == 403 and b"pw-1002" not in r.content
    assert f"names {MAC}, not {OTHER}" in r.text
    shown = sighting_problem(apache, OTHER, f"the client certificate names {MAC}, not {OTHER}")
    assert "pw-" not in shown
    # Uploads go to the other daemon process group: the certificate reaches it too.
    log = b"".join(log_lines(2))
    r = fetch(apache, f"/prov/{MODEL}/logs/{OTHER}-app.log", certs["phone"], method="PUT", data=log)
    assert r.status_code == 403, r.text
    # And the other phone, with its own certificate, gets its own.
    r = fetch(apache, config_of(OTHER), certs["other"])
    assert r.status_code == 200 and b"pw-1002" in r.content


def test_a_shared_secret_file_needs_a_certificate_of_a_phone_of_this_site(site):
    """device.cfg holds the provisioning login: a phone in the database gets it by its certificate; another
    vendor-signed certificate (a phone of someone else's) gets no more than the network rule gives."""
    apache, certs = site
    device = f"/prov/{MODEL}/device.cfg"
    r = fetch(apache, device, certs["phone"])
    assert r.status_code == 200 and LOGIN.encode() in r.content
    for cert in (certs["stranger"], None):
        r = fetch(apache, device, cert)
        assert r.status_code == 403 and LOGIN.encode() not in r.content and "secrets_allowed_from" in r.text


def test_a_certificate_from_an_untrusted_ca_is_refused(site):
    """It names the phone's MAC, but no trusted CA signed it: with SSLVerifyClient optional_no_ca the handshake
    goes through, and mod_ssl tells autoprov so (SSL_CLIENT_VERIFY=FAILED:...)."""
    apache, certs = site
    r = fetch(apache, config_of(MAC), certs["rogue"])
    assert r.status_code == 403 and b"pw-1001" not in r.content
    assert "failed verification" in r.text
    sighting_problem(apache, MAC, f"the client certificate {MAC.upper()!r} failed verification")
    # Files without secrets stay reachable, whatever it presents.
    assert fetch(apache, "/000000000000.cfg", certs["rogue"], headers=BOOT).status_code == 200
    assert fetch(apache, f"/prov/{MODEL}/sip.ld", certs["rogue"], headers=BOOT).status_code == 200


def test_an_expired_certificate_from_a_trusted_ca_fails_the_handshake(site):
    """optional_no_ca forgives an unknown issuer only: mod_ssl ends this handshake itself."""
    apache, certs = site
    with pytest.raises(requests.exceptions.ConnectionError):
        fetch(apache, config_of(MAC), certs["expired"])
    assert "certificate has expired" in (apache.root / "logs" / "autoprov-error.log").read_text()


def test_without_a_certificate_the_normal_policy_decides(site):
    apache, certs = site
    for tls in (True, False):  # over HTTPS without a certificate, and over plain HTTP
        r = fetch(apache, config_of(MAC), tls=tls)
        assert r.status_code == 403 and "secrets_allowed_from" in r.text, (tls, r.status_code, r.text)
        assert fetch(apache, "/000000000000.cfg", tls=tls, headers=BOOT).status_code == 200
        firmware = fetch(apache, f"/prov/{MODEL}/sip.ld", tls=tls, headers=BOOT)
        assert firmware.content == (apache.firmware / MODEL / "sip.ld").read_bytes()
    # mod_ssl's variables cannot be sent as headers (with "_" Apache drops them; with "-" they become HTTP_*).
    forged = {"SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_S_DN_CN": MAC.upper(), "SSL-Client-Verify": "SUCCESS",
              "SSL-Client-S-DN-CN": MAC.upper()}
    r = fetch(apache, config_of(MAC), headers={**APP, **forged})
    assert r.status_code == 403 and "secrets_allowed_from" in r.text, r.text
    # A verified certificate that names no phone (a vendor's generic one) counts as none.
    r = fetch(apache, config_of(MAC), certs["generic"])
    assert r.status_code == 403 and "secrets_allowed_from" in r.text, r.text


def test_the_audit_shows_who_the_certificates_admitted_and_refused(site):
    """After the tests above: `autoprov audit` has the phone's config served by its certificate, the other
    MAC's refused for it, and the untrusted certificate refused."""
    apache, _ = site
    wanted = [
        ("allowed", MAC, "admitted by certificate"),
        ("refused", OTHER, f"the client certificate names {MAC}, not {OTHER}"),
        ("refused", MAC, f"the client certificate {MAC.upper()!r} failed verification"),
    ]
    deadline = time.monotonic() + 30
    while True:
        shown = apache.autoprov("audit", "--json", "--limit", "1000").stdout
        records = [json.loads(line) for line in shown.splitlines()]
        missing = [w for w in wanted if not any(
            (r["outcome"], r["mac"]) == w[:2] and w[2] in r["reason"] and r["path"] == config_of(w[1])
            for r in records)]
        if not missing:
            break
        assert time.monotonic() < deadline, (missing, records)
        time.sleep(0.2)
    assert all("pw-" not in json.dumps(r) for r in records)


def test_required_refuses_secrets_without_a_certificate(site):
    """[client_certificate] required (runs last: it changes the site's configuration)."""
    apache, certs = site
    apache.config.write_text(apache.config.read_text() + "[client_certificate]\nrequired = true\n")
    apache.graceful()  # new daemon processes read the configuration anew
    deadline = time.monotonic() + 60
    while "[client_certificate] required" not in (r := fetch(apache, config_of(MAC))).text:
        assert time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.2)
    assert r.status_code == 403
    assert "[client_certificate] required" in fetch(apache, config_of(MAC), certs["generic"]).text
    assert fetch(apache, config_of(MAC), certs["phone"]).status_code == 200
    assert fetch(apache, "/000000000000.cfg", headers=BOOT).status_code == 200
    assert fetch(apache, f"/prov/{MODEL}/sip.ld", headers=BOOT).status_code == 200
