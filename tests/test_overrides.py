"""What a phone writes when its user changes a setting (overrides) or a contact (contacts): kept per phone,
every version, served back at boot, never confused with the generated config."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests

from autoprov.phonefiles import storedfiles
from autoprov.phonefiles.tables import StoredFile
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.tables import Sighting
from tests.conftest import cli as autoprov
from tests.conftest import write_config
from tests.phones import headers

MODEL = "polycom_ip330"
MAC = "0004f2aabbcc"
OVERRIDE = f"/prov/{MODEL}/overrides/{MAC}-phone.cfg"
LOCAL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity="1"/></PHONE_CONFIG>'
)
LOCAL_2 = LOCAL.replace(b'"1"', b'"2"')


def put(client, path: str, body: bytes):
    return client.put(path, data=body, headers=headers(MODEL))


def get(client, path: str, **extra: str):
    return client.get(path, headers=headers(MODEL) | extra)


@pytest.fixture
def phone(site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace"))
    return admin.add_phone(site, MAC, MODEL, ["1001"])


def test_overrides_survive_and_never_collide_with_the_generated_config(client, phone):
    assert get(client, OVERRIDE).status_code == 404  # optional: nothing stored yet
    assert put(client, OVERRIDE, LOCAL).status_code == 200
    assert put(client, f"/prov/{MODEL}/overrides/{MAC}-web.cfg", LOCAL_2).status_code == 200
    served = get(client, OVERRIDE)
    assert served.status_code == 200 and served.data == LOCAL
    assert get(client, f"/prov/{MODEL}/overrides/{MAC}-web.cfg").data == LOCAL_2
    assert get(client, OVERRIDE, **{"If-None-Match": served.headers["ETag"]}).status_code == 304
    generated = get(client, f"/prov/{MODEL}/{MAC}-phone.cfg")
    assert generated.status_code == 200
    assert ET.fromstring(generated.data).find("reg").get("reg.1.auth.password") == "pw-1001"
    # Another phone's overrides are its own.
    assert get(client, f"/prov/{MODEL}/overrides/0004f2000001-phone.cfg").status_code == 404


def test_overrides_reach_only_networks_allowed_secrets(site, client, phone):
    """A user can type a SIP password into the phone: its overrides are as secret as its config."""
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    inside, outside = {"REMOTE_ADDR": "10.0.0.9"}, {"REMOTE_ADDR": "192.0.2.1"}
    body = LOCAL.replace(b"up.backlight.idleIntensity", b"reg.1.auth.password")
    assert client.put(OVERRIDE, data=body, headers=headers(MODEL), environ_base=inside).status_code == 200
    assert client.get(OVERRIDE, headers=headers(MODEL), environ_base=inside).data == body
    refused = client.get(OVERRIDE, headers=headers(MODEL), environ_base=outside)
    assert refused.status_code == 403
    assert b"reg.1.auth.password" not in refused.data


def test_only_networks_allowed_secrets_may_write_overrides_and_contacts(site, client, phone):
    """Overrides win at the phone: an outsider's PUT could re-point its SIP server. Contacts are the user's."""
    site.settings.http.secrets_allowed_from = ["10.0.0.0/8"]
    inside, outside = {"REMOTE_ADDR": "10.0.0.9"}, {"REMOTE_ADDR": "192.0.2.1"}
    evil = b'<PHONE_CONFIG><OVERRIDES voIpProt.server.1.address="evil.example"/></PHONE_CONFIG>'
    contacts = f"/prov/{MODEL}/contacts/{MAC}-directory.xml"
    mine = b"<directory><item_list><item><fn>Mum</fn><ct>0155501234</ct></item></item_list></directory>"
    for path, body in [(OVERRIDE, evil), (f"/prov/{MODEL}/overrides/{MAC}-web.cfg", evil), (contacts, mine)]:
        refused = client.put(path, data=body, headers=headers(MODEL), environ_base=outside)
        assert refused.status_code == 403 and refused.mimetype == "text/plain", path
        assert b"secrets_allowed_from" in refused.data
    assert StoredFile.select().count() == 0
    sighting = Sighting.get(Sighting.mac == MAC, Sighting.ip == "192.0.2.1")
    assert "192.0.2.1 is not in [http] secrets_allowed_from" in sighting.problem
    # The phone itself, inside, writes and reads as before.
    assert client.put(OVERRIDE, data=LOCAL, headers=headers(MODEL), environ_base=inside).status_code == 200
    assert client.put(contacts, data=mine, headers=headers(MODEL), environ_base=inside).status_code == 200
    assert client.get(OVERRIDE, headers=headers(MODEL), environ_base=inside).data == LOCAL
    assert b"Mum" in client.get(contacts, headers=headers(MODEL), environ_base=inside).data
    # Outside, the phone's own directory is refused too; the company directory stays open, and log uploads
    # follow [access] uploads_allowed_from (private networks by default).
    for path in (contacts, f"/prov/{MODEL}/{MAC}-directory.xml"):
        assert client.get(path, headers=headers(MODEL), environ_base=outside).status_code == 403
        assert client.head(path, headers=headers(MODEL), environ_base=outside).status_code == 403
    company = client.get(f"/prov/{MODEL}/000000000000-directory.xml", headers=headers(MODEL), environ_base=outside)
    assert company.status_code == 200 and b"Lovelace" in company.data
    log = client.put(f"/prov/{MODEL}/logs/{MAC}-app.log", data=b"1015152006|sip  |3|00|hello\n",
                     headers=headers(MODEL), environ_base=outside)
    assert log.status_code == 403 and b"uploads_allowed_from" in log.data
    site.settings.access.uploads_allowed_from = ["0.0.0.0/0"]
    log = client.put(f"/prov/{MODEL}/logs/{MAC}-app.log", data=b"1015152006|sip  |3|00|hello\n",
                     headers=headers(MODEL), environ_base=outside)
    assert log.status_code == 200


def test_every_version_is_kept_and_clear_stops_serving(site, client, phone):
    put(client, OVERRIDE, LOCAL)
    put(client, OVERRIDE, LOCAL)  # the same again: no new version
    put(client, OVERRIDE, LOCAL_2)
    assert [(r.version, r.content is not None) for r in storedfiles.history(MAC, storedfiles.OVERRIDES)] == [
        (1, True), (2, True)
    ]
    assert get(client, OVERRIDE).data == LOCAL_2
    assert storedfiles.clear(site.db, MAC, storedfiles.OVERRIDES) == ["phone.cfg"]
    assert get(client, OVERRIDE).status_code == 404
    history = storedfiles.history(MAC, storedfiles.OVERRIDES)
    assert [r.content for r in history][-1] is None and bytes(history[0].content) == LOCAL
    assert "SPIP_330" in history[0].source


@pytest.mark.parametrize("directory,name", [("overrides", "phone.cfg"), ("overrides", "web.cfg"),
                                            ("contacts", "directory.xml")])
@pytest.mark.parametrize(
    "body",
    [b"<unclosed>", b"not xml at all", b"", b"<a/><b/>", b"\xff\xfe<a/>",
     b'<!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>', b"<a><x:sd>1</x:sd></a>"],
)
def test_uploads_must_be_well_formed_xml(client, db, directory, name, body):
    r = put(client, f"/prov/{MODEL}/{directory}/{MAC}-{name}", body)
    assert r.status_code == 400, r.data
    assert StoredFile.select().count() == 0


@pytest.mark.parametrize("directory,name", [("overrides", "phone.cfg"), ("contacts", "directory.xml")])
def test_uploads_are_size_limited(site, client, db, directory, name):
    site.settings.uploads.max_config_bytes = 200
    big = b"<a>" + b"x" * 300 + b"</a>"
    assert put(client, f"/prov/{MODEL}/{directory}/{MAC}-{name}", big).status_code == 413
    assert put(client, f"/prov/{MODEL}/{directory}/{MAC}-{name}", b"<a>small</a>").status_code == 200


@pytest.mark.parametrize("directory,name", [("overrides", "phone.cfg"), ("contacts", "directory.xml")])
def test_chunked_uploads_over_the_limit_get_413_through_the_server(server, site, directory, name):
    """Without a Content-Length the body is read to one byte past the limit: never stored cut short."""
    limit = site.settings.uploads.max_config_bytes  # the server's: the default

    def send(size: int) -> requests.Response:
        body = b"<a>" + b"x" * (size - 7) + b"</a>"
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))  # a generator: sent chunked
        return requests.put(f"{server}/prov/{MODEL}/{directory}/{MAC}-{name}", data=pieces, headers=headers(MODEL),
                            timeout=30)

    refused = send(limit + 100)
    assert refused.status_code == 413 and f"at most {limit} bytes" in refused.text
    with site.db.connection_context():
        assert StoredFile.select().count() == 0
    assert send(limit).status_code == 200
    with site.db.connection_context():
        assert [r.size for r in storedfiles.history(MAC, storedfiles.CONTACTS if directory == "contacts"
                                                    else storedfiles.OVERRIDES)] == [limit]


@pytest.mark.parametrize("filename", ["0004f2aabbc-phone.cfg", "zz04f2aabbcc-phone.cfg", "000000000000-phone.cfg",
                                      "phone.cfg"])
def test_malformed_mac_gets_400(client, db, filename):
    assert put(client, f"/prov/{MODEL}/overrides/{filename}", LOCAL).status_code == 400


def test_other_names_are_not_stored(client, db):
    assert put(client, f"/prov/{MODEL}/overrides/{MAC}-other.cfg", LOCAL).status_code == 404
    assert put(client, f"/prov/{MODEL}/overrides/{MAC}-directory.xml", LOCAL).status_code == 404
    assert put(client, f"/prov/nope/overrides/{MAC}-phone.cfg", LOCAL).status_code == 404
    assert StoredFile.select().count() == 0


def test_contacts_are_kept_raw_with_history(client, db):
    path = f"/prov/{MODEL}/contacts/{MAC}-directory.xml"
    v1 = b"<directory><item_list><item><fn>Mum</fn><ct>0155501234</ct></item></item_list></directory>"
    v2 = v1.replace(b"Mum", b"Mother")
    assert put(client, path, v1).status_code == 200 and put(client, path, v2).status_code == 200
    rows = storedfiles.history(MAC, storedfiles.CONTACTS)
    assert [bytes(r.content) for r in rows] == [v1, v2]


def test_overrides_and_contacts_commands(tmp_path, site, client):
    with site.db.connection_context():
        put(client, OVERRIDE, LOCAL)
        put(client, OVERRIDE, LOCAL_2)
        put(client, f"/prov/{MODEL}/contacts/{MAC}-directory.xml", b"<directory/>")
    config = write_config(tmp_path / "cli.toml", site.settings, 8080)
    assert autoprov("overrides", "show", MAC, config=config).stdout.strip().endswith(LOCAL_2.decode())
    assert LOCAL.decode() in autoprov("overrides", "show", MAC, "--version", "1", config=config).stdout
    history = autoprov("overrides", "history", MAC, "--diff", config=config).stdout.splitlines()
    v1, v2 = (" ".join(line.split(" ", 4)[:4]) for line in history if line.startswith("phone.cfg v"))
    assert v1.startswith("phone.cfg v1 20") and v2.startswith("phone.cfg v2 20")
    # Each diff says which versions it compares, and when they were stored.
    assert "    --- phone.cfg (none)" in history and f"    +++ {v1}" in history
    assert f"    --- {v1}" in history and f"    +++ {v2}" in history
    assert '    +<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity="2"/></PHONE_CONFIG>' in history
    assert "cleared phone.cfg" in autoprov("overrides", "clear", MAC, config=config).stdout
    assert "CLEARED" in autoprov("overrides", "history", MAC, config=config).stdout
    cleared = autoprov("overrides", "show", MAC, config=config, check=False)
    assert cleared.returncode == 1 and cleared.stdout == ""
    assert f"overrides/{MAC}-phone.cfg was cleared (version 3, " in cleared.stderr
    assert f"`autoprov overrides history {MAC} --diff` shows what it held" in cleared.stderr
    assert LOCAL_2.decode() in autoprov("overrides", "show", MAC, "--version", "2", config=config).stdout
    # Nothing stored for a phone: one line on stderr, and exit 1, for show and history alike.
    for command in ("show", "history"):
        unknown = autoprov("overrides", command, "0004f2000099", config=config, check=False)
        assert unknown.returncode == 1 and unknown.stdout == ""
        assert unknown.stderr.strip() == "Error: nothing stored in overrides/ for 0004f2000099"
    assert "<directory/>" in autoprov("contacts", "show", MAC, config=config).stdout
    # A version that does not exist is named, with those that do.
    missing = autoprov("overrides", "show", MAC, "--version", "99", config=config, check=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == (
        f"Error: overrides/ of {MAC} has no version 99 (versions stored: 1, 2, 3; "
        f"`autoprov overrides history {MAC}` lists them)"
    )
    # contacts show says what it prints: the upload, not the merged directory the phone is served.
    assert "as it uploaded them" in " ".join(autoprov("contacts", "show", "--help", config=config).stdout.split())
    assert "cleared directory.xml" in autoprov("contacts", "clear", MAC, "--file", "directory.xml",
                                               config=config).stdout
