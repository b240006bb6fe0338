"""Hostile names and values cannot break a phone's XML: every generated file parses and round-trips."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from autoprov.provisioning import admin
from autoprov.provisioning.admin import AdminError, ExtensionData
from autoprov.xmlsafe import truncate_utf8, xml_attr
from tests.phones import headers

HOSTILE = [
    'O"Brien <&> Sons',
    "it's <b>bold</b> & 'quoted'",
    "two\nlines\r\nand\ttab",
    "Zoë Ünïcødé 日本語 🎉",
    "]]><!-- --><![CDATA[x",
    "&amp; already escaped &#10;",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_display_name_round_trips(site, client, db, name):
    admin.add_extension(ExtensionData("1001", "pa\"ss<&>'word", first_name=name))
    admin.add_phone(site, "0004f2aabbcc", "polycom_ip330", ["1001"])
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=headers("polycom_ip330"))
    assert r.status_code == 200
    reg = ET.fromstring(r.data).find("reg")  # a parse error here is a phone rejecting its config
    assert reg.get("reg.1.displayName") == name
    assert reg.get("reg.1.auth.password") == "pa\"ss<&>'word"


def test_characters_xml_forbids_are_dropped_not_passed_through(site, client, db):
    admin.add_extension(ExtensionData("1001", "pw", first_name="bell\x07 vt\x0b esc\x1b end\ufffe"))
    admin.add_phone(site, "0004f2aabbcc", "polycom_ip330", ["1001"])
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=headers("polycom_ip330"))
    assert ET.fromstring(r.data).find("reg").get("reg.1.displayName") == "bell vt esc end"


def test_nul_in_a_name_is_refused(db):
    with pytest.raises(AdminError, match="NUL"):
        admin.add_extension(ExtensionData("1001", "pw", last_name="a\x00b"))


def test_secret_with_a_newline_is_refused(db):
    with pytest.raises(AdminError, match="one line"):
        admin.add_extension(ExtensionData("1001", "pw\nreg.2.address=evil"))


@pytest.mark.parametrize("user_id", ["10 01", '1001"', "<1001>", "", "1001\n", "../1001"])
def test_extension_ids_that_cannot_be_sip_users_are_refused(db, user_id):
    with pytest.raises(AdminError):
        admin.add_extension(ExtensionData(user_id, "pw"))


def test_xml_attr_escapes_everything_an_attribute_needs():
    assert xml_attr('<a href="x">&\'\n\t\r') == "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&#10;&#9;&#13;"
    assert xml_attr(None) == ""
    assert xml_attr(True) == "1"
    doc = f'<x a="{xml_attr(chr(0x1F) + "ok" + chr(0xD800))}"/>'
    assert ET.fromstring(doc).get("a") == "ok"


def test_truncate_utf8_cuts_on_a_character_boundary():
    assert truncate_utf8("é" * 30, 40) == "é" * 20
    assert truncate_utf8("a" + "é" * 30, 40) == "a" + "é" * 19
    assert truncate_utf8("🎉🎉", 7) == "🎉"
    assert truncate_utf8("short", 40) == "short"
    # "e" + COMBINING ACUTE ACCENT is one letter on the screen: kept whole or not at all.
    assert truncate_utf8("abcde\u0301", 6) == "abcd"
    assert truncate_utf8("abcde\u0301", 7) == "abcde\u0301"


def test_nul_in_a_path_or_user_agent_is_a_404_not_a_database_error(client, db):
    """PostgreSQL cannot store NUL in text: what a client sends is made storable before it is recorded."""
    assert client.get("/prov/x%00y/z", headers=headers("polycom_ip330")).status_code == 404
    r = client.get("/0004f2aabbcc.cfg", headers={"User-Agent": "Polycom\x00SPIP_330"})
    assert r.status_code == 404


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example", "bad host", "[::1"])
def test_a_malformed_host_header_is_not_a_500(client, db, host):
    """Werkzeug raises BadHost for these when it binds to the request's host; a phone's answer never depends
    on the Host header."""
    r = client.get("/000000000000.cfg", headers={**headers("polycom_ip330"), "Host": host})
    assert r.status_code == 200, r.data


def test_an_overlong_user_agent_version_is_stored_cut_and_never_fails_the_answer(site, client, db):
    """A version longer than the sighting's column (64) overflowed it on PostgreSQL and failed even the
    initial config; it is cut to fit, and a sighting is never what a phone's answer waits for."""
    ua = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3." + "1" * 200
    assert client.get("/000000000000.cfg", headers={"User-Agent": ua}).status_code == 200
    from autoprov.tables import Sighting

    (row,) = Sighting.select().where(Sighting.user_agent == ua[:255])
    assert row.model == "polycom_ip330" and len(row.firmware) == 64 and row.firmware.startswith("3.111")
