"""The client-certificate rule in-process, for what a real Apache cannot easily be made to send: hostile
certificate names and mod_ssl's other verdicts reach the WSGI environ exactly as mod_ssl writes them
(tests/test_apache_mtls.py runs the whole thing under a real Apache with mod_ssl).

Clients here come from a public address, which the default network rule refuses: whatever is admitted is
admitted by the certificate.
"""

from __future__ import annotations

import pytest
import requests

from autoprov.clientcert import mac_in_common_name, presented
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.tables import Sighting
from tests.conftest import free_port, running_server, write_config
from tests.phones import headers

MODEL = "polycom_ip330"
MAC, OTHER = "0004f2aabbcc", "0004f2aabbcd"
PUBLIC = "198.51.100.7"
APP = headers(MODEL)


@pytest.fixture
def phones(site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", ""))
    admin.add_extension(ExtensionData("1002", "pw-1002", "Bob", ""))
    admin.add_phone(site, MAC, MODEL, ["1001"])
    admin.add_phone(site, OTHER, MODEL, ["1002"])


def get(client, path: str, verify: str | None = None, cn: str = "", **environ: str):
    base = {"REMOTE_ADDR": PUBLIC, **environ}
    if verify is not None:
        base.update(SSL_CLIENT_VERIFY=verify, SSL_CLIENT_S_DN_CN=cn, HTTPS="on")
    return client.get(path, headers=APP, environ_base=base)


def problem_of(mac: str) -> str:
    return Sighting.get(Sighting.mac == mac).problem


def test_the_environ_as_mod_ssl_writes_it():
    assert presented({}) is None
    assert presented({"SSL_CLIENT_VERIFY": "NONE"}) is None
    ok = presented({"SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_S_DN_CN": "0004F2AABBCC", "SSL_CLIENT_CERT": "PEM"})
    assert ok is not None and ok.verified and (ok.subject_cn, ok.pem) == ("0004F2AABBCC", "PEM")
    for verify, failure in [("GENEROUS", "GENEROUS"), ("FAILED:certificate has expired", "certificate has expired")]:
        cert = presented({"SSL_CLIENT_VERIFY": verify, "SSL_CLIENT_S_DN_CN": MAC})
        assert cert is not None and not cert.verified and cert.failure == failure
    # What a client sends as headers arrives as HTTP_*: it is not mod_ssl's word.
    assert presented({"HTTP_SSL_CLIENT_VERIFY": "SUCCESS", "HTTP_SSL_CLIENT_S_DN_CN": MAC}) is None


def test_the_cn_is_a_mac_only_when_it_is_exactly_one_of_the_vendors():
    ouis = ("0004f2", "64167f")
    assert mac_in_common_name("0004F28B54F4", ouis) == "0004f28b54f4"
    assert mac_in_common_name("00:04:f2:8b:54:f4", ouis) == "0004f28b54f4"
    assert mac_in_common_name("64-16-7F-01-02-03", ouis) == "64167f010203"
    for cn in ["", "0004F28B54F4 ", "x0004F28B54F4", "0004F28B54F4.phone.example.com", "001565aabbcc",
               "000000000000", "0004F28B54F4\n", "０００４F28B54F4", "Polycom generic"]:
        assert mac_in_common_name(cn, ouis) is None, cn


def test_each_model_reads_its_vendors_certificates(site):
    polycom, yealink, grandstream = (site.models[n] for n in ("polycom_ip330", "yealink_t46s", "grandstream_gxp2135"))
    assert polycom.certificate_mac("0004F28B54F4", "") == "0004f28b54f4"
    assert polycom.certificate_mac("001565AABBCC", "") is None  # a Yealink MAC is not a Polycom's
    assert yealink.certificate_mac("001565AABBCC", "") == "001565aabbcc"
    assert yealink.certificate_mac("0004F28B54F4", "") is None
    assert grandstream.certificate_mac("000B82AABBCC", "") is None  # no per-device certificate known


def test_a_verified_certificate_admits_its_phone_only(client, phones):
    r = get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "SUCCESS", MAC.upper())
    assert r.status_code == 200 and b"pw-1001" in r.data
    r = get(client, f"/prov/{MODEL}/{OTHER}-phone.cfg", "SUCCESS", MAC.upper())
    assert r.status_code == 403 and b"pw-1002" not in r.data
    problem = problem_of(OTHER)
    assert problem.startswith(f"refused GET /prov/{MODEL}/{OTHER}-phone.cfg")
    assert problem.endswith(f"the client certificate names {MAC}, not {OTHER}")
    # Without one, the network rule: this address may not.
    assert get(client, f"/prov/{MODEL}/{MAC}-phone.cfg").status_code == 403


