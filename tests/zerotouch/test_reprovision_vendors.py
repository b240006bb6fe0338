"""``autoprov reprovision --to URL`` for Yealink and Grandstream: the file written for the old (here TFTP)
server moves a simulated phone of each vendor onto this server, where it gets its own config; refusals."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.zerotouch import grandstream_phone, yealink_phone
from tests.zerotouch.sqlite import database_url  # noqa: F401  (SQLite only)

NEW = "http://prov.example.test:8080"  # the settings fixture's public_url
OLD = "tftp://old-tftp.example.test"
YEALINK_MAC, GS_MAC = "001565aabb01", "000b82aabb01"
YEALINK_UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:01"
GS_UA = "Grandstream Model HW GXP2160 SW 1.0.11.7 DevId 000b82aabb01"



@pytest.fixture
def config(tmp_path: Path, settings, site) -> Path:
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    autoprov("extension", "add", "1001", "--secret", "pw-1001", "--first-name", "Ada", config=path)
    autoprov("extension", "add", "1002", "--secret", "pw-1002", config=path)
    autoprov("phone", "add", YEALINK_MAC, "--model", "yealink_t46s", "--line", "1001", config=path)
    autoprov("phone", "add", GS_MAC, "--model", "grandstream_gxp2160", "--line", "1002", config=path)
    return path


def servers(old: Path, client):
    """fetch(URL, User-Agent) for the simulators: the old TFTP directory, or this server over HTTP."""
    def fetch(url: str, ua: str) -> bytes | None:
        if url.startswith(OLD + "/"):
            path = old / url.removeprefix(OLD + "/")
            return path.read_bytes() if path.is_file() else None
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == NEW, f"the phone went to {url}"
        r = client.get(parts.path, headers={"User-Agent": ua})
        return r.data if r.status_code == 200 else None
    return fetch


def move(config: Path, tmp_path: Path, model: str, old: Path, old_file: str, *extra: str) -> str:
    out = tmp_path / "out"
    result = autoprov("reprovision", "--to", NEW, "--model", model, "--old-master", str(old / old_file),
                      "--out", str(out), *extra, config=config)
    assert [p.name for p in out.iterdir()] == [old_file]
    shutil.copy(out / old_file, old / old_file)  # what the admin does
    return result.stdout


def test_a_yealink_on_an_old_server_ends_here_with_its_config(config, client, tmp_path):
    old = tmp_path / "tftp"
    old.mkdir()
    (old / "y000000000066.cfg").write_text("#!version:1.0.0.1\nlocal_time.ntp_server1 = old-ntp.example.test\n"
                                           f"static.auto_provision.server.url = {OLD}/\n")
    said = move(config, tmp_path, "yealink_t46s", old, "y000000000066.cfg")
    assert "copy y000000000066.cfg onto the old server" in said
    phone = yealink_phone.Phone(YEALINK_MAC, "y000000000066.cfg", YEALINK_UA, OLD, servers(old, client))
    assert phone.boot() is True  # it read the old server's file and stored this server
    assert phone.params["local_time.ntp_server1"] == "old-ntp.example.test"  # the old settings are kept
    assert phone.stored["static.auto_provision.server.url"] == f"{NEW}/"
    assert phone.stored["static.auto_provision.dhcp_option.enable"] == "0"  # DHCP's option 66 no longer wins
    assert phone.boot() is False  # the next boot: here, and here it stays
    assert phone.fetched[-2:] == [f"{NEW}/y000000000066.cfg", f"{NEW}/{YEALINK_MAC}.cfg"]
    assert (phone.params["account.1.user_name"], phone.params["account.1.password"]) == ("1001", "pw-1001")


def test_a_grandstream_on_an_old_server_ends_here_with_its_config(config, client, tmp_path):
    old = tmp_path / "tftp"
    old.mkdir()
    (old / "cfg.xml").write_text('<?xml version="1.0" encoding="UTF-8"?>\n<gs_provision version="1"><config '
                                 'version="1"><P30>old-ntp.example.test</P30><P237>old-tftp.example.test</P237>'
                                 '<P212>0</P212></config></gs_provision>\n')
    said = move(config, tmp_path, "grandstream_gxp2160", old, "cfg.xml")
    assert "copy cfg.xml onto the old server" in said
    phone = grandstream_phone.Phone(GS_MAC, "gxp2160", GS_UA, OLD, servers(old, client))
    assert phone.boot() is True
    assert (phone.stored["P212"], phone.stored["P237"], phone.stored["P145"]) == ("1", "prov.example.test:8080", "0")
    assert phone.stored["P30"] == "old-ntp.example.test"  # the old cfg.xml's other values are kept
    assert phone.boot() is False
    assert phone.fetched[-2:] == [f"{NEW}/cfg{GS_MAC}", f"{NEW}/cfg{GS_MAC}.xml"]
    assert (phone.stored["P35"], phone.stored["P34"]) == ("1002", "pw-1002")


def test_logins_and_refusals(config, tmp_path):
    out = tmp_path / "out"
    autoprov("reprovision", "--to", "https://u%20x:p%22w@new.example.test/base/", "--model", "yealink_t46s",
             "--out", str(out), config=config)
    values = yealink_phone.parse((out / "y000000000066.cfg").read_bytes())
    assert values == {"static.auto_provision.server.url": "https://new.example.test/base/",
                      "static.auto_provision.server.username": "u x", "static.auto_provision.server.password": 'p"w',
                      "static.auto_provision.dhcp_option.enable": "0", "static.auto_provision.pnp_enable": "0"}
    autoprov("reprovision", "--to", "https://u:p%3Cw@new.example.test", "--model", "grandstream_gxp2160",
             "--out", str(out), config=config)
    config_values = {e.tag: e.text or "" for e in ET.parse(out / "cfg.xml").getroot().find("config")}
    assert config_values == {"P212": "2", "P237": "new.example.test", "P1360": "u", "P1361": "p<w", "P234": "",
                             "P235": "", "P145": "0"}
    for model, to, message in (
        ("yealink_t46s", "https://u:a%0Ab@x.example.test", "contains a line break"),
        ("yealink_t46s", "ftp://x.example.test", "--to must be an http:// or https:// URL"),
        ("grandstream_gxp2160", "http://u:a%00b@x.example.test", "control character"),
    ):
        result = autoprov("reprovision", "--to", to, "--model", model, "--out", str(tmp_path / "none"),
                          config=config, check=False)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert not (tmp_path / "none").exists()
    (tmp_path / "mine.xml").write_text("<gs_provision><mac>000b82000001</mac><config/></gs_provision>")
    result = autoprov("reprovision", "--to", NEW, "--model", "grandstream_gxp2160", "--old-master",
                      str(tmp_path / "mine.xml"), "--out", str(tmp_path / "none"), config=config, check=False)
    assert result.returncode == 1 and "one phone's file, not the generic cfg.xml" in result.stderr
