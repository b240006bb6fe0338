"""Grandstream GXP phones (models/grandstream_gxp): cfg<mac>.xml P-values, as a phone boots and fetches them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests
from autoprov_grandstream_gxp.pvalues import posix_time_zone

from autoprov.provisioning import admin, csv_import
from autoprov.provisioning.admin import AdminError, ExtensionData
from autoprov.tables import Extension, Sighting
from tests.conftest import free_port, running_server, write_config
from tests.test_database_down import database_unavailable, down_client
from tests.test_hostile import HOSTILE

MAC = "000b82aabbcc"


def user_agent(token: str = "GXP2160", version: str = "1.0.11.7", mac: str = MAC) -> str:
    """What a GXP sends with its HTTP file requests (captures quoted in wazo-provd-plugins and FusionPBX)."""
    return f"Grandstream Model HW {token} SW {version} DevId {mac}"


GXP2160 = {"User-Agent": user_agent()}


def pvalues(body: bytes) -> tuple[str | None, dict[int, str]]:
    """(the <mac> element, every P-value) of a gs_provision document; a P-number given twice fails."""
    root = ET.fromstring(body)
    assert root.tag == "gs_provision" and root.get("version") == "1"
    (config,) = root.findall("config")
    assert config.get("version") == "1"
    items = [(int(e.tag[1:]), e.text or "") for e in config]
    assert all(e.tag.startswith("P") for e in config)
    values = dict(items)
    assert len(values) == len(items), "a P-value is given twice"
    mac = root.find("mac")
    return (mac.text if mac is not None else None), values


def site_values(path: str = "prov.example.test:8080", model: str = "grandstream_gxp2160",
                zone: str = "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00") -> dict[int, str]:
    return {30: "pool.ntp.org", 64: "customize", 246: zone, 212: "1", 237: path, 192: f"{path}/prov/{model}",
            330: "1", 331: f"{path}/prov/{model}",
            194: "2", 285: "3", 8458: "0"}  # [polling] default: daily at 03:00 (tests/zerotouch/test_polling.py)


# Written out by hand from the P-value tables in docs/vendors/grandstream.md, not computed by the plugin.
ADA_AND_BOB = {
    # Account 1
    271: "1", 270: "Ada Lovelace", 47: "pbx.example.test:5060", 35: "1001", 36: "1001", 34: "pw<&>\"1001'",
    3: "Ada Lovelace", 103: "0", 32: "60", 33: "1001", 130: "0",
    # Account 2: the 400 block
    401: "1", 417: "Bob", 402: "pbx2.example.test:5080", 404: "1002", 405: "1002", 406: "pw-1002", 407: "Bob",
    408: "0", 412: "60", 426: "", 448: "0",
    # Accounts 3 to 6 of a GXP2160: off
    501: "0", 601: "0", 1701: "0", 1801: "0",
}


def add_ada_and_bob(site, model: str = "grandstream_gxp2160", mac: str = MAC, zone: str | None = None) -> None:
    admin.add_extension(ExtensionData("1001", "pw<&>\"1001'", "Ada", "Lovelace", mailbox="1001"))
    admin.add_extension(ExtensionData("1002", "pw-1002", "Bob", "", server="pbx2.example.test", port=5080))
    admin.add_phone(site, mac, model, ["1001", "1002"], time_zone=zone)


def test_boot_sequence_through_a_real_server(tmp_path, site):
    """A GXP2160 in the database and one not yet there boot against `autoprov serve`, request by request."""
    with site.db.connection_context():
        add_ada_and_bob(site)
        admin.add_extension(ExtensionData("1003", "pw-1003", "Zoë", "Ünïcødé"))
    firmware = site.models["grandstream_gxp2160"].firmware_dir / "gxp2160fw.bin"
    firmware.write_bytes(bytes(range(256)) * 4)
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    config.write_text(config.read_text() + '[time]\ntime_zone = "Europe/Berlin"\n')
    walked = []
    with running_server(config, port) as url:
        def get(path: str, **headers: str) -> requests.Response:
            r = requests.get(url + path, headers={**GXP2160, **headers}, timeout=10)
            walked.append((path, r.status_code))
            return r

        assert get(f"/cfg{MAC}").status_code == 404  # the legacy binary file: not written here
        phone = get(f"/cfg{MAC}.xml")
        assert phone.status_code == 200 and phone.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert pvalues(phone.content) == (MAC, {**ADA_AND_BOB, **site_values()})
        again = get(f"/cfg{MAC}.xml", **{"If-None-Match": phone.headers["ETag"]})
        assert (again.status_code, again.content) == (304, b"")
        book = get("/prov/grandstream_gxp2160/phonebook.xml")
        assert book.status_code == 200
        contacts = [(c.findtext("FirstName"), c.findtext("LastName"), c.findtext("Phone/phonenumber"),
                     c.findtext("Phone/accountindex")) for c in ET.fromstring(book.content).iter("Contact")]
        assert contacts == [("Bob", "", "1002", "0"), ("Ada", "Lovelace", "1001", "0"),
                            ("Zoë", "Ünïcødé", "1003", "0")]
        ranged = get("/prov/grandstream_gxp2160/gxp2160fw.bin", Range="bytes=256-511")
        assert (ranged.status_code, ranged.content) == (206, bytes(range(256)))
        assert ranged.headers["Content-Range"] == "bytes 256-511/1024"
        # A phone not in the database yet: its own file is missing, it falls back to cfg<model>.xml, cfg.xml.
        new = {"User-Agent": user_agent(mac="c074ad000001")}
        assert get("/cfgc074ad000001.xml", **new).status_code == 404
        assert get("/cfggxp2160.xml", **new).status_code == 404
        generic = get("/cfg.xml", **new)
        assert generic.status_code == 200
        assert pvalues(generic.content) == (None, site_values())
    assert walked == [
        (f"/cfg{MAC}", 404), (f"/cfg{MAC}.xml", 200), (f"/cfg{MAC}.xml", 304),
        ("/prov/grandstream_gxp2160/phonebook.xml", 200), ("/prov/grandstream_gxp2160/gxp2160fw.bin", 206),
        ("/cfgc074ad000001.xml", 404), ("/cfggxp2160.xml", 404), ("/cfg.xml", 200),
    ]
    print("\nGXP2160 walked:", walked)


def sightings(mac: str) -> list[Sighting]:
    return list(Sighting.select().where(Sighting.mac == mac))


@pytest.mark.parametrize(("token", "model"), [("GXP1625", "grandstream_gxp1625"), ("GXP2135", "grandstream_gxp2135"),
                                              ("GXP2160", "grandstream_gxp2160"), ("GXP2170", "grandstream_gxp2170")])
def test_user_agents_name_their_model_firmware_and_mac(site, token, model):
    found, identity = site.identify(user_agent(token, "1.0.9.127", "C0:74:AD:12:34:56"))
    assert (found.name, identity.firmware, identity.mac) == (model, "1.0.9.127", "c074ad123456")
    # The SIP User-Agent form names the model too.
    found, identity = site.identify(f"Grandstream {token} 1.0.11.7")
    assert (found.name, identity.firmware, identity.mac) == (model, "1.0.11.7", None)


def test_other_grandstreams_are_not_claimed(site):
    assert site.identify(user_agent("GXP2130")) == (None, None)
    assert site.identify(user_agent("GXP21600")) == (None, None)


def test_unknown_user_agent_gets_a_stored_phone_by_its_mac(site, client, db):
    add_ada_and_bob(site)
    r = client.get(f"/cfg{MAC.upper()}.xml", headers={"User-Agent": "curl/8"})
    assert r.status_code == 200
    assert pvalues(r.data)[1][35] == "1001"
    assert client.get("/cfg.xml", headers={"User-Agent": "curl/8"}).status_code == 404


def test_phone_file_holds_secrets_and_the_sighting_has_the_mac(site, client, db):
    add_ada_and_bob(site)
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    r = client.get(f"/cfg{MAC}.xml", headers=GXP2160, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert r.status_code == 403 and b"1001" not in r.data
    assert client.get("/cfg.xml", headers=GXP2160, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200
    client.get(f"/cfg{MAC}", headers=GXP2160, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    (s,) = sightings(MAC)
    assert (s.model, s.firmware, s.ip) == ("grandstream_gxp2160", "1.0.11.7", "10.0.0.7")


def test_https_and_a_login_in_the_public_url(site, client, db):
    site.settings.http.public_url = "https://pro%40v:s3cr%26t@prov.example.test/autoprov/"
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    r = client.get("/cfg.xml", headers=GXP2160, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    values = pvalues(r.data)[1]
    assert (values[212], values[237], values[330]) == ("2", "prov.example.test/autoprov", "3")
    assert (values[1360], values[1361]) == ("pro@v", "s3cr&t")
    # The login is a credential: cfg.xml is then only for the phones' networks.
    outside = client.get("/cfg.xml", headers=GXP2160, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert outside.status_code == 403 and b"s3cr" not in outside.data


@pytest.mark.parametrize(("zone", "expected"), [
    ("Europe/Berlin", "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00"),
    ("America/New_York", "EST5EDT4,M3.2.0/02:00:00,M11.1.0/02:00:00"),
    ("Australia/Sydney", "AEST-10AEDT-11,M10.1.0/02:00:00,M4.1.0/03:00:00"),
    ("Asia/Kolkata", "IST-5:30"),
    ("UTC", "UTC0"),
    ("America/Sao_Paulo", "STD3"),  # abbreviated "-03": POSIX needs letters
])
def test_time_zone_is_a_posix_tz_string(zone, expected):
    assert posix_time_zone(zone) == expected


def test_per_phone_time_zone(site, client, db):
    add_ada_and_bob(site, zone="America/New_York")
    values = pvalues(client.get(f"/cfg{MAC}.xml", headers=GXP2160).data)[1]
    assert (values[64], values[246]) == ("customize", "EST5EDT4,M3.2.0/02:00:00,M11.1.0/02:00:00")


def test_more_lines_than_the_model_has(site, client, db):
    for n in range(1, 4):
        admin.add_extension(ExtensionData(f"100{n}", f"pw-{n}"))
    with pytest.raises(AdminError, match="has 2 line") as info:
        admin.add_phone(site, MAC, "grandstream_gxp1625", ["1001", "1002", "1003"])
    assert info.value.field == "lines"
    # Stored as a GXP2160 with three lines, the phone says it is a two-account GXP1625: it gets two.
    admin.add_phone(site, MAC, "grandstream_gxp2160", ["1001", "1002", "1003"])
    r = client.get(f"/cfg{MAC}.xml", headers={"User-Agent": user_agent("GXP1625")})
    values = pvalues(r.data)[1]
    assert (values[35], values[404], values[401]) == ("1001", "1002", "1")
    assert 501 not in values and 1701 not in values
    (s,) = sightings(MAC)
    assert "it has 3 lines but a grandstream_gxp1625 has 2: served the first" in s.problem


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_round_trip_or_are_refused_at_the_door(site, client, db, name):
    admin.add_extension(ExtensionData("1001", "pa\"ss<&>'word", first_name=name))
    if any(c in name for c in "\r\n\t"):
        with pytest.raises(AdminError, match="line break") as info:
            admin.add_phone(site, MAC, "grandstream_gxp2160", ["1001"])
        assert info.value.field == "first_name"
        return
    admin.add_phone(site, MAC, "grandstream_gxp2160", ["1001"])
    r = client.get(f"/cfg{MAC}.xml", headers=GXP2160)
    values = pvalues(r.data)[1]
    assert (values[3], values[270], values[34]) == (name, name, "pa\"ss<&>'word")
    book = ET.fromstring(client.get("/prov/grandstream_gxp2160/phonebook.xml", headers=GXP2160).data)
    assert [c.findtext("FirstName") for c in book.iter("Contact")] == [name.strip()]


@pytest.mark.parametrize("name", ["bell\x07", "esc\x1b[2J", "end\ufffe", "nul-free\x7f"])
def test_characters_the_file_cannot_carry_are_refused(site, db, name):
    admin.add_extension(ExtensionData("1001", "pw", last_name=name))
    with pytest.raises(AdminError, match="control character") as info:
        admin.add_phone(site, MAC, "grandstream_gxp2160", ["1001"])
    assert info.value.field == "last_name"


def test_phonebook_folds_line_breaks_of_extensions_on_no_grandstream(client, db):
    admin.add_extension(ExtensionData("1001", "pw", first_name="two\nlines\r\nand\ttab", last_name=" <&> "))
    book = ET.fromstring(client.get("/prov/grandstream_gxp2160/phonebook.xml", headers=GXP2160).data)
    (contact,) = book.iter("Contact")
    assert (contact.findtext("FirstName"), contact.findtext("LastName")) == ("two lines and tab", "<&>")


def test_extension_update_with_a_line_break_is_refused_for_a_grandstream(site, db):
    add_ada_and_bob(site)
    with pytest.raises(AdminError, match="line break"):
        admin.update_extension("1002", site=site, last_name="Smith\nJones")
    assert Extension.get(Extension.user_id == "1002").last_name == ""
    admin.update_extension("1002", site=site, last_name='O"Brien <&>')
    assert Extension.get(Extension.user_id == "1002").last_name == 'O"Brien <&>'


def test_csv_import_refuses_a_line_break_for_a_grandstream(site, client, db):
    bad = f'extension,secret,first_name,mac,model,line\n1001,pw,"two\nlines",{MAC},grandstream_gxp2160,1\n'
    with pytest.raises(csv_import.ImportFailed) as info:
        csv_import.import_text(site, bad)
    assert any("line break" in e for e in info.value.errors)
    assert Extension.select().count() == 0
    good = f'extension,secret,first_name,mac,model,line\n1001,pw,"Zoë <&> ""Q""",{MAC},grandstream_gxp2160,1\n'
    csv_import.import_text(site, good)
    values = pvalues(client.get(f"/cfg{MAC}.xml", headers=GXP2160).data)[1]
    assert values[3] == 'Zoë <&> "Q"'