def test_another_vendors_certificate_cannot_pass_for_none(client, phones):
    """A Yealink's verified certificate asking for a Polycom's file: it names a phone, not this one."""
    r = get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "SUCCESS", "001565AABBCC", REMOTE_ADDR="10.0.0.5")
    assert r.status_code == 403 and b"pw-1001" not in r.data
    assert "names 001565aabbcc, not 0004f2aabbcc" in r.text


@pytest.mark.parametrize("cn", ['0004F2AABBCC\r\nX-Injected: 1 <&>"', "Ünïcödé " * 40, "\x00\x1b[31m"])
def test_a_hostile_name_in_a_failed_certificate_is_refused_and_quoted_safely(client, phones, cn):
    r = get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "FAILED:unable to verify the first certificate", cn,
            REMOTE_ADDR="10.0.0.5")  # even from an admitted network: a failed certificate is refused
    assert r.status_code == 403 and b"pw-1001" not in r.data
    assert "X-Injected" not in r.headers
    problem = problem_of(MAC)
    assert "failed verification ('unable to verify the first certificate')" in problem
    assert problem.isprintable() and problem.isascii() and len(problem) < 300


def test_files_without_secrets_are_served_whatever_the_certificate(client, phones):
    for verify in ("FAILED:certificate rejected", "SUCCESS"):
        assert get(client, "/000000000000.cfg", verify, OTHER.upper()).status_code == 200
        assert get(client, f"/prov/{MODEL}/site.cfg", verify, OTHER.upper()).status_code == 200


def test_required(client, site, phones):
    site.settings.client_certificate.required = True
    r = get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", REMOTE_ADDR="10.0.0.5")  # an admitted network
    assert r.status_code == 403 and "[client_certificate] required" in r.text
    assert get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "SUCCESS", "not a mac").status_code == 403
    assert get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "SUCCESS", MAC.upper()).status_code == 200
    assert get(client, "/000000000000.cfg").status_code == 200


def test_serve_warns_that_it_gets_no_certificates_when_they_are_required(tmp_path, site, phones, capsys):
    """`autoprov serve` (gunicorn) never sees a client certificate: required refuses every secret there."""
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    config.write_text(config.read_text() + "[client_certificate]\nrequired = true\n")
    with running_server(config, port) as url:
        r = requests.get(f"{url}/prov/{MODEL}/{MAC}-phone.cfg", headers=APP, timeout=30)
        assert r.status_code == 403 and "[client_certificate] required" in r.text and "pw-1001" not in r.text
        assert requests.get(f"{url}/000000000000.cfg", headers=APP, timeout=30).status_code == 200
    assert "WARNING: [client_certificate] required is on, but `autoprov serve` gets no client certificates" in (
        capsys.readouterr().err)


def test_a_models_broken_certificate_mac_costs_the_certificate_not_the_request(client, site, phones, monkeypatch):
    def broken(subject_cn, cert_pem):
        raise RuntimeError("plugin bug")

    for name in [n for n in site.models if n.startswith("polycom")]:
        monkeypatch.setattr(site.models[name], "certificate_mac", broken)
    r = get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "SUCCESS", MAC.upper())
    assert r.status_code == 403 and "secrets_allowed_from" in r.text  # no MAC read: the network rule decided
    assert ("polycom_ip330", "certificate_mac") in {(b.name, b.value) for b in site.plugins.broken}
    # A model answering in another spelling is normalised (the file name's MAC is lowercase).
    monkeypatch.setattr(site.models[MODEL], "certificate_mac", lambda cn, pem: "00:04:F2:AA:BB:CC")
    assert get(client, f"/prov/{MODEL}/{MAC}-phone.cfg", "SUCCESS", "anything").status_code == 200
