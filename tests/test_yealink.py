"""Yealink T4x phones (models/yealink_t4x): the boot sequence through a real ``autoprov serve`` with real
User-Agents of both generations, the exact key = value bytes, firmware, the remote phone book, time zones,
values refused at the door, identification and a database that is down."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from autoprov_yealink_t4x.cfgvalue import UnsafeValue
from autoprov_yealink_t4x.timezone import yealink_time_settings

from autoprov.config import ConfigError, Settings
from autoprov.devices import PhoneLine, PhoneView
from autoprov.plugins import build_plugin_manager
from autoprov.provisioning import admin
from autoprov.provisioning.admin import AdminError, ExtensionData
from autoprov.provisioning.csv_import import ImportFailed, import_text
from autoprov.site import Site
from autoprov.tables import Extension, Phone, Sighting
from autoprov.web import create_app
from tests.conftest import LoopbackClient, free_port, running_server, write_config
from tests.phones import headers as polycom_headers

# (model, User-Agent token, firmware version the phone reports, common file, firmware file in its directory)
PHONES = {
    "yealink_t46s": ("T46S", "66.86.0.15", "y000000000066.cfg", "T46S(T48S,T42S,T41S)-66.86.0.15.rom"),
    "yealink_t41s": ("T41S", "66.86.0.15", "y000000000068.cfg", "T46S(T48S,T42S,T41S)-66.86.0.15.rom"),
    "yealink_t48g": ("T48G", "35.84.0.15", "y000000000035.cfg", "T48-35.84.0.15.rom"),
    "yealink_t41p": ("T41P", "36.84.0.15", "y000000000036.cfg", "T41-36.84.0.15.rom"),
}
MACS = {"yealink_t46s": "001565aabb01", "yealink_t41s": "001565aabb02", "yealink_t48g": "805ec0aabb03",
        "yealink_t41p": "001565aabb04"}
PUBLIC = "http://prov.example.test:8080"
FIRMWARE_BYTES = bytes(range(256)) * 64  # 16 KiB standing in for a firmware image


def user_agent(model: str, mac: str | None = None) -> str:
    """As Yealink phones send it: ``Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:01``."""
    token, version, _, _ = PHONES[model]
    mac = mac or MACS[model]
    return f"Yealink SIP-{token} {version} {':'.join(mac[i:i + 2] for i in range(0, 12, 2))}"


def ua(model: str) -> dict[str, str]:
    return {"User-Agent": user_agent(model)}


def parse_cfg(body: bytes) -> dict[str, str]:
    """A Yealink configuration file read as the phone reads it: the header, then one ``key = value`` a line
    (``#`` lines are comments). Every line must be whole: a key twice or a line without `` = `` fails."""
    text = body.decode("utf-8")
    assert text.endswith("\n") and "\r" not in text
    lines = text.split("\n")[:-1]
    assert lines[0] == "#!version:1.0.0.1"
    found: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        assert sep and key and " " not in key, f"not a key = value line: {line!r}"
        assert key not in found, f"{key} given twice"
        found[key] = value
    return found


def common_expected(model: str, firmware: str | None, **changes: str) -> dict[str, str]:
    expected = {
        "static.auto_provision.server.url": f"{PUBLIC}/",
        "static.auto_provision.repeat.enable": "0",
        "static.auto_provision.weekly.enable": "1",
        "static.auto_provision.weekly.begin_time": "03:00",
        "static.auto_provision.weekly.end_time": "03:00",
        "static.auto_provision.weekly.dayofweek": "0123456",
        "local_time.ntp_server1": "pool.ntp.org",
        # Europe/Paris: +1, daylight saving from the last Sunday of March at 02:00 to the last of October, 03:00.
        "local_time.time_zone": "+1",
        "local_time.summer_time": "1",
        "local_time.dst_time_type": "1",
        "local_time.start_time": "3/5/7/2",
        "local_time.end_time": "10/5/7/3",
        "local_time.offset_time": "60",
        "remote_phonebook.data.1.url": f"{PUBLIC}/prov/{model}/phonebook.xml",
        "remote_phonebook.data.1.name": "Staff",
    }
    if firmware:
        expected["static.firmware.url"] = f"{PUBLIC}/prov/{model}/{firmware}"
    expected.update(changes)
    return expected


def account(n: int, user: str, secret: str, name: str, server: str = "pbx.example.test", port: int = 5060,
            mailbox: str = "%NULL%") -> dict[str, str]:
    return {
        f"account.{n}.enable": "1", f"account.{n}.label": user, f"account.{n}.display_name": name,
        f"account.{n}.auth_name": user, f"account.{n}.user_name": user, f"account.{n}.password": secret,
        f"account.{n}.sip_server.1.address": server, f"account.{n}.sip_server.1.port": str(port),
        f"account.{n}.sip_server.1.transport_type": "0", f"account.{n}.sip_server.1.expires": "3600",
        f"voice_mail.number.{n}": mailbox,
    }


def accounts_off(first: int, last: int) -> dict[str, str]:
    off = {}
    for n in range(first, last + 1):
        off[f"account.{n}.enable"] = "0"
        for key in ("label", "display_name", "auth_name", "user_name", "password", "sip_server.1.address"):
            off[f"account.{n}.{key}"] = "%NULL%"
        off[f"voice_mail.number.{n}"] = "%NULL%"
    return off


def sightings(mac: str) -> list[Sighting]:
    return list(Sighting.select().where(Sighting.mac == mac).order_by(Sighting.id))


@pytest.fixture
def staff(site, db):
    """Extensions with names a phone must show as given, and one phone of each model tested."""
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace", mailbox="1001"))
    admin.add_extension(ExtensionData("1002", "p#w 2=x", "Bob", "", server="pbx2.example.test", port=5080))
    admin.add_extension(ExtensionData("1003", "pw-1003", 'O\'Brien "Bob" <b@x>', "& Zoë 李"))
    admin.add_extension(ExtensionData("1004", "pw-1004", "Grace", "Hopper", in_directory=False))
    admin.add_phone(site, MACS["yealink_t46s"], "yealink_t46s", ["1001", "1002"])
    admin.add_phone(site, MACS["yealink_t41s"], "yealink_t41s", ["1003"], time_zone="America/New_York")
    admin.add_phone(site, MACS["yealink_t48g"], "yealink_t48g", ["1004"])
    admin.add_phone(site, MACS["yealink_t41p"], "yealink_t41p", ["1001"])


@pytest.fixture
def yealink_server(tmp_path, site) -> str:
    """A real ``autoprov serve`` with a site time zone and Yealink plugin settings; firmware installed."""
    for model, (_, _, _, rom) in PHONES.items():
        fw = site.models[model].firmware_dir
        fw.mkdir(parents=True, exist_ok=True)
        (fw / rom).write_bytes(FIRMWARE_BYTES)
        (fw / "T46S(T48S,T42S,T41S)-66.84.0.90.rom").write_bytes(b"older")  # an older image is not chosen
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    with config.open("a", encoding="utf-8") as fh:
        fh.write('[time]\ntime_zone = "Europe/Paris"\n[plugins.yealink_t4x]\nphonebook_name = "Staff"\n')
    with running_server(config, port) as url:
        yield url


# --- The boot sequence, through a real server ------------------------------------------------------------

@pytest.mark.parametrize("model", sorted(PHONES))
def test_boot_sequence_through_a_real_server(staff, yealink_server, model):
    base = yealink_server
    mac = MACS[model]
    _, _, common, rom = PHONES[model]
    walked: list[str] = []

    def get(path: str, **headers: str) -> requests.Response:
        r = requests.get(base + path, headers={**ua(model), **headers}, timeout=10)
        walked.append(f"GET {path}{' ' + str(headers) if headers else ''} -> {r.status_code}")
        return r

    # Firmware 81 and later asks for boot files first; finding none, it falls back to the .cfg files.
    assert get(f"/{mac}.boot").status_code == 404
    assert get("/y000000000000.boot").status_code == 404

    r = get(f"/{common}")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert parse_cfg(r.content) == common_expected(model, rom)
    assert r.content.startswith(b"#!version:1.0.0.1\n# Generated by autoprov")
    assert get(f"/{common}", **{"If-None-Match": r.headers["ETag"]}).status_code == 304

    r = get(f"/{mac}.cfg")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert parse_cfg(r.content) == expected_phone(model)
    assert get(f"/{mac}.cfg", **{"If-None-Match": r.headers["ETag"]}).status_code == 304

    # The firmware the common file names, with Range (an interrupted download resumes) and a 304.
    firmware = parse_cfg(get(f"/{common}").content)["static.firmware.url"].removeprefix(PUBLIC)
    r = get(firmware, Range="bytes=100-1123")
    assert r.status_code == 206 and r.content == FIRMWARE_BYTES[100:1124]
    assert r.headers["Content-Range"] == f"bytes 100-1123/{len(FIRMWARE_BYTES)}"
    r = get(firmware)
    assert r.status_code == 200 and r.content == FIRMWARE_BYTES
    assert get(firmware, **{"If-None-Match": r.headers["ETag"]}).status_code == 304

    r = get(f"/prov/{model}/phonebook.xml")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/xml; charset=utf-8"
    # Sorted by last name ("", "& Zoë 李", "Lovelace"); the unlisted extension 1004 is left out.
    assert phonebook(r.content) == [
        ("Bob", "1002"), ('O\'Brien "Bob" <b@x> & Zoë 李', "1003"), ("Ada Lovelace", "1001"),
    ]
    # The same files under the model's path, for a phone whose provisioning URL names it.
    assert get(f"/prov/{model}/{mac}.cfg").content == get(f"/{mac}.cfg").content
    print(f"\n{model} ({user_agent(model)}):\n  " + "\n  ".join(walked))


def expected_phone(model: str) -> dict[str, str]:
    lines = {"yealink_t46s": 16, "yealink_t41s": 6, "yealink_t48g": 16, "yealink_t41p": 6}[model]
    if model == "yealink_t46s":
        return {**account(1, "1001", "pw-1001", "Ada Lovelace", mailbox="1001"),
                **account(2, "1002", "p#w 2=x", "Bob", server="pbx2.example.test", port=5080),
                **accounts_off(3, lines)}
    if model == "yealink_t41s":  # its own time zone, after the common file's
        return {**account(1, "1003", "pw-1003", 'O\'Brien "Bob" <b@x> & Zoë 李'), **accounts_off(2, lines),
                "local_time.time_zone": "-5", "local_time.summer_time": "1", "local_time.dst_time_type": "1",
                "local_time.start_time": "3/2/7/2", "local_time.end_time": "11/1/7/2", "local_time.offset_time": "60"}
    if model == "yealink_t48g":
        return {**account(1, "1004", "pw-1004", "Grace Hopper"), **accounts_off(2, lines)}
    return {**account(1, "1001", "pw-1001", "Ada Lovelace", mailbox="1001"), **accounts_off(2, lines)}


def phonebook(body: bytes) -> list[tuple[str, str]]:
    root = ET.fromstring(body)
    assert root.tag == "YealinkIPPhoneDirectory"
    return [(e.findtext("Name"), e.findtext("Telephone")) for e in root.iter("DirectoryEntry")]


# --- In-process checks --------------------------------------------------------------------------------

def test_secrets_stay_with_allowed_clients(site, client, staff):
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    mac = MACS["yealink_t46s"]
    r = client.get(f"/{mac}.cfg", headers=ua("yealink_t46s"), environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert r.status_code == 403 and b"pw-1001" not in r.data
    assert client.get(f"/{mac}.cfg", headers=ua("yealink_t46s"),
                      environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    # The common file holds nothing secret: it is served to anyone.
    assert client.get("/y000000000066.cfg", headers=ua("yealink_t46s"),
                      environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200


def test_boot_file_names_the_mac_in_a_sighting(client, staff):
    mac = MACS["yealink_t48g"]
    assert client.get(f"/{mac}.boot", headers=ua("yealink_t48g")).status_code == 404
    seen = sightings(mac)
    assert [(s.model, s.firmware, s.last_path) for s in seen] == [("yealink_t48g", "35.84.0.15", f"/{mac}.boot")]


@pytest.mark.parametrize("name", ['Ada "The Countess"', "O'Brien <&> ;#=", "Zoë Ünïcødé 李小龍", "a  b"])
def test_accepted_names_parse_back_to_what_is_stored(site, client, db, name):
    admin.add_extension(ExtensionData("2001", "s#cr=t ;x", name, ""))
    admin.add_phone(site, "001565000001", "yealink_t42s", ["2001"])
    found = parse_cfg(client.get("/001565000001.cfg", headers=ua_for("T42S", "001565000001")).data)
    assert found["account.1.display_name"] == name
    assert found["account.1.password"] == "s#cr=t ;x"
    book = phonebook(client.get("/prov/yealink_t42s/phonebook.xml", headers=ua_for("T42S", "001565000001")).data)
    assert book == [(name, "2001")]


def ua_for(token: str, mac: str, version: str = "66.86.0.15") -> dict[str, str]:
    return {"User-Agent": f"Yealink SIP-{token} {version} {':'.join(mac[i:i + 2] for i in range(0, 12, 2))}"}


HOSTILE = [
    ("first_name", {"first_name": "Ada\naccount.1.sip_server.1.address = evil.example"}),
    ("first_name", {"first_name": "Ada\r"}),
    ("last_name", {"last_name": "Love\u2028lace"}),
    ("last_name", {"last_name": "Lovelace "}),
    ("first_name", {"first_name": " Ada"}),
    ("first_name", {"first_name": "%NULL%"}),
    ("secret", {"secret": " pw-with-a-leading-blank"}),
    ("secret", {"secret": "pw-with-a-trailing-blank "}),
]


@pytest.mark.parametrize(("field", "changes"), HOSTILE)
def test_values_the_format_cannot_carry_are_refused_at_phone_add(site, db, field, changes):
    admin.add_extension(ExtensionData(**{"user_id": "3001", "secret": "pw", **changes}))
    with pytest.raises(AdminError) as info:
        admin.add_phone(site, "001565000002", "yealink_t46s", ["3001"])
    assert info.value.field == field
    assert "Yealink SIP-T46S cannot take this" in str(info.value) and "\n" not in str(info.value)
    assert Phone.select().count() == 0  # nothing half-written


@pytest.mark.parametrize(("field", "changes"), HOSTILE)
def test_values_the_format_cannot_carry_are_refused_at_extension_update(site, db, field, changes):
    admin.add_extension(ExtensionData("3001", "pw", "Ada", "Lovelace"))
    admin.add_phone(site, "001565000002", "yealink_t46s", ["3001"])
    with pytest.raises(AdminError) as info:
        admin.update_extension("3001", site=site, **changes)
    assert info.value.field == field
    ext = Extension.get(Extension.user_id == "3001")
    assert (ext.first_name, ext.last_name, ext.secret) == ("Ada", "Lovelace", "pw")  # unchanged


def test_csv_import_refuses_a_name_with_a_line_break_and_writes_nothing(site, db):
    text = ("extension,secret,first_name,last_name,mac,model\n"
            "4001,pw-4001,Ada,Lovelace,001565000003,yealink_t46s\n"
            '4002,pw-4002,"Bob\naccount.1.password = x",,001565000004,yealink_t46g\n')
    with pytest.raises(ImportFailed) as info:
        import_text(site, text)
    assert any("001565000004" in e and "first_name" in e for e in info.value.errors), info.value.errors
    assert Extension.select().count() == 0 and Phone.select().count() == 0


def test_csv_import_of_hostile_but_carriable_names(site, client, db):
    text = ("extension,secret,first_name,last_name,mac,model\n"
            '4001,pw#4001,"O\'Brien ""Bob""","<&> Zoë",001565000003,yealink_t46s\n')
    import_text(site, text)
    found = parse_cfg(client.get("/001565000003.cfg", headers=ua_for("T46S", "001565000003")).data)
    assert found["account.1.display_name"] == 'O\'Brien "Bob" <&> Zoë'
    assert found["account.1.password"] == "pw#4001"


def test_t41s_takes_six_lines_and_not_seven(site, client, db):
    for n in range(1, 8):
        admin.add_extension(ExtensionData(f"50{n:02d}", f"pw-{n}", f"User{n}"))
    users = [f"50{n:02d}" for n in range(1, 8)]
    with pytest.raises(AdminError) as info:
        admin.add_phone(site, "001565000005", "yealink_t41s", users)
    assert info.value.field == "lines" and "6 line(s); 7 given" in str(info.value)
    # Stored as a T46S (16 lines) but the phone that asks is a T41S: the first six lines, and the reason noted.
    admin.add_phone(site, "001565000005", "yealink_t46s", users)
    r = client.get("/001565000005.cfg", headers=ua_for("T41S", "001565000005"))
    assert r.status_code == 200
    found = parse_cfg(r.data)
    assert [found[f"account.{n}.user_name"] for n in range(1, 7)] == users[:6]
    assert "account.7.enable" not in found
    problem = sightings("001565000005")[-1].problem
    assert "a yealink_t41s has 6: served the first" in problem
    assert "the database says yealink_t46s" in problem


def test_a_model_token_beats_the_yealink_family(site):
    model, identity = site.identify("Yealink SIP-T41S 66.86.0.15 00:15:65:aa:bb:cc")
    assert (model.name, identity.support, identity.firmware, identity.mac) == (
        "yealink_t41s", 100, "66.86.0.15", "001565aabbcc")
    # Older firmware's lower-case vendor and double blank (from wazo-provd-plugins' captures).
    assert site.identify("yealink SIP-T48G  35.83.0.120 00:15:65:5c:60:82")[0].name == "yealink_t48g"
    assert site.identify("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37")[0].name == "yealink_t46g"
    # A Yealink this package has no model for is a family match, reported as a tie, never an exact one.
    model, identity = site.identify("Yealink SIP-T54W 96.86.0.15 80:5e:c0:09:ab:dc")
    assert model.vendor == "Yealink" and identity.support == 50
    assert any("T54W" in t.what for t in site.ties)
    # A Polycom stays a Polycom.
    assert site.identify(polycom_headers("polycom_ip330")["User-Agent"])[0].name == "polycom_ip330"
    assert site.identify("Yealink SIP-T41 36.86.0.15 00:15:65:aa:bb:cc")[0].name != "yealink_t41s"


def test_an_unknown_user_agent_with_a_stored_yealink_mac_gets_its_config(site, client, staff):
    mac = MACS["yealink_t46s"]
    r = client.get(f"/{mac}.cfg", headers={"User-Agent": "curl/8"})
    assert r.status_code == 200 and parse_cfg(r.data)["account.1.user_name"] == "1001"
    assert site.model_by_oui("001565123456").vendor == "Yealink"
    # Polycom and Yealink both name a file /<mac>.cfg at the root: that is no tie (the stored model decides),
    # and names an unknown client makes up leave nothing behind.
    for n in range(3):
        assert client.get(f"/00156500000{n}.cfg", headers={"User-Agent": "curl/8"}).status_code == 404
    assert not [t for t in site.ties if "at the root" in t.what]


@pytest.mark.parametrize(
    "url",
    ["sqlite:////nonexistent-dir/autoprov.db", "postgresql://postgres:wrong@127.0.0.1:1/autoprov"],
    ids=["sqlite-missing-directory", "postgresql-refused"],
)
def test_database_down_is_503_for_the_phone_config_never_a_200(tmp_path, url):
    s = Settings()
    s.database.url = url
    s.firmware.root = str(tmp_path / "fw")
    s.http.retry_after = 17
    client = LoopbackClient(create_app(Site(s, build_plugin_manager())))
    for path in ("/001565aabb01.cfg", "/prov/yealink_t46s/001565aabb01.cfg", "/prov/yealink_t46s/phonebook.xml"):
        r = client.get(path, headers=ua("yealink_t46s"))
        assert (r.status_code, r.headers.get("Retry-After")) == (503, "17"), path
        assert b"account." not in r.data
    # What needs no database is still served: the common file, and the boot files' 404 sends the phone on.
    assert client.get("/y000000000066.cfg", headers=ua("yealink_t46s")).status_code == 200
    assert client.get("/001565aabb01.boot", headers=ua("yealink_t46s")).status_code == 404


# --- Time zones, firmware, plugin settings ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # wazo-provd-plugins' own test for its Yealink plugin gives America/Montreal these rules.
        ("America/Montreal", ["-5", "1", "1", "3/2/7/2", "11/1/7/2", "60"]),
        ("Europe/London", ["+0", "1", "1", "3/5/7/1", "10/5/7/2", "60"]),
        ("Australia/Sydney", ["+10", "1", "1", "10/1/7/2", "4/1/7/3", "60"]),
        ("Asia/Kolkata", ["+5:30", "0"]),
        ("America/St_Johns", ["-3:30", "1", "1", "3/2/7/2", "11/1/7/2", "60"]),
        ("UTC", ["+0", "0"]),
    ],
)
def test_time_zones_in_yealink_terms(zone, expected):
    assert [v for _, v in yealink_time_settings(zone)] == expected


def test_newest_firmware_of_the_model_is_chosen(site):
    t46s, t41p = site.models["yealink_t46s"], site.models["yealink_t41p"]
    assert t46s.firmware_dir == site.models["yealink_t41s"].firmware_dir  # one image for the T4xS
    t46s.firmware_dir.mkdir(parents=True, exist_ok=True)
    assert t46s.firmware_file is None
    assert t46s.firmware_files == ("<T46S...>-<66>.<version>.rom",)  # `autoprov models`: missing
    for name in ("T46S(T48S,T42S,T41S)-66.84.0.90.rom", "T46S(T48S,T42S,T41S)-66.86.0.15.rom",
                 "T46S(T48S,T42S,T41S)-66.86.0.5.rom", "T54S(T52S)-70.86.0.20.rom", "notes.txt"):
        (t46s.firmware_dir / name).write_bytes(b"x")
    assert t46s.firmware_file == "T46S(T48S,T42S,T41S)-66.86.0.15.rom"
    assert t46s.firmware_files == ("T46S(T48S,T42S,T41S)-66.86.0.15.rom",)  # `autoprov models`: present
    assert site.models["yealink_t41s"].firmware_file == "T46S(T48S,T42S,T41S)-66.86.0.15.rom"
    (t46s.firmware_dir / "T41S-68.86.0.20.rom").write_bytes(b"x")  # a T41S-only image, numbered 68
    assert site.models["yealink_t41s"].firmware_file == "T41S-68.86.0.20.rom"
    assert t46s.firmware_file == "T46S(T48S,T42S,T41S)-66.86.0.15.rom"
    t41p.firmware_dir.mkdir(parents=True, exist_ok=True)
    (t41p.firmware_dir / "T41-36.84.0.15.rom").write_bytes(b"x")
    (t41p.firmware_dir / "T42-29.84.0.15.rom").write_bytes(b"x")
    assert t41p.firmware_file == "T41-36.84.0.15.rom"


def test_no_firmware_installed_means_no_firmware_url(site, client):
    body = client.get("/y000000000029.cfg", headers=ua_for("T42G", "001565000009", "29.84.0.15")).data
    assert "static.firmware.url" not in parse_cfg(body)


def site_with(tmp_path: Path, plugin: dict[str, object]) -> Site:
    s = Settings()
    s.database.url = f"sqlite:///{tmp_path}/x.db"
    s.firmware.root = str(tmp_path / "fw")
    s.plugins = {"yealink_t4x": plugin}
    return Site(s, build_plugin_manager())


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ({"phonebok_name": "x"}, "plugins.yealink_t4x.phonebok_name: unknown setting"),
        ({"phonebook_name": "Staff\nx = y"}, "plugins.yealink_t4x.phonebook_name: 'Staff\\nx = y' contains a line"),
        ({"phonebook_name": ""}, "plugins.yealink_t4x.phonebook_name: '' is empty"),
        ({"admin_password": "secret "}, "plugins.yealink_t4x.admin_password: 'secret ' starts or ends with a blank"),
        ({"upgrade_firmware": "no"}, "plugins.yealink_t4x.upgrade_firmware: expected bool"),
    ],
)
def test_plugin_settings_are_refused_by_name(tmp_path, plugin, message):
    with pytest.raises(ConfigError) as info:
        site_with(tmp_path, plugin)
    assert str(info.value).startswith(message)


