"""Polycom VVX phones on UC Software (models/polycom_vvx): the shared Polycom protocol, many lines."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import requests
from autoprov_polycom_vvx import MODELS

from autoprov.provisioning import admin, csv_import
from autoprov.provisioning.admin import AdminError, ExtensionData
from autoprov.tables import Extension, Sighting
from tests.conftest import free_port, running_server, write_config
from tests.test_database_down import database_unavailable, down_client
from tests.test_hostile import HOSTILE

MAC = "0004f2aabbcc"


def user_agent(token: str = "VVX_410", version: str = "5.9.0.9373", kind: str = "Application",
               serial: str | None = None) -> str:
    """UC Software's file-transfer User-Agent (docs/vendors/polycom-vvx.md)."""
    serial_part = f" (SN:{serial})" if serial else ""
    return f"FileTransport PolycomVVX-{token}-UA/{version}{serial_part} Type/{kind}"


VVX410 = {"User-Agent": user_agent()}


def twelve_lines(site, model: str = "polycom_vvx410", mac: str = MAC) -> None:
    for n in range(1, 13):
        admin.add_extension(ExtensionData(f"20{n:02d}", f"pw<&>\"{n}", f"User{n}", "Ünïcødé",
                                          mailbox=f"20{n:02d}" if n % 2 else ""))
    admin.add_phone(site, mac, model, [f"20{n:02d}" for n in range(1, 13)])


def expected_reg(n: int) -> dict[str, str]:
    """Line n of twelve_lines as the phone's config must carry it (written out, not computed by the plugin)."""
    return {
        f"reg.{n}.displayName": f"User{n} Ünïcødé", f"reg.{n}.address": f"20{n:02d}", f"reg.{n}.label": f"20{n:02d}",
        f"reg.{n}.type": "private", f"reg.{n}.auth.userId": f"20{n:02d}", f"reg.{n}.auth.password": f"pw<&>\"{n}",
        f"reg.{n}.server.1.address": "pbx.example.test", f"reg.{n}.server.1.port": "5060",
        f"reg.{n}.server.1.transport": "UDPOnly", f"reg.{n}.server.1.expires": "3600",
        f"reg.{n}.server.1.register": "1",
    }


