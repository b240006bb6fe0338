"""``autoprov dhcp isc|kea|dnsmasq``: every snippet is loaded by the real daemon's configuration test, hands
exactly the configured URL to exactly the installed models' MAC prefixes, and a hostile URL is refused or
percent-encoded (never pasted into the daemon's syntax)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site
from autoprov.zerotouch import dhcp
from tests.conftest import cli as autoprov
from tests.zerotouch.daemons import check_config

SERVERS = ("isc", "kea", "dnsmasq")


def write_toml(tmp_path: Path, public_url: str = "http://prov.example.test:8080", dhcp_section: str = "") -> Path:
    path = tmp_path / "autoprov.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/autoprov.db"\n'
                    f"[http]\npublic_url = {json.dumps(public_url)}\n{dhcp_section}", encoding="utf-8")
    return path


def installed_ouis() -> set[str]:
    site = Site(Settings(), build_plugin_manager())
    return {o for m in site.models.values() for o in m.mac_ouis}


def handed_out(server: str, snippet: str) -> tuple[set[str], list[str]]:
    """What the snippet says, read back from its own syntax: the MAC prefixes matched and the URLs given."""
    if server == "isc":
        prefixes = re.findall(r"substring\(hardware, 1, 3\) = ([0-9a-f:]{8})", snippet)
        urls = re.findall(r'^\s*option (?:tftp-server-name|autoprov-boot-server) "([^"]*)";$', snippet, re.M)
    elif server == "dnsmasq":
        prefixes = re.findall(r"^dhcp-mac=set:autoprov-phones,([0-9a-f:]{8}):\*:\*:\*$", snippet, re.M)
        urls = re.findall(r'^dhcp-option-force=tag:autoprov-phones,(?:66|160),"([^"]*)"$', snippet, re.M)
    else:
        body = "\n".join(line for line in snippet.splitlines() if not line.startswith("//"))
        classes = json.loads("{" + body + "}")["client-classes"]
        (phones,) = classes
        prefixes = re.findall(r"substring\(pkt4.mac, 0, 3\) == 0x([0-9A-F]{6})", phones["test"])
        assert sorted(o["code"] for o in phones["option-data"]) == [66, 160]
        urls = [bytes.fromhex(o["data"]).decode("ascii") for o in phones["option-data"]]
    return {p.replace(":", "").lower() for p in prefixes}, urls


@pytest.mark.parametrize("server", SERVERS)
def test_snippet_is_accepted_by_the_real_daemon_and_names_every_installed_prefix(server, tmp_path):
    config = write_toml(tmp_path, dhcp_section='[dhcp]\nextra_ouis = ["00:11:22", "AABBCC"]\n')
    snippet = autoprov("dhcp", server, config=config).stdout
    checked = check_config(server, snippet, tmp_path / "daemon")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    prefixes, urls = handed_out(server, snippet)
    assert prefixes == installed_ouis() | {"001122", "aabbcc"}
    assert "0004f2" in prefixes  # the Polycom models are installed in the test environment
    assert urls == ["http://prov.example.test:8080"] * 2


@pytest.mark.parametrize("server", SERVERS)
def test_the_daemon_check_catches_a_broken_snippet(server, tmp_path):
    """The configuration test can fail: an unescaped quote in the URL breaks each daemon's syntax."""
    snippet = autoprov("dhcp", server, config=write_toml(tmp_path)).stdout
    if server == "kea":
        broken = snippet.replace('"name": "autoprov-phones"', '"name": "autoprov"phones"')
    else:
        broken = snippet.replace("http://prov.example.test:8080", 'http://prov"example test', 1)
    assert broken != snippet
    assert check_config(server, broken, tmp_path / "daemon").returncode != 0


HOSTILE_CREDENTIALS = ('pro v"\\\'', 'p"a;s s#w,o\\rd%zz\u00e9')


@pytest.mark.parametrize("server", SERVERS)
def test_hostile_credentials_are_percent_encoded_and_survive(server, tmp_path):
    user, password = HOSTILE_CREDENTIALS
    section = f"[dhcp]\nuser = {json.dumps(user)}\npassword = {json.dumps(password)}\n"
    snippet = autoprov("dhcp", server, config=write_toml(tmp_path, "https://prov.example.test/p", section)).stdout
    checked = check_config(server, snippet, tmp_path / "daemon")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    _, urls = handed_out(server, snippet)
    assert len(urls) == 2 and urls[0] == urls[1]
    parts = urlsplit(urls[0])
    assert (unquote(parts.username), unquote(parts.password)) == (user, password)
    assert (parts.scheme, parts.hostname, parts.path) == ("https", "prov.example.test", "/p")
    assert "provisioning password" in snippet  # the admin is told the file holds a secret


@pytest.mark.parametrize("url", [
    'http://prov.example.test/a"b',
    "http://prov.example.test/a b",
    "http://prov.example.test/a\\b",
    "http://prov.example.test/\u00e9",
    "http://prov.example.test/a%zz",
    "http://prov.example.test/a\nb",
    "http://prov.example.test/a<b>",
])
@pytest.mark.parametrize("server", SERVERS)
def test_a_hostile_public_url_is_refused_with_the_setting_named(server, url, tmp_path):
    result = autoprov("dhcp", server, config=write_toml(tmp_path, url), check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: http.public_url: ") and "cannot go to phones over DHCP" in line


def test_a_url_too_long_for_one_option_is_refused(tmp_path):
    url = "http://prov.example.test/" + "a" * 231
    assert len(url) == 256
    result = autoprov("dhcp", "isc", config=write_toml(tmp_path, url), check=False)
    assert result.returncode == 1 and "at most 255" in result.stderr
    ok = autoprov("dhcp", "isc", config=write_toml(tmp_path, url[:-1]), check=False)
    assert ok.returncode == 0, ok.stderr


def test_credential_settings_must_be_consistent(tmp_path):
    alone = autoprov("dhcp", "kea", config=write_toml(tmp_path, dhcp_section='[dhcp]\npassword = "x"\n'), check=False)
    assert alone.returncode == 1 and "dhcp.password is set without dhcp.user" in alone.stderr
    twice = autoprov("dhcp", "kea", config=write_toml(tmp_path, "http://a:b@prov.example.test",
                                                      '[dhcp]\nuser = "u"\n'), check=False)
    assert twice.returncode == 1 and "already holds a user name" in twice.stderr


def test_a_malformed_extra_prefix_is_refused_when_the_configuration_loads(tmp_path):
    result = autoprov("dhcp", "dnsmasq", config=write_toml(tmp_path, dhcp_section='[dhcp]\nextra_ouis = ["0004f"]\n'),
                      check=False)
    assert result.returncode == 1
    assert "dhcp.extra_ouis: '0004f' is not a MAC prefix" in result.stderr


def test_nothing_to_match_is_an_error_not_an_empty_class():
    settings = Settings()
    with pytest.raises(dhcp.DhcpError, match="no MAC prefix"):
        dhcp.build_offer(settings, [])
    settings.dhcp.extra_ouis = ["00-04-F2"]
    offer = dhcp.build_offer(settings, [])
    assert [o.prefix for o in offer.ouis] == ["0004f2"]
