"""``autoprov reprovision --to URL``: the files dropped onto an old (here TFTP) server move a Polycom phone of
each firmware generation onto this server, walked through by a phone simulator until it has its own config."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.phones import user_agent
from tests.zerotouch.polycom_phone import Phone

MAC = "0004f2aabbcc"
NEW_SERVER = "prov.example.test:8080"  # the settings fixture's public_url
OLD_MASTER = ('<?xml version="1.0" standalone="yes"?>\n<APPLICATION APP_FILE_PATH="sip.ld" '
              'CONFIG_FILES="old-site.cfg, [PHONE_MAC_ADDRESS]-old.cfg" MISC_FILES="" LOG_FILE_DIRECTORY=""/>\n')


@pytest.fixture
def config(tmp_path: Path, settings, site) -> Path:
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    autoprov("extension", "add", "1001", "--secret", "pw-1001", "--first-name", "Ada", config=path)
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=path)
    return path


def old_tftp_server(root: Path) -> Path:
    root.mkdir()
    (root / "000000000000.cfg").write_text(OLD_MASTER)
    (root / "old-site.cfg").write_text('<sip><voIpProt voIpProt.server.1.address="old-pbx.example.test"/></sip>')
    (root / f"{MAC}-old.cfg").write_text('<reg reg.1.address="9999"/>')
    return root


@pytest.mark.parametrize("firmware,server_type,static", [("3.3.2.0413", "2", "2"), ("4.0.15.1009", "HTTP", "Static")])
def test_an_old_server_phone_ends_on_this_server_with_its_config(config, client, tmp_path, firmware, server_type,
                                                                 static):
    old = old_tftp_server(tmp_path / "tftp")
    out = tmp_path / "out"
    result = autoprov("reprovision", "--to", f"http://{NEW_SERVER}", "--model", "polycom_ip330", "--firmware",
                      firmware, "--old-master", str(old / "000000000000.cfg"), "--out", str(out), config=config)
    assert sorted(p.name for p in out.iterdir()) == ["000000000000.cfg", "autoprov-move.cfg"]
    assert "reboots once more" in result.stdout
    move = ET.parse(out / "autoprov-move.cfg").getroot().attrib
    assert (move["device.prov.serverType"], move["device.dhcp.bootSrvUseOpt"]) == (server_type, static)
    for name in ("000000000000.cfg", "autoprov-move.cfg"):  # what the admin copies onto the old server
        shutil.copy(out / name, old / name)

    def fetch(scheme: str, server: str, path: str, ua: str) -> bytes | None:
        if scheme == "tftp" and server == "old-tftp.example.test":
            return (old / path).read_bytes() if (old / path).is_file() else None
        host, _, base = server.partition("/")
        assert (scheme, host) == ("http", NEW_SERVER), f"the phone went to {scheme}://{server}"
        r = client.get(f"/{base}/{path}".replace("//", "/"), headers={"User-Agent": ua})
        return r.data if r.status_code == 200 else None

    phone = Phone(MAC, firmware, user_agent("polycom_ip330", version=firmware), fetch,
                  {"device.prov.serverType": "tftp", "device.prov.serverName": "old-tftp.example.test"})
    assert phone.boot() is True  # first reboot: onto this server
    assert phone.rejected == []  # every value written for this generation is one it parses
    assert phone.stored == {"device.prov.serverType": "http", "device.prov.serverName": NEW_SERVER,
                            "device.dhcp.bootSrvUseOpt": "static"}
    assert phone.params["voIpProt.server.1.address"] == "old-pbx.example.test"  # the old files still read
    boots = 1
    while phone.boot():  # second reboot: onto its model's path here
        boots += 1
        assert boots < 5, phone.fetched
    assert boots == 2
    # Not checked here: phone.rejected now also holds one value of this server's own device.cfg, which mixes
    # the generations' spellings (serverType "2", bootSrvUseOpt "Static"); the phone keeps what the move
    # file stored, so it still arrives. Making device.cfg follow the firmware generation is open (issue 13).
    assert phone.stored["device.prov.serverName"] == f"{NEW_SERVER}/prov/polycom_ip330"
    assert phone.params["reg.1.address"] == "1001" and phone.params["reg.1.auth.password"] == "pw-1001"
    assert phone.fetched[-2:] == [f"http://{NEW_SERVER}/prov/polycom_ip330/{MAC}-phone.cfg",
                                  f"http://{NEW_SERVER}/prov/polycom_ip330/site.cfg"]


def test_refusals_write_nothing(config, tmp_path):
    out = tmp_path / "out"
    for args, message in (
        (("--to", "ftp://old.example.test", "--firmware", "4.0.1"), "--to must be an http:// or https:// URL"),
        (("--to", "http://x.example.test"), "give the firmware version the phones run"),
    ):
        result = autoprov("reprovision", *args, "--model", "polycom_ip330", "--out", str(out), config=config,
                          check=False)
        assert result.returncode == 1 and message in result.stderr
        assert not out.exists() or not any(out.iterdir())
    other = autoprov("reprovision", "--to", "http://x.example.test", "--model", "yealink_t41p", "--out", str(out),
                     config=config, check=False)
    assert other.returncode == 1 and "declares no way to move its phones" in other.stderr
    (tmp_path / "bad.cfg").write_text("<APPLICATION CONFIG_FILES='a'")
    bad = autoprov("reprovision", "--to", "http://x.example.test", "--model", "polycom_ip330", "--firmware", "3.3.2",
                   "--old-master", str(tmp_path / "bad.cfg"), "--out", str(out), config=config, check=False)
    assert bad.returncode == 1 and "is not well-formed XML" in bad.stderr
    ok = autoprov("reprovision", "--to", "https://u:p%22w@x.example.test/base", "--model", "polycom_ip330",
                  "--firmware", "4.0.1", "--out", str(out), config=config)
    assert ok.returncode == 0
    move = ET.parse(out / "autoprov-move.cfg").getroot().attrib
    assert (move["device.prov.serverType"], move["device.prov.serverName"]) == ("HTTPS", "x.example.test/base")
    assert (move["device.prov.user"], move["device.prov.password"]) == ("u", 'p"w')
    assert {(out / n).stat().st_mode & 0o777 for n in ("autoprov-move.cfg", "000000000000.cfg")} == {0o600}
    again = autoprov("reprovision", "--to", "http://y.example.test", "--model", "polycom_ip330", "--firmware", "4.0.1",
                     "--out", str(out), config=config, check=False)
    assert again.returncode == 1 and "nothing was written" in again.stderr
    assert "x.example.test" in (out / "autoprov-move.cfg").read_text()  # the first files are untouched
