"""The company directory a phone reads, and how its user's own contacts meet it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from autoprov.phonefiles import storedfiles
from autoprov.phonefiles.tables import StoredFile
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.provisioning.tables import Extension
from tests.phones import headers

MODEL = "polycom_ip330"
MAC = "0004f2aabbcc"
PATHS = [f"/prov/{MODEL}/000000000000-directory.xml", f"/prov/{MODEL}/contacts/000000000000-directory.xml",
         f"/prov/{MODEL}/{MAC}-directory.xml", f"/prov/{MODEL}/contacts/{MAC}-directory.xml"]


def items(body: bytes) -> list[dict[str, str]]:
    root = ET.fromstring(body)
    assert root.tag == "directory"
    return [{child.tag: child.text or "" for child in item} for item in root.find("item_list")]


def get(client, path: str, **extra: str):
    return client.get(path, headers=headers(MODEL) | extra)


@pytest.fixture
def company(db):
    for user_id, first, last in [("1003", "Grace", "Hopper"), ("1001", "Ada", "Lovelace"), ("1002", "Alan", "Turing"),
                                 ("1004", "", "")]:
        admin.add_extension(ExtensionData(user_id, "pw", first, last))
    admin.add_extension(ExtensionData("1999", "pw", "Hidden", "Person", in_directory=False))


@pytest.mark.parametrize("path", PATHS)
def test_company_directory_in_every_place_a_phone_asks(client, company, path):
    r = get(client, path)
    assert r.status_code == 200, r.data
    assert r.mimetype == "application/xml"
    assert [(i["fn"], i["ln"], i["ct"]) for i in items(r.data)] == [
        ("1004", "", "1004"),  # no name: its number
        ("Grace", "Hopper", "1003"),
        ("Ada", "Lovelace", "1001"),
        ("Alan", "Turing", "1002"),
    ]


def test_polling_phone_gets_304_until_the_directory_changes(client, company):
    first = get(client, PATHS[0])
    etag = first.headers["ETag"]
    assert get(client, PATHS[0]).data == first.data  # byte-stable
    assert get(client, PATHS[0], **{"If-None-Match": etag}).status_code == 304
    admin.add_extension(ExtensionData("1005", "pw", "Katherine", "Johnson"))
    changed = get(client, PATHS[0], **{"If-None-Match": etag})
    assert changed.status_code == 200 and "Johnson" in [i["ln"] for i in items(changed.data)]


def test_hostile_names_are_escaped_and_cut_to_40_bytes(client, db):
    hostile = {
        "2001": ('Robert"); <DROP> & \'co\'', "O'Brien & <Sons>"),
        "2002": ("Line\nbreak\tand\r\nreturn", "x\x07\x1bcontrol"),
        "2003": ("Ünïcödé" * 8, "日本語の名前" * 5),
        "2004": ("ab" + "é" * 30, "e\u0301" * 20),
    }
    for user_id, (first, last) in hostile.items():
        Extension.create(user_id=user_id, secret="pw", first_name=first, last_name=last)  # raw, as any import could
    body = get(client, PATHS[0]).data
    parsed = {i["ct"]: i for i in items(body)}
    assert parsed["2001"]["fn"] == 'Robert"); <DROP> & \'co\''
    assert parsed["2001"]["ln"] == "O'Brien & <Sons>"
    assert parsed["2002"]["fn"] == "Line break and return"
    assert parsed["2002"]["ln"] == "xcontrol"
    for item in parsed.values():
        for field in ("fn", "ln"):
            encoded = item[field].encode("utf-8")
            assert len(encoded) <= 40
    assert parsed["2003"]["fn"] == ("Ünïcödé" * 8).encode()[:40].decode("utf-8", "ignore")
    assert parsed["2003"]["ln"] == "日本語の名前日本語の名前日"  # 13 characters of 3 bytes: 39 bytes
    assert parsed["2004"]["fn"] == "ab" + "é" * 19


def test_phone_contacts_merge_with_company_changes(client, company):
    """The phone writes back its whole directory: company entries (one with a speed dial the user set, one
    renamed by the user) and two personal contacts. It reads back the company's current entries, with the
    user's per-contact settings, plus its personal ones; later company changes reach it too."""
    upload = b"""<?xml version="1.0" encoding="UTF-8"?>
<directory><item_list>
  <item><fn>Ada</fn><ln>Lovelace</ln><ct>1001</ct><sd>1</sd><rt>3</rt></item>
  <item><fn>My name for Alan</fn><ln>T</ln><ct>1002</ct></item>
  <item><fn>Mum</fn><ln></ln><ct>0155501234</ct><sd>2</sd></item>
  <item><fn>Pizza &amp; Co</fn><ln>Delivery</ln><ct>sip:pizza@example.org</ct></item>
  <item><fn>Hidden</fn><ln>Person</ln><ct>1999</ct></item>
</item_list></directory>"""
    put = client.put(f"/prov/{MODEL}/contacts/{MAC}-directory.xml", data=upload, headers=headers(MODEL))
    assert put.status_code == 200, put.data
    merged = items(get(client, PATHS[3]).data)
    assert merged == items(get(client, PATHS[2]).data)
    by_number = {i["ct"]: i for i in merged}
    assert by_number["1001"] == {"fn": "Ada", "ln": "Lovelace", "ct": "1001", "sd": "1", "rt": "3"}
    assert (by_number["1002"]["fn"], by_number["1002"]["ln"]) == ("Alan", "Turing")  # company names win
    assert by_number["0155501234"]["sd"] == "2"
    assert by_number["sip:pizza@example.org"]["fn"] == "Pizza & Co"
    assert "1999" not in by_number  # not listed in the directory: withdrawn from phones too
    assert [i["ct"] for i in merged][:4] == ["1004", "1003", "1001", "1002"]  # company first, in order
    # The company changes: a new colleague, a renamed one, one withdrawn.
    admin.add_extension(ExtensionData("1005", "pw", "Katherine", "Johnson"))
    Extension.update(last_name="Hopper-Murray").where(Extension.user_id == "1003").execute()
    Extension.update(in_directory=False).where(Extension.user_id == "1002").execute()
    after = {i["ct"]: i for i in items(get(client, PATHS[3]).data)}
    assert after["1005"]["ln"] == "Johnson" and after["1003"]["ln"] == "Hopper-Murray"
    assert "1002" not in after and after["1001"]["sd"] == "1" and "0155501234" in after
    # Other phones are untouched by this phone's contacts.
    assert "0155501234" not in {i["ct"] for i in items(get(client, f"/prov/{MODEL}/0004f2000001-directory.xml").data)}


