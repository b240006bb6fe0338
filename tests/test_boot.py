"""A factory-fresh phone of each model boots against the server, request by request, as a phone sends them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.tables import Extension, Sighting
from tests.phones import MODELS, headers, user_agent

IP330 = headers("polycom_ip330")


@pytest.fixture
def ada(site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace", mailbox="1001"))
    admin.add_extension(ExtensionData("1002", "pw-1002", "Bob", "", server="pbx2.example.test", port=5080))
    return admin.add_phone(site, "00:04:F2:AA:BB:CC", "polycom_ip330", ["1001", "1002"])


def sightings(mac: str = "") -> list[Sighting]:
    return list(Sighting.select().where(Sighting.mac == mac).order_by(Sighting.id))


@pytest.mark.parametrize("model", sorted(MODELS))
def test_initial_config_points_each_model_at_its_path(client, model):
    r = client.get("/000000000000.cfg", headers=headers(model))
    assert r.status_code == 200
    app = ET.fromstring(r.data)
    assert app.tag == "APPLICATION"
    assert app.get("CONFIG_FILES").split(", ")[0] == f"prov/{model}/device.cfg"
    assert app.get("APP_FILE_PATH") == f"prov/{model}/sip.ld"
    assert app.get("LOG_FILE_DIRECTORY") == f"prov/{model}/logs"
    device = ET.fromstring(client.get(f"/prov/{model}/device.cfg", headers=headers(model)).data)
    assert device.get("device.set") == "1"
    assert device.get("device.prov.serverName.set") == "1"
    assert device.get("device.prov.serverName") == f"prov.example.test:8080/prov/{model}"
    assert device.get("device.prov.serverType") == "2"  # HTTP


def test_ip4000_initial_config_also_configures_the_phone(client):
    app = ET.fromstring(client.get("/000000000000.cfg", headers=headers("polycom_ip4000")).data)
    assert app.get("CONFIG_FILES").split(", ") == [
        "prov/polycom_ip4000/device.cfg",
        "prov/polycom_ip4000/[PHONE_MAC_ADDRESS]-phone.cfg",
        "prov/polycom_ip4000/site.cfg",
    ]


def test_https_public_url_gives_https_server_type(site, client):
    site.settings.http.public_url = "https://prov.example.test/"
    device = ET.fromstring(client.get("/prov/polycom_ip331/device.cfg", headers=headers("polycom_ip331")).data)
    assert device.get("device.prov.serverType") == "3"
    assert device.get("device.prov.serverName") == "prov.example.test/prov/polycom_ip331"
    assert device.get("device.prov.user") is None


def test_public_url_path_and_login_reach_the_phone(site, client):
    """A server mounted under /autoprov behind a login: the phone keeps the path and learns the login."""
    site.settings.http.public_url = "http://ph%40ne:s3cr%22t@prov.example.test/autoprov/"
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    path = "/prov/polycom_ip330/device.cfg"
    r = client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    device = ET.fromstring(r.data)
    assert device.get("device.prov.serverName") == "prov.example.test/autoprov/prov/polycom_ip330"
    assert (device.get("device.prov.user"), device.get("device.prov.password")) == ("ph@ne", 's3cr"t')
    assert device.get("device.prov.user.set") == device.get("device.prov.password.set") == "1"
    # The login is a credential: only the phones' networks get it.
    r = client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert r.status_code == 403 and b"s3cr" not in r.data


def test_user_agent_matching_is_by_model_token(site):
    assert site.identify("FileTransport PolycomSoundPointIP-spip_330-UA/3.1.0")[0].name == "polycom_ip330"
    assert site.identify(user_agent("polycom_ip4000", kind="Application"))[0].name == "polycom_ip4000"
    assert site.identify("FileTransport PolycomSoundPointIP-SPIP_3300-UA/3.1.0") == (None, None)
    assert site.identify("FileTransport PolycomSoundPointIP-SPIP_33-UA/3.1.0") == (None, None)
    assert site.identify("") == (None, None)


def test_unknown_or_missing_user_agent_is_a_plain_404_and_a_sighting(client, db):
    r = client.get("/000000000000.cfg", headers={"User-Agent": "FileTransport PolycomVVX-VVX_1500-UA/5.9.0.9373"})
    assert r.status_code == 404
    assert r.mimetype == "text/plain"
    assert b"VVX_1500" in r.data
    r = client.get("/000000000000.cfg")
    assert r.status_code == 404
    seen = {s.user_agent: s for s in sightings()}
    assert seen["FileTransport PolycomVVX-VVX_1500-UA/5.9.0.9373"].problem
    assert "" in seen


def test_serial_number_in_user_agent_identifies_the_first_request(client, db):
    ua = user_agent("polycom_ip331", "4.0.1.0000", serial="0004F2ABCDEF", kind="Updater")
    r = client.get("/000000000000.cfg", headers={"User-Agent": ua}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert r.status_code == 200
    (s,) = sightings("0004f2abcdef")
    assert (s.model, s.firmware, s.ip) == ("polycom_ip331", "4.0.1.0000", "192.0.2.7")


def test_master_config_lists_phone_and_site_configs(client):
    r = client.get("/prov/polycom_ip330/000000000000.cfg", headers=IP330)
    app = ET.fromstring(r.data)
    assert app.get("CONFIG_FILES") == "[PHONE_MAC_ADDRESS]-phone.cfg, site.cfg"
    assert (app.get("LOG_FILE_DIRECTORY"), app.get("OVERRIDES_DIRECTORY"), app.get("CONTACTS_DIRECTORY")) == (
        "logs",
        "overrides",
        "contacts",
    )
    assert app.get("APP_FILE_PATH") == "sip.ld"


def test_master_config_names_the_part_numbered_image_once_installed(site, client):
    (site.models["polycom_ip331"].firmware_dir / "2345-12365-001.sip.ld").write_bytes(b"image")
    app = ET.fromstring(client.get("/prov/polycom_ip331/000000000000.cfg").data)
    assert app.get("APP_FILE_PATH") == "2345-12365-001.sip.ld"


def test_per_mac_master_is_404_but_seen(client, db):
    r = client.get("/prov/polycom_ip330/0004F2AABBCC.cfg", headers=IP330)
    assert r.status_code == 404
    (s,) = sightings("0004f2aabbcc")
    assert s.last_path == "/prov/polycom_ip330/0004F2AABBCC.cfg"
    assert client.get("/0004f2aabbcd.cfg", headers=IP330).status_code == 404
    assert len(sightings("0004f2aabbcd")) == 1


def test_a_returning_phone_updates_its_sighting(client, db):
    client.get("/0004f2777777.cfg", headers=IP330, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    (first,) = sightings("0004f2777777")
    client.get("/prov/polycom_ip330/0004f2777777.cfg", headers=IP330, environ_base={"REMOTE_ADDR": "10.0.0.99"})
    (s,) = sightings("0004f2777777")
    assert (s.ip, s.last_path, s.count) == ("10.0.0.99", "/prov/polycom_ip330/0004f2777777.cfg", 2)
    assert s.first_seen == first.first_seen and s.last_seen >= first.last_seen


def test_phone_config_rendered_from_database(client, ada):
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    assert r.status_code == 200
    assert r.headers["ETag"]
    root = ET.fromstring(r.data)
    regs = root.findall("reg")
    assert [reg.get(f"reg.{i}.address") for i, reg in enumerate(regs, 1)] == ["1001", "1002"]
    one, two = regs
    assert one.get("reg.1.auth.userId") == "1001"
    assert one.get("reg.1.auth.password") == "pw-1001"
    assert one.get("reg.1.displayName") == "Ada Lovelace"
    assert (one.get("reg.1.server.1.address"), one.get("reg.1.server.1.port")) == ("pbx.example.test", "5060")
    assert (two.get("reg.2.server.1.address"), two.get("reg.2.server.1.port")) == ("pbx2.example.test", "5080")
    assert two.get("reg.2.displayName") == "Bob"
    assert root.find("msg").get("msg.mwi.1.subscribe") == "1001"
    assert root.find("tcpIpApp") is None  # no per-phone zone: the site's applies


def test_mac_in_any_case(client, ada):
    r = client.get("/prov/polycom_ip330/0004F2AABBCC-phone.cfg", headers=IP330)
    assert r.status_code == 200
    assert b"pw-1001" in r.data


def test_unchanged_phone_gets_identical_bytes_and_304(client, ada):
    first = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    second = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    assert first.data == second.data
    assert first.headers["ETag"] == second.headers["ETag"]
    again = client.get(
        "/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers={**IP330, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.data == b""
    Extension.update(first_name="Augusta").where(Extension.user_id == "1001").execute()
    changed = client.get(
        "/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers={**IP330, "If-None-Match": first.headers["ETag"]}
    )
    assert changed.status_code == 200
    assert b"Augusta Lovelace" in changed.data


def test_per_phone_time_zone_overrides_the_site(site, client, db):
    admin.add_extension(ExtensionData("2001", "pw"))
    admin.add_phone(site, "0004f2000001", "polycom_ip330", ["2001"], time_zone="America/New_York")
    root = ET.fromstring(client.get("/prov/polycom_ip330/0004f2000001-phone.cfg", headers=IP330).data)
    tz = root.find("tcpIpApp")
    assert tz.get("tcpIpApp.sntp.gmtOffset") == "-18000"
    assert tz.get("tcpIpApp.sntp.daylightSavings.enable") == "1"
    assert tz.get("tcpIpApp.sntp.daylightSavings.start.month") == "3"
    assert tz.get("tcpIpApp.sntp.daylightSavings.start.date") == "8"  # second Sunday
    assert tz.get("tcpIpApp.sntp.daylightSavings.stop.month") == "11"


def test_site_config_from_configuration(site, client):
    site.settings.time.sntp_server = "ntp.example.test"
    site.settings.time.time_zone = "Europe/Berlin"
    site.settings.polling.mode = "rel"
    site.settings.polling.period = 7200
    site.settings.site_params = {"up.backlight.idleIntensity": "1", "feature.presence.enabled": 'x"<&>'}
    root = ET.fromstring(client.get("/prov/polycom_ip330/site.cfg", headers=IP330).data)
    assert root.find("voIpProt").get("voIpProt.server.1.address") == "pbx.example.test"
    tz = root.find("tcpIpApp")
    assert tz.get("tcpIpApp.sntp.address") == "ntp.example.test"
    assert tz.get("tcpIpApp.sntp.gmtOffset") == "3600"
    assert tz.get("tcpIpApp.sntp.daylightSavings.start.dayOfWeek.lastInMonth") == "1"
    prov = root.find("prov")
    assert prov.attrib == {"prov.polling.enabled": "1", "prov.polling.mode": "rel", "prov.polling.period": "7200"}
    params = root.find("params")
    assert params.get("up.backlight.idleIntensity") == "1"
    assert params.get("feature.presence.enabled") == 'x"<&>'


def test_unknown_mac_is_404_and_recorded(client, db):
    r = client.get("/prov/polycom_ip330/0004f2999999-phone.cfg", headers=IP330)
    assert r.status_code == 404
    assert b"not in the database" in r.data
    (s,) = sightings("0004f2999999")
    assert s.problem == "not in the database"
    assert s.model == "polycom_ip330"


def test_wrong_path_still_gets_its_real_model_and_the_mismatch_is_recorded(client, ada):
    r = client.get("/prov/polycom_ip331/0004f2aabbcc-phone.cfg", headers=IP330)
    assert r.status_code == 200
    assert b"SoundPoint IP 330" in r.data
    (s,) = sightings("0004f2aabbcc")
    assert "asked under /prov/polycom_ip331/ but it is a polycom_ip330" in s.problem


def test_user_agent_of_a_model_with_fewer_lines_gets_only_its_lines(client, ada):
    """A two-line IP 330 in the database that is really a one-line IP 4000 gets one line, and the admin is told."""
    r = client.get("/prov/polycom_ip4000/0004f2aabbcc-phone.cfg", headers=headers("polycom_ip4000"))
    assert r.status_code == 200
    assert b'reg.1.address="1001' in r.data and b"reg.2." not in r.data
    (s,) = sightings("0004f2aabbcc")
    assert "it has 2 lines but a polycom_ip4000 has 1: served the first" in s.problem


def test_user_agent_contradicting_the_database_is_recorded(client, ada):
    r = client.get("/prov/polycom_ip331/0004f2aabbcc-phone.cfg", headers=headers("polycom_ip331"))
    assert r.status_code == 200
    assert b"SoundPoint IP 331" in r.data  # the hardware knows what it is
    (s,) = sightings("0004f2aabbcc")
    assert "the database says polycom_ip330 but the phone's User-Agent says polycom_ip331" in s.problem
    # Once the admin fixes the model, the next request clears the problem.
    from autoprov.tables import Phone

    Phone.update(model="polycom_ip331").execute()
    client.get("/prov/polycom_ip331/0004f2aabbcc-phone.cfg", headers=headers("polycom_ip331"))
    (s,) = sightings("0004f2aabbcc")
    assert s.problem == ""
    assert s.count == 2


def test_unknown_model_in_path(client, db):
    r = client.get("/prov/cisco_7940/0004f2aabbcc-phone.cfg", headers=IP330)
    assert r.status_code == 404
    assert b"no model 'cisco_7940'" in r.data


def test_head_request_has_no_body(client, ada):
    r = client.head("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    assert r.status_code == 200
    assert r.data == b""


def test_secrets_only_reach_allowed_networks(site, client, ada):
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8", "2001:db8::/32"]
    path = "/prov/polycom_ip330/0004f2aabbcc-phone.cfg"
    inside = client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert inside.status_code == 200
    assert client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    # An IPv4 phone as a server listening on "::" sees it.
    assert client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "::ffff:10.1.2.3"}).status_code == 200
    assert client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "::ffff:192.0.2.1"}).status_code == 403
    outside = client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert outside.status_code == 403
    assert b"pw-1001" not in outside.data
    assert "192.0.2.1 may not fetch secrets" in sightings("0004f2aabbcc")[0].problem
    # Files without secrets are still served to anyone.
    assert client.get("/prov/polycom_ip330/site.cfg", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200


def test_by_default_only_private_networks_get_secrets(site, client, ada):
    """A fresh install hands SIP passwords to no one on the internet: private networks only, until widened."""
    path = "/prov/polycom_ip330/0004f2aabbcc-phone.cfg"
    for address in ("10.1.2.3", "172.16.0.9", "192.168.1.20", "127.0.0.1", "fd00::5", "::ffff:192.168.1.20"):
        assert client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": address}).status_code == 200, address
    for address in ("198.51.100.7", "8.8.8.8", "2001:db8::1", "::ffff:203.0.113.9"):
        r = client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": address})
        assert r.status_code == 403 and b"pw-1001" not in r.data, address
    site.settings.http.secrets_allowed_from = []  # no one
    assert client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    site.settings.http.secrets_allowed_from = ["0.0.0.0/0", "::/0"]  # anyone, said in so many words
    assert client.get(path, headers=IP330, environ_base={"REMOTE_ADDR": "8.8.8.8"}).status_code == 200
