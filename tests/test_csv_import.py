"""``autoprov import FILE.csv``: extensions and phones in bulk, all or nothing, every bad row reported."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autoprov import bulk
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.provisioning.csv_import import ImportFailed, import_file
from autoprov.tables import Extension, Phone, PhoneLine
from tests.conftest import cli as autoprov
from tests.conftest import write_config
from tests.phones import headers


def write_csv(tmp_path: Path, text: str, name: str = "import.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def failures(site, path: Path) -> list[str]:
    with pytest.raises(ImportFailed) as info:
        import_file(site, path)
    return info.value.errors


def lines_of(mac: str) -> list[tuple[int, str]]:
    return [
        (row.position, row.extension.user_id)
        for row in PhoneLine.select(PhoneLine, Extension).join(Extension).join_from(PhoneLine, Phone)
        .where(Phone.mac == mac).order_by(PhoneLine.position)
    ]


def registrations(client, mac: str) -> dict[str, str]:
    r = client.get(f"/prov/polycom_ip330/{mac}-phone.cfg", headers=headers("polycom_ip330"))
    assert r.status_code == 200, r.data
    return {k: v for reg in ET.fromstring(r.data).iter("reg") for k, v in reg.attrib.items()}


def counts() -> tuple[int, int, int]:
    return Extension.select().count(), Phone.select().count(), PhoneLine.select().count()


HAPPY = """\
Extension,Secret,First_Name,last_name,mailbox,directory,sip_server,sip_port,MAC,model,line,time_zone,notes
1001,pw-1001,Ada,Lovelace,1001,yes,,,00:04:F2:AA:BB:CC,polycom_ip330,2,Europe/London,front desk
1002,pw-1002,Grace,Hopper,,no,pbx2.example.test,5080,0004f2aabbcc,,,,
1003,pw-1003,Alan,Turing,,,,,0004.f2aa.bbdd,polycom_ip4000,,,
1004,pw-1004,Not,On A Phone,,0,,,,,,,
"""


def test_cli_imports_and_phone_config_renders(tmp_path, site, client):
    config = write_config(tmp_path / "autoprov.toml", site.settings, 8080)
    result = autoprov("import", str(write_csv(tmp_path, HAPPY)), config=config)
    assert result.stdout == "imported 4 extension(s), 2 phone(s), 3 line(s)\n"
    assert result.stderr == ""
    with site.db.connection_context():
        assert lines_of("0004f2aabbcc") == [(1, "1002"), (2, "1001")]  # 1001 asked for line 2; 1002 took 1
        assert lines_of("0004f2aabbdd") == [(1, "1003")]
        phone = Phone.get(Phone.mac == "0004f2aabbcc")
        assert (phone.model, phone.time_zone, phone.notes) == ("polycom_ip330", "Europe/London", "front desk")
        grace = Extension.get(Extension.user_id == "1002")
        assert (grace.server, grace.port, grace.in_directory, grace.mailbox) == ("pbx2.example.test", 5080, False, "")
        ada = Extension.get(Extension.user_id == "1001")
        assert (ada.secret, ada.server, ada.port, ada.in_directory) == ("pw-1001", None, None, True)
        assert ada.mailbox == "1001"
        assert Extension.get(Extension.user_id == "1004").in_directory is False
    reg = registrations(client, "0004f2aabbcc")
    assert reg["reg.1.auth.userId"] == "1002"
    assert reg["reg.1.server.1.address"] == "pbx2.example.test"
    assert reg["reg.1.server.1.port"] == "5080"
    assert reg["reg.2.auth.password"] == "pw-1001"
    assert reg["reg.2.displayName"] == "Ada Lovelace"
    assert reg["reg.2.server.1.address"] == "pbx.example.test"


def test_import_file_returns_counts(tmp_path, site, db):
    result = import_file(site, write_csv(tmp_path, HAPPY))
    assert (result.extensions, result.phones, result.lines) == (4, 2, 3)
    assert counts() == (4, 2, 3)


BAD = """\
extension,secret,first_name,mac,model,line,time_zone,directory,sip_port
2001,pw,Ann,0004f2000001,polycom_ip330,,,,
2001,pw,Anne,,,,,,
9999,,,0004f2000008,polycom_ip330,,,,
2002,pw,,0004f2000002,polycom_ip4000,,,,
2003,pw,,0004f2000002,,,,,
2004,pw,,0004f2000003,polycom_ip330,1,,,
2005,pw,,0004f2000003,,1,,,
2006,pw,,0004f2000004,polycom_ip330,3,,,
1001,,,0004f2aabbcc,polycom_ip330,,,,
1001,other-pw,,,,,,,
2007,pw,,not-a-mac,polycom_ip330,,,,
2008,pw,,0004f2000005,polycom_vvx999,,,,
2009,pw,,0004f2000006,polycom_ip330,,Mars/Olympus,,
2010,,Nobody,,,,,,
2011,pw,,0004f2000007,,,,,
bad id,pw,,,,,,,
2012,pw,,,,,,maybe,
2013,pw,,,,,,,http
,pw,,,,,,,
2014,pw,,,,2,,,
2015,pw,,0004f2000001,polycom_ip4000,,,,
2016,pw,,,,,,,,surplus
2002,pw2,,,,,,,
2017,pw,,,,,,,²
2018,pw,,0004f2000009,polycom_ip330,²,,,
"""


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(tmp_path, site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001"))
    admin.add_phone(site, "0004f2aabbcc", "polycom_ip330", ["1001"])
    assert failures(site, write_csv(tmp_path, BAD)) == [
        "line 3: extension 2001: first_name 'Anne' differs from line 2 ('Ann')",
        "line 4: unknown extension 9999 (not in the file or the database)",
        "line 6: phone 0004f2000002: polycom_ip4000 has 1 line(s); 2 given",
        "line 8: phone 0004f2000003: line 1 is already given on line 7",
        "line 9: phone 0004f2000004: polycom_ip330 has 2 line(s); there is no line 3",
        "line 10: duplicate MAC: phone 0004f2aabbcc already exists",
        "line 11: extension 1001 already exists with a different secret; leave its columns blank to put it on a "
        "phone",
        "line 12: not a MAC address: 'not-a-mac' (12 hex digits, optionally separated by : or -, or dotted as "
        "0004.f2aa.bbcc)",
        # Every installed model, in name order (other model packages may be installed beside the Polycom ones).
        f"line 13: phone 0004f2000005: unknown model 'polycom_vvx999' (installed: {', '.join(sorted(site.models))})",
        "line 14: unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/London)",
        "line 15: extension 2010 is new and needs a secret (the PBX's SIP password)",
        "line 16: phone 0004f2000007 needs a model",
        "line 17: extension 'bad id': use letters, digits and _.+- only",
        "line 18: directory 'maybe': use yes or no",
        "line 19: sip_port 'http' is not a number",
        "line 20: the extension column is empty",
        "line 21: line given without a mac",
        "line 22: phone 0004f2000001: model 'polycom_ip4000' differs from line 2 ('polycom_ip330')",
        "line 23: 10 fields but the header names 9",
        "line 24: extension 2002: secret differs from line 5",
        "line 25: sip_port '²' is not a number",
        "line 26: line position '²' is not a whole number from 1",
    ]
    assert counts() == (1, 1, 1)


def test_cli_reports_every_error_on_stderr_and_exits_non_zero(tmp_path, site):
    config = write_config(tmp_path / "autoprov.toml", site.settings, 8080)
    path = write_csv(tmp_path, "extension,secret,mac,model\n1001,pw,0004f2aabbcc,polycom_ip330\n"
                               "1002,,0004f2aabbcd,polycom_ip330\n1003,pw,0004f2aabbcc,polycom_ip4000\n")
    result = autoprov("import", str(path), config=config, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "line 3: unknown extension 1002 (not in the file or the database)",
        "line 4: phone 0004f2aabbcc: model 'polycom_ip4000' differs from line 2 ('polycom_ip330')",
        "Error: 2 error(s); nothing was imported",
    ]
    with site.db.connection_context():
        assert counts() == (0, 0, 0)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("extension,secret,colour", "line 1: unknown column 'colour'; known columns: extension, secret, first_name, "
                                    "last_name, mailbox, directory, sip_server, sip_port, mac, model, time_zone, "
                                    "notes, line"),
        ("extension;secret;mac", "line 1: unknown column 'extension;secret;mac' (the file must be comma-separated); "
                                 "known columns: extension, secret, first_name, last_name, mailbox, directory, "
                                 "sip_server, sip_port, mac, model, time_zone, notes, line"),
        ("secret,mac", "line 1: the header has no 'extension' column (the first line must name the columns)"),
        ("extension,Secret,SECRET", "line 1: column 'secret' appears twice"),
    ],
)
def test_header_problems(tmp_path, site, db, header, error):
    assert failures(site, write_csv(tmp_path, f"{header}\n1001,pw,x\n")) == [error]


def test_files_that_are_not_utf8_csv_give_one_clear_error(tmp_path, site, db):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("extension,secret,first_name\n1001,pw,Zoë\n".encode("latin-1"))
    assert failures(site, latin1) == [
        f"{latin1}: not UTF-8 text (byte 0xeb at offset 38); save it as CSV UTF-8"
    ]
    xlsx = tmp_path / "phones.xlsx"
    xlsx.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")
    assert failures(site, xlsx) == [
        f"{xlsx}: not a CSV text file (it contains NUL bytes; a spreadsheet must be saved as CSV)"
    ]
    broken = write_csv(tmp_path, 'extension,secret,first_name\n1001,pw,"Ada\n1002,pw,Bob\n')
    assert failures(site, broken) == [f"{broken}: line 2: not valid CSV: unexpected end of data"]
    empty = write_csv(tmp_path, "")
    assert failures(site, empty) == [
        f"{empty}: the file is empty; its first line must name the columns (extension, ...)"
    ]
    assert counts() == (0, 0, 0)


def test_cli_non_utf8_file(tmp_path, site):
    config = write_config(tmp_path / "autoprov.toml", site.settings, 8080)
    path = tmp_path / "utf16.csv"
    path.write_bytes("extension,secret\n1001,pw\n".encode("utf-16"))
    result = autoprov("import", str(path), config=config, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{path}: not a CSV text file (it contains NUL bytes; a spreadsheet must be saved as CSV)",
        "Error: 1 error(s); nothing was imported",
    ]


def test_shared_line_on_several_phones(tmp_path, site, db, client):
    text = (
        "extension,secret,first_name,mac,model,line\n"
        "1001,pw-1001,Reception,0004f2000001,polycom_ip330,1\n"
        "1001,,,0004f2000002,polycom_ip330,2\n"  # blank extension fields: the same extension
        "1001,pw-1001,Reception,0004f2000003,polycom_ip330,\n"  # identical fields: also fine
        "1002,pw-1002,Own line,0004f2000002,,1\n"
    )
    result = import_file(site, write_csv(tmp_path, text))
    assert (result.extensions, result.phones, result.lines) == (2, 3, 4)
    assert lines_of("0004f2000001") == [(1, "1001")]
    assert lines_of("0004f2000002") == [(1, "1002"), (2, "1001")]
    assert lines_of("0004f2000003") == [(1, "1001")]
    for mac in ("0004f2000001", "0004f2000003"):
        assert registrations(client, mac)["reg.1.auth.userId"] == "1001"
    assert registrations(client, "0004f2000002")["reg.2.auth.password"] == "pw-1001"


def test_existing_extensions_can_be_placed_on_phones(tmp_path, site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace"))
    text = (
        "extension,secret,first_name,last_name,mac,model\n"
        "1001,,,,0004f2000001,polycom_ip330\n"
        "1001,pw-1001,Ada,Lovelace,0004f2000002,polycom_ip330\n"  # identical to the database: fine
    )
    result = import_file(site, write_csv(tmp_path, text))
    assert (result.extensions, result.phones, result.lines) == (0, 2, 2)
    assert lines_of("0004f2000002") == [(1, "1001")]


HOSTILE_NAMES = [
    ('Zoë "The Boss"', "O'Brien <&> Ünïcödé"),
    ("Line\nBreak", "日本語 </reg>"),
    ("=cmd|' /C calc'!A0", "Tab\there"),
]


def test_hostile_names_are_stored_intact(tmp_path, site, db, client):
    def quote(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    secret = quote('p&ss<"w>')
    notes = quote('notes, with "quotes"\nand a second line')
    rows = [
        f"{1001 + i},{secret},{quote(first)},{quote(last)},0004f200000{i + 1},polycom_ip330,{notes}"
        for i, (first, last) in enumerate(HOSTILE_NAMES)
    ]
    text = "\r\n".join(["extension,secret,first_name,last_name,mac,model,notes", *rows, "2001,pw,Last,Row,,,"])
    import_file(site, write_csv(tmp_path, "\ufeff" + text + "\r\n"))
    for i, (first, last) in enumerate(HOSTILE_NAMES):
        ext = Extension.get(Extension.user_id == str(1001 + i))
        assert (ext.first_name, ext.last_name, ext.secret) == (first, last, 'p&ss<"w>')
        phone = Phone.get(Phone.mac == f"0004f200000{i + 1}")
        assert phone.notes == 'notes, with "quotes"\nand a second line'
        reg = registrations(client, phone.mac)
        assert reg["reg.1.displayName"] == f"{first} {last}"
        assert reg["reg.1.auth.password"] == 'p&ss<"w>'
    assert Extension.get(Extension.user_id == "2001").first_name == "Last"


def test_line_numbers_count_physical_lines(tmp_path, site, db):
    text = (
        "extension,secret,first_name,mac\r\n"
        "\r\n"  # line 2: blank, skipped
        '1001,pw,"two\r\nlines",0004f2000001\r\n'  # lines 3-4
        ",,,\r\n"  # line 5: an empty spreadsheet row, skipped
        "1002,pw,x,0004f2000001\r\n"  # line 6
        "1003,pw,x,bad\r\n"  # line 7
    )
    assert failures(site, write_csv(tmp_path, text)) == [
        "line 3: phone 0004f2000001 needs a model",
        "line 7: not a MAC address: 'bad' (12 hex digits, optionally separated by : or -, or dotted as 0004.f2aa.bbcc)",
    ]


def test_values_too_long_for_the_database_are_refused(tmp_path, site, db):
    text = f"extension,secret,mailbox\n1001,{'s' * 129},\n1002,pw,{'9' * 81}\n1003,pw,{'9' * 80}\n"
    assert failures(site, write_csv(tmp_path, text)) == [
        "line 2: extension 1001: the secret is longer than 128 characters",
        "line 3: extension 1002: mailbox is longer than 80 characters",
    ]


def test_a_thousand_rows_in_several_insert_batches(tmp_path, site, db, monkeypatch):
    monkeypatch.setattr(bulk, "PAGE", 7)  # PostgreSQL: many statements, not one
    rows = ["extension,secret,first_name,last_name,mac,model,line"]
    for n in range(500):
        mac = f"0004f2{n:06x}"
        rows.append(f"{10000 + 2 * n},pw{n}a,First{n},Last,{mac},polycom_ip330,")
        rows.append(f"{10001 + 2 * n},pw{n}b,Second{n},Last,{mac},,")
    result = import_file(site, write_csv(tmp_path, "\n".join(rows) + "\n"))
    assert (result.extensions, result.phones, result.lines) == (1000, 500, 1000)
    assert counts() == (1000, 500, 1000)
    assert lines_of(f"0004f2{499:06x}") == [(1, "10998"), (2, "10999")]
    # A second run of the same file changes nothing and names every phone.
    errors = failures(site, write_csv(tmp_path, "\n".join(rows) + "\n"))
    assert len(errors) == 500
    assert errors[0] == "line 2: duplicate MAC: phone 0004f2000000 already exists"
    assert counts() == (1000, 500, 1000)