def test_boot_sequence_through_a_real_server(tmp_path, site):
    """A factory-fresh VVX 410 with twelve lines boots against `autoprov serve`, request by request."""
    with site.db.connection_context():
        twelve_lines(site)
    model = site.models["polycom_vvx410"]
    image = bytes(range(256)) * 8
    (model.firmware_dir / "3111-46162-001.sip.ld").write_bytes(image)
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    walked = []
    with running_server(config, port) as url:
        def call(method: str, path: str, kind: str = "Application", body: bytes | None = None,
                 **headers: str) -> requests.Response:
            r = requests.request(method, url + path, data=body, timeout=10,
                                 headers={"User-Agent": user_agent(kind=kind), **headers})
            walked.append((method, path, r.status_code))
            return r

        base = "/prov/polycom_vvx410/"
        # The updater: its own master config (none: 404), the shared one, which moves it to its path.
        assert call("GET", f"/{MAC}.cfg", "Updater").status_code == 404
        initial = ET.fromstring(call("GET", "/000000000000.cfg", "Updater").content)
        assert initial.attrib == {
            "APP_FILE_PATH": "prov/polycom_vvx410/3111-46162-001.sip.ld",
            "CONFIG_FILES": "prov/polycom_vvx410/device.cfg", "MISC_FILES": "",
            "LOG_FILE_DIRECTORY": "prov/polycom_vvx410/logs", "OVERRIDES_DIRECTORY": "prov/polycom_vvx410/overrides",
            "CONTACTS_DIRECTORY": "prov/polycom_vvx410/contacts", "LICENSE_DIRECTORY": "",
        }
        device = ET.fromstring(call("GET", base + "device.cfg", "Updater").content)
        assert device.attrib == {
            "device.set": "1", "device.prov.serverType.set": "1", "device.prov.serverType": "HTTP",
            "device.prov.serverName.set": "1", "device.prov.serverName": "prov.example.test:8080/prov/polycom_vvx410",
            "device.dhcp.bootSrvUseOpt.set": "1", "device.dhcp.bootSrvUseOpt": "Static",
        }
        ranged = call("GET", base + "3111-46162-001.sip.ld", "Updater", Range="bytes=0-1023")
        assert (ranged.status_code, ranged.content) == (206, image[:1024])
        # Rebooted onto its path: master config, the application, then its configs.
        assert call("GET", base + f"{MAC}.cfg").status_code == 404
        master = ET.fromstring(call("GET", base + "000000000000.cfg").content)
        assert (master.get("APP_FILE_PATH"), master.get("CONFIG_FILES")) == (
            "3111-46162-001.sip.ld", "[PHONE_MAC_ADDRESS]-phone.cfg, site.cfg")
        phone = call("GET", base + f"{MAC}-phone.cfg")
        assert phone.status_code == 200
        root = ET.fromstring(phone.content)
        assert root.get("mac") == MAC
        regs = root.findall("reg")
        assert [reg.attrib for reg in regs] == [expected_reg(n) for n in range(1, 13)]
        assert [m.attrib for m in root.findall("msg")] == [
            {f"msg.mwi.{n}.subscribe": f"20{n:02d}", f"msg.mwi.{n}.callBackMode": "registration"}
            for n in range(1, 13, 2)]
        again = call("GET", base + f"{MAC}-phone.cfg", **{"If-None-Match": phone.headers["ETag"]})
        assert (again.status_code, again.content) == (304, b"")
        site_cfg = ET.fromstring(call("GET", base + "site.cfg").content)
        assert site_cfg.find("voIpProt").get("voIpProt.server.1.address") == "pbx.example.test"
        assert call("GET", base + f"overrides/{MAC}-phone.cfg").status_code == 404  # no local changes yet
        assert call("GET", base + f"{MAC}-license.cfg").status_code == 404
        directory = ET.fromstring(call("GET", base + f"contacts/{MAC}-directory.xml").content)
        assert len(directory.findall("item_list/item")) == 12
        log = b"1015152006|sip  |4|00|Registered line 1\n"
        assert call("PUT", base + f"logs/{MAC}-app.log", body=log).status_code == 200
    assert [(m, p, s) for m, p, s in walked] == [
        ("GET", f"/{MAC}.cfg", 404), ("GET", "/000000000000.cfg", 200), ("GET", f"{base}device.cfg", 200),
        ("GET", f"{base}3111-46162-001.sip.ld", 206), ("GET", f"{base}{MAC}.cfg", 404),
        ("GET", f"{base}000000000000.cfg", 200), ("GET", f"{base}{MAC}-phone.cfg", 200),
        ("GET", f"{base}{MAC}-phone.cfg", 304), ("GET", f"{base}site.cfg", 200),
        ("GET", f"{base}overrides/{MAC}-phone.cfg", 404), ("GET", f"{base}{MAC}-license.cfg", 404),
        ("GET", f"{base}contacts/{MAC}-directory.xml", 200), ("PUT", f"{base}logs/{MAC}-app.log", 200),
    ]
    print("\nVVX 410 walked:", walked)


@pytest.mark.parametrize(("name", "label", "token", "lines", "part"), MODELS, ids=[m[0] for m in MODELS])
def test_each_model_by_its_user_agent(site, client, name, label, token, lines, part):
    found, identity = site.identify(user_agent(token, "6.4.3.5129", serial="0004F2ABCDEF"))
    assert (found.name, found.line_count, identity.firmware, identity.mac) == (name, lines, "6.4.3.5129",
                                                                               "0004f2abcdef")
    (found.firmware_dir / f"{part}.sip.ld").write_bytes(b"image")
    initial = ET.fromstring(client.get("/000000000000.cfg", headers={"User-Agent": user_agent(token)}).data)
    assert initial.get("APP_FILE_PATH") == f"prov/{name}/{part}.sip.ld"


def test_tokens_are_whole(site):
    assert site.identify(user_agent("VVX_4100")) == (None, None)
    assert site.identify(user_agent("VVX_1500")) == (None, None)  # not one of this package's models
    assert site.identify(user_agent("vvx_410"))[0].name == "polycom_vvx410"


def test_https_device_settings_in_uc_software_terms(site, client):
    site.settings.http.public_url = "https://prov.example.test/"
    device = ET.fromstring(client.get("/prov/polycom_vvx500/device.cfg", headers=VVX410).data)
    assert device.get("device.prov.serverType") == "HTTPS"