def test_database_down_is_503_never_a_partial_config(tmp_path):
    client = down_client(tmp_path, "sqlite:////nonexistent-dir/autoprov.db")
    r = client.get(f"/cfg{MAC}.xml", headers=GXP2160)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "17")
    assert b"P34" not in r.data
    # The files the phone falls back through need no database.
    assert client.get(f"/cfg{MAC}", headers=GXP2160).status_code == 404
    assert client.get("/cfg.xml", headers=GXP2160).status_code == 200


def test_database_lost_under_a_running_server(tmp_path, site, server):
    with site.db.connection_context():
        add_ada_and_bob(site)
    ok = requests.get(f"{server}/cfg{MAC}.xml", headers=GXP2160, timeout=10)
    assert ok.status_code == 200
    with database_unavailable(site, tmp_path):
        for _ in range(6):  # both workers, several threads
            r = requests.get(f"{server}/cfg{MAC}.xml", headers=GXP2160, timeout=10)
            assert (r.status_code, r.headers.get("Retry-After")) == (503, "30")
            assert b"<P34>" not in r.content
        assert requests.get(f"{server}/cfg{MAC}", headers=GXP2160, timeout=10).status_code == 404
    assert requests.get(f"{server}/cfg{MAC}.xml", headers=GXP2160, timeout=10).content == ok.content
