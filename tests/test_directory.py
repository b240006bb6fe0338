"""The company directory a phone reads, and how its user's own contacts meet it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from autoprov.phonefiles import storedfiles
from autoprov.phonefiles.tables import StoredFile
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.tables import Extension
from tests.phones import headers

MODEL = "polycom_ip330"
MAC = "0004f2aabbcc"
PATHS = [f"/prov/{MODEL}/000000000000-directory.xml", f"/prov/{MODEL}/contacts/000000000000-directory.xml",
         f"/prov/{MODEL}/{MAC}-directory.xml", f"/prov/{MODEL}/contacts/{MAC}-directory.xml"]
CONTACTS = PATHS[3]  # where the phone also writes its directory


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


def directory_xml(*entries: str) -> bytes:
    """A directory as a phone writes it back whole: these ``<item>`` bodies."""
    return ("<directory><item_list>" + "".join(f"<item>{e}</item>" for e in entries)
            + "</item_list></directory>").encode()


def upload(client, *entries: str) -> None:
    put = client.put(CONTACTS, data=directory_xml(*entries), headers=headers(MODEL))
    assert put.status_code == 200, put.data


def merged(client) -> list[tuple[str, ...]]:
    """(fn, ln, ct, other fields...) of each entry the phone reads."""
    return [(i.pop("fn"), i.pop("ln"), i.pop("ct"), *(f"{k}={v}" for k, v in i.items()))
            for i in items(get(client, PATHS[3]).data)]


COMPANY = [("1004", "", "1004"), ("Grace", "Hopper", "1003"), ("Ada", "Lovelace", "1001"), ("Alan", "Turing", "1002")]


def test_phone_contacts_merge_with_company_changes(client, company):
    """The phone writes back its whole directory: company entries as it got them (one with a speed dial and a
    ring tone the user set), one the user renamed, and personal contacts. It reads back the company's current
    entries with the user's settings for them, then everything else the user has; later company changes reach
    it too."""
    upload(client,
           "<fn>Ada</fn><ln>Lovelace</ln><ct>1001</ct><sd>1</sd><rt>3</rt>",
           "<fn>My name for Alan</fn><ln>T</ln><ct>1002</ct>",
           "<fn>Mum</fn><ln></ln><ct>0155501234</ct><sd>2</sd>",
           "<fn>Pizza &amp; Co</fn><ln>Delivery</ln><ct>sip:pizza@example.org</ct>",
           "<fn>Hidden</fn><ln>Person</ln><ct>1999</ct>")
    assert items(get(client, PATHS[3]).data) == items(get(client, PATHS[2]).data)
    assert merged(client) == [
        ("1004", "", "1004"), ("Grace", "Hopper", "1003"), ("Ada", "Lovelace", "1001", "sd=1", "rt=3"),
        ("Alan", "Turing", "1002"),
        ("My name for Alan", "T", "1002"),  # the user's own: kept beside the company entry
        ("Mum", "", "0155501234", "sd=2"), ("Pizza & Co", "Delivery", "sip:pizza@example.org"),
        # Hidden Person, as the server gave it when listed: not listed now, so withdrawn from phones too.
    ]
    # The company changes: a new colleague, one withdrawn.
    admin.add_extension(ExtensionData("1005", "pw", "Katherine", "Johnson"))
    Extension.update(in_directory=False).where(Extension.user_id == "1002").execute()
    after = merged(client)
    assert ("Katherine", "Johnson", "1005") in after and ("Alan", "Turing", "1002") not in after
    assert ("My name for Alan", "T", "1002") in after and ("Ada", "Lovelace", "1001", "sd=1", "rt=3") in after
    # Other phones are untouched by this phone's contacts.
    assert "0155501234" not in {i["ct"] for i in items(get(client, f"/prov/{MODEL}/0004f2000001-directory.xml").data)}


def test_entries_the_user_made_with_a_colleagues_number_are_kept(client, company):
    """Only the entry the server gave is the company entry: a second one with the same number, one with an
    unlisted extension's number, and an exact copy are the user's, each with its own settings."""
    upload(client,
           "<fn>Alan</fn><ln>Turing</ln><ct>1002</ct><sd>4</sd>",
           "<fn>Alan (mobile forward)</fn><ln></ln><ct>1002</ct><sd>5</sd>",
           "<fn>Alan</fn><ln>Turing</ln><ct>1002</ct><sd>6</sd>",
           "<fn>My friend</fn><ln></ln><ct>1999</ct><sd>7</sd>")
    assert merged(client) == [
        *COMPANY[:3], ("Alan", "Turing", "1002", "sd=4"),
        ("Alan (mobile forward)", "", "1002", "sd=5"), ("Alan", "Turing", "1002", "sd=6"),
        ("My friend", "", "1999", "sd=7"),
    ]


def test_company_entries_are_recognised_as_the_phone_got_them(client, db):
    """Names the server cut to 40 bytes, and a nameless extension shown by its number, come back as the phone
    holds them: still the company entry, not a second one."""
    admin.add_extension(ExtensionData("2001", "pw", "Bartholomew-Maximilian", "Featherstonehaugh-Worthington" * 2))
    admin.add_extension(ExtensionData("2002", "pw"))
    admin.add_extension(ExtensionData("2003", "pw", "Grace", "Hopper"))
    sent = {i["ct"]: i for i in items(get(client, PATHS[0]).data)}
    cut = sent["2001"]["ln"]
    assert len(cut.encode()) == 40
    upload(client,
           f"<fn>Bartholomew-Maximilian</fn><ln>{cut}</ln><ct>2001</ct><sd>1</sd>",
           "<fn>2002</fn><ln></ln><ct>2002</ct><sd>2</sd>",
           "<fn>Grace</fn><ln>Hopper</ln><ct>2003</ct><sd>3</sd>")
    Extension.update(last_name="Hopper-Murray").where(Extension.user_id == "2003").execute()
    assert merged(client) == [
        ("2002", "", "2002", "sd=2"), ("Bartholomew-Maximilian", cut, "2001", "sd=1"),
        ("Grace", "Hopper-Murray", "2003", "sd=3"),
    ]


ADA = "<fn>Ada</fn><ln>Lovelace</ln><ct>1001</ct><sd>1</sd><rt>3</rt>"
MUM_ITEM = "<fn>Mum</fn><ln></ln><ct>0155501234</ct><sd>2</sd>"


def test_a_renamed_extension_keeps_the_users_settings_without_a_stale_copy(client, company):
    """The upload was sorted out as it arrived: after a rename the phone shows the new name with the speed dial
    and ring tone its user gave the old one, and no copy under the old name; read back and uploaded again, it
    is the same directory."""
    upload(client, ADA, MUM_ITEM)
    admin.update_extension("1001", first_name="Augusta Ada", last_name="King")
    expected = [COMPANY[0], COMPANY[1], ("Augusta Ada", "King", "1001", "sd=1", "rt=3"), COMPANY[3],
                ("Mum", "", "0155501234", "sd=2")]
    assert merged(client) == expected
    served = get(client, PATHS[3])
    assert get(client, PATHS[3], **{"If-None-Match": served.headers["ETag"]}).status_code == 304
    assert client.put(CONTACTS, data=served.data, headers=headers(MODEL)).status_code == 200
    assert merged(client) == expected


def test_extensions_deleted_or_unlisted_since_the_upload_leave_the_phone(client, company):
    """They were company entries when the phone uploaded them: the phone drops them with the directory (an
    unlisted one listed again comes back with its user's settings)."""
    upload(client, ADA, "<fn>Alan</fn><ln>Turing</ln><ct>1002</ct><sd>4</sd>", MUM_ITEM)
    admin.remove_extension("1001")
    admin.update_extension("1002", in_directory=False)
    assert merged(client) == [COMPANY[0], COMPANY[1], ("Mum", "", "0155501234", "sd=2")]
    admin.update_extension("1002", in_directory=True)
    assert merged(client) == [COMPANY[0], COMPANY[1], ("Alan", "Turing", "1002", "sd=4"),
                              ("Mum", "", "0155501234", "sd=2")]


def test_the_users_own_entries_stay_whatever_becomes_of_the_extension(client, company):
    """An entry the user made with a colleague's number, and a company entry the user renamed, are personal:
    kept unchanged when the extension is renamed, unlisted or deleted."""
    upload(client,
           "<fn>Alan</fn><ln>Turing</ln><ct>1002</ct><sd>4</sd>",
           "<fn>Alan (mobile forward)</fn><ln></ln><ct>1002</ct><sd>5</sd>",
           "<fn>Ada</fn><ln>my boss</ln><ct>1001</ct><sd>6</sd>")
    mine = [("Alan (mobile forward)", "", "1002", "sd=5"), ("Ada", "my boss", "1001", "sd=6")]
    admin.update_extension("1002", first_name="Alan M.")
    assert merged(client) == [*COMPANY[:3], ("Alan M.", "Turing", "1002", "sd=4"), *mine]
    admin.update_extension("1002", in_directory=False)
    admin.remove_extension("1001")
    assert merged(client) == [*COMPANY[:2], *mine]


def test_contacts_stored_before_they_were_sorted_out_keep_the_rule_they_had(site, client, company):
    """An upload stored by an older autoprov is sorted out on each read against the company directory of the
    moment, as it was then: unlisted extensions are dropped, and a renamed one's old entry becomes personal."""
    storedfiles.store(site.db, MAC, storedfiles.CONTACTS, "directory.xml",
                      directory_xml(ADA, "<fn>Hidden</fn><ln>Person</ln><ct>1999</ct>", MUM_ITEM), "an older autoprov")
    assert merged(client) == [*COMPANY[:2], ("Ada", "Lovelace", "1001", "sd=1", "rt=3"), COMPANY[3],
                              ("Mum", "", "0155501234", "sd=2")]
    admin.update_extension("1001", last_name="King")
    assert merged(client) == [*COMPANY[:2], ("Ada", "King", "1001"), COMPANY[3],
                              ("Ada", "Lovelace", "1001", "sd=1", "rt=3"), ("Mum", "", "0155501234", "sd=2")]


def test_an_older_database_is_upgraded_in_place(site, client, company):
    """``autoprov init`` adds the column to a database from before uploads were sorted out: what is stored is
    served as before, and the phone's next upload is sorted out as it arrives."""
    upload(client, ADA, MUM_ITEM)
    before = get(client, PATHS[3]).data
    site.db.execute_sql("ALTER TABLE stored_file DROP COLUMN classified")
    site.db.execute_sql("UPDATE schema_version SET version = 2 WHERE component = 'phonefiles'")
    assert [(m.component, m.version) for m in site.init_database()] == [("phonefiles", 3), ("phonefiles", 4)]
    assert site.init_database() == []
    assert get(client, PATHS[3]).data == before
    admin.update_extension("1001", last_name="King")
    assert ("Ada", "Lovelace", "1001", "sd=1", "rt=3") in merged(client)  # the rule it was stored under
    upload(client, ADA, "<fn>Ada</fn><ln>King</ln><ct>1001</ct>", MUM_ITEM)  # the user edits: sorted out now
    admin.update_extension("1001", first_name="Augusta Ada")
    assert merged(client) == [*COMPANY[:2], ("Augusta Ada", "King", "1001"), COMPANY[3],
                              ("Ada", "Lovelace", "1001", "sd=1", "rt=3"), ("Mum", "", "0155501234", "sd=2")]


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