CONTACTS = f"/prov/{MODEL}/contacts/{MAC}-directory.xml"
MUM = b"<item><fn>Mum</fn><ct>0155501234</ct></item>"


def test_contacts_are_checked_as_the_directory_reads_them(client, company):
    """A prefix never declared is well-formed to a parser without namespaces, and unreadable to ElementTree."""
    unbound = b"<directory><item_list>" + MUM.replace(b"</ct>", b"</ct><x:sd>1</x:sd>") + b"</item_list></directory>"
    refused = client.put(CONTACTS, data=unbound, headers=headers(MODEL))
    assert refused.status_code == 400 and b"unbound prefix" in refused.data
    assert StoredFile.select().count() == 0
    declared = unbound.replace(b"<directory>", b'<directory xmlns:x="urn:example">')
    assert client.put(CONTACTS, data=declared, headers=headers(MODEL)).status_code == 200
    assert "0155501234" in [i["ct"] for i in items(get(client, PATHS[3]).data)]


def test_stored_contacts_that_cannot_be_read_leave_the_company_directory(site, client, company, caplog):
    """A body stored before uploads were checked as they are read: the phone still gets a directory."""
    storedfiles.store(site.db, MAC, storedfiles.CONTACTS, "directory.xml", b"<directory><x:sd>1</x:sd></directory>",
                      "an older autoprov")
    for path in PATHS[2:]:
        r = get(client, path)
        assert r.status_code == 200
        assert items(r.data) == items(get(client, PATHS[0]).data)
    assert f"contacts/{MAC}-directory.xml (version 1) cannot be read" in caplog.text


def test_directory_requests_that_do_not_fit(client, company):
    assert get(client, "/prov/nope/000000000000-directory.xml").status_code == 404
    assert get(client, f"/prov/{MODEL}/0004f2zzbbcc-directory.xml").status_code == 400
    assert get(client, f"/prov/{MODEL}/contacts/{MAC}-calls.xml").status_code == 404
    # The generated phone config is still core's, beside the directory.
    assert get(client, f"/prov/{MODEL}/{MAC}-phone.cfg").status_code == 404  # not in the database: core's answer