def test_admin_password_makes_the_common_file_a_secret(tmp_path):
    site = site_with(tmp_path, {"admin_password": "adm#1n", "upgrade_firmware": False})
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    client = LoopbackClient(create_app(site))
    headers = ua("yealink_t46s")
    assert client.get("/y000000000066.cfg", headers=headers,
                      environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 403
    r = client.get("/y000000000066.cfg", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert parse_cfg(r.data)["static.security.user_password"] == "admin:adm#1n"


def test_polling_every_period(tmp_path):
    site = site_with(tmp_path, {})
    site.settings.polling.mode = "rel"
    site.settings.polling.period = 3600
    found = parse_cfg(LoopbackClient(create_app(site)).get("/y000000000066.cfg", headers=ua("yealink_t46s")).data)
    assert (found["static.auto_provision.repeat.enable"], found["static.auto_provision.repeat.minutes"],
            found["static.auto_provision.weekly.enable"]) == ("1", "60", "0")


def test_models_command_lists_the_yealink_models(site):
    names = sorted(m for m in site.models if m.startswith("yealink_"))
    assert names == ["yealink_t41p", "yealink_t41s", "yealink_t42g", "yealink_t42s", "yealink_t46g",
                     "yealink_t46s", "yealink_t48g", "yealink_t48s"]
    assert {site.models[n].line_count for n in ("yealink_t41s", "yealink_t41p")} == {6}


def test_a_value_that_slipped_past_the_door_is_a_clean_500_and_a_sighting(site, client, db):
    admin.add_extension(ExtensionData("6001", "pw-6001", "Ada", "Lovelace"))
    admin.add_phone(site, "001565000006", "yealink_t46s", ["6001"])
    # Without a site the phones carrying the extension are not checked: the bad name reaches the database.
    admin.update_extension("6001", first_name="Ada\naccount.1.sip_server.1.address = evil.example")
    r = client.get("/001565000006.cfg", headers=ua_for("T46S", "001565000006"))
    assert r.status_code == 500 and b"evil" not in r.data and b"pw-6001" not in r.data
    assert "first name contains a line break" in sightings("001565000006")[-1].problem


def test_the_renderer_never_writes_a_line_break_inside_a_value(site):
    """Defence in depth: a view check_phone would refuse still cannot be rendered into extra lines."""


    model = site.models["yealink_t46s"]
    rule = next(r for r in model.files() if r.role == "phone")
    line = PhoneLine(1, "7001", "pw\r\nx", "Ada", "7001", "pbx.example.test", 5060, "UDPOnly", 3600, "")
    with pytest.raises(UnsafeValue):
        model.render(rule, PhoneView("001565000007", "yealink_t46s", (line,)))