@pytest.mark.parametrize(("model", "limit"), [("polycom_vvx300", 6), ("polycom_vvx410", 12), ("polycom_vvx600", 16)])
def test_more_lines_than_the_model_has_are_refused(site, db, model, limit):
    for n in range(1, limit + 2):
        admin.add_extension(ExtensionData(f"3{n:03d}", "pw"))
    with pytest.raises(AdminError, match=f"has {limit} line") as info:
        admin.add_phone(site, MAC, model, [f"3{n:03d}" for n in range(1, limit + 2)])
    assert info.value.field == "lines"
    admin.add_phone(site, MAC, model, [f"3{n:03d}" for n in range(1, limit + 1)])


def test_a_vvx_300_asking_for_a_twelve_line_phone_gets_six(site, client, db):
    twelve_lines(site)
    r = client.get(f"/prov/polycom_vvx300/{MAC}-phone.cfg", headers={"User-Agent": user_agent("VVX_300")})
    assert r.status_code == 200
    assert [reg.get(f"reg.{n}.address") for n, reg in enumerate(ET.fromstring(r.data).findall("reg"), 1)] == [
        f"20{n:02d}" for n in range(1, 7)]
    (s,) = Sighting.select().where(Sighting.mac == MAC)
    assert "it has 12 lines but a polycom_vvx300 has 6: served the first" in s.problem


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_round_trip(site, client, db, name):
    admin.add_extension(ExtensionData("1001", "pa\"ss<&>'word", first_name=name, last_name=name))
    admin.add_phone(site, MAC, "polycom_vvx410", ["1001"])
    r = client.get(f"/prov/polycom_vvx410/{MAC}-phone.cfg", headers=VVX410)
    reg = ET.fromstring(r.data).find("reg")
    assert reg.get("reg.1.displayName") == f"{name} {name}"
    assert reg.get("reg.1.auth.password") == "pa\"ss<&>'word"
    directory = ET.fromstring(client.get("/prov/polycom_vvx410/000000000000-directory.xml", headers=VVX410).data)
    (item,) = directory.iter("item")
    one_line = re.sub(r"[\t\r\n]+", " ", name).strip()  # the directory shows one line per name
    assert (item.findtext("fn"), item.findtext("ln"), item.findtext("ct")) == (one_line, one_line, "1001")


def test_extension_update_and_csv_import_reach_the_phone(site, client, db):
    text = f'extension,secret,first_name,last_name,mac,model,line\n1001,pw,"Zoë ""Q""","<&>",{MAC},polycom_vvx601,1\n'
    csv_import.import_text(site, text)
    admin.update_extension("1001", site=site, last_name="two\nlines")
    assert Extension.get(Extension.user_id == "1001").last_name == "two\nlines"
    reg = ET.fromstring(client.get(f"/prov/polycom_vvx601/{MAC}-phone.cfg",
                                   headers={"User-Agent": user_agent("VVX_601")}).data).find("reg")
    assert reg.get("reg.1.displayName") == 'Zoë "Q" two\nlines'


def test_database_down_is_503_never_a_partial_config(tmp_path):
    client = down_client(tmp_path, "sqlite:////nonexistent-dir/autoprov.db")
    r = client.get(f"/prov/polycom_vvx410/{MAC}-phone.cfg", headers=VVX410)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "17")
    assert client.get(f"/{MAC}.cfg", headers=VVX410).status_code == 404
    assert client.get("/000000000000.cfg", headers=VVX410).status_code == 200


def test_database_lost_under_a_running_server(tmp_path, site, server):
    with site.db.connection_context():
        twelve_lines(site)
    url = f"{server}/prov/polycom_vvx410/{MAC}-phone.cfg"
    ok = requests.get(url, headers=VVX410, timeout=10)
    assert ok.status_code == 200
    with database_unavailable(site, tmp_path):
        for _ in range(6):  # both workers, several threads
            r = requests.get(url, headers=VVX410, timeout=10)
            assert (r.status_code, r.headers.get("Retry-After")) == (503, "30")
            assert b"reg.1" not in r.content
    assert requests.get(url, headers=VVX410, timeout=10).content == ok.content
