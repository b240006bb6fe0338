"""BootROM and SIP images: streamed from the model's firmware directory, with Range and conditional GET,
and no way out of that directory."""

from __future__ import annotations

import os

import pytest

from autoprov.config import ConfigError, load_settings
from tests.phones import headers

IP330 = headers("polycom_ip330")


@pytest.fixture
def image(site) -> bytes:
    data = os.urandom(256 * 1024)
    (site.models["polycom_ip330"].firmware_dir / "sip.ld").write_bytes(data)
    (site.models["polycom_ip330"].firmware_dir / "bootrom.ld").write_bytes(data[:1000])
    return data


def test_whole_image_streamed(client, image):
    r = client.get("/prov/polycom_ip330/sip.ld", headers=IP330)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(image))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.is_streamed or r.direct_passthrough  # a file wrapper, not a bytes body
    assert r.get_data() == image


def test_range_request(client, image):
    r = client.get("/prov/polycom_ip330/sip.ld", headers={**IP330, "Range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 1000-1999/{len(image)}"
    assert r.get_data() == image[1000:2000]
    r = client.get("/prov/polycom_ip330/sip.ld", headers={**IP330, "Range": "bytes=-10"})
    assert r.get_data() == image[-10:]
    r = client.get("/prov/polycom_ip330/sip.ld", headers={**IP330, "Range": f"bytes={len(image)}-"})
    assert r.status_code == 416


@pytest.mark.parametrize("value", ["bytes=abc", "bytes=0-9,100-109", "lines=1-2"])
def test_a_range_that_cannot_be_served_as_one_piece_gets_the_whole_file(client, image, value):
    r = client.get("/prov/polycom_ip330/sip.ld", headers={**IP330, "Range": value})
    assert r.status_code == 200 and r.get_data() == image


def test_failed_if_match_is_412_without_the_file(client, image):
    r = client.get("/prov/polycom_ip330/sip.ld", headers={**IP330, "If-Match": '"not-this-one"'})
    assert r.status_code == 412 and r.get_data() == b""


def test_conditional_get(client, image):
    first = client.get("/prov/polycom_ip330/sip.ld", headers=IP330)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/prov/polycom_ip330/sip.ld", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/prov/polycom_ip330/sip.ld", headers={"If-Modified-Since": modified}).status_code == 304
    # If-Range with a stale validator gets the whole file, not a piece of a different one.
    r = client.get("/prov/polycom_ip330/sip.ld", headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200


def test_root_bootrom_request_served_by_user_agent(client, image):
    """Before it is moved, a phone asks the server root for its BootROM."""
    r = client.get("/bootrom.ld", headers=IP330)
    assert r.status_code == 200
    assert r.get_data() == image[:1000]
    assert client.get("/bootrom.ld").status_code == 404  # no User-Agent, no model, no guess


@pytest.mark.parametrize(
    "path",
    [
        "/prov/polycom_ip330/../../../../etc/passwd",
        "/prov/polycom_ip330/..%2f..%2f..%2fetc%2fpasswd",
        "/prov/polycom_ip330/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/prov/polycom_ip330/..%5c..%5cetc%5cpasswd",
        "/prov/polycom_ip330//etc/passwd",
        "/prov/polycom_ip330/%2fetc%2fpasswd",
        "/prov/polycom_ip330/sip.ld%00.txt",
        "/prov/polycom_ip330/.hidden",
        "/prov/polycom_ip330/escape",
        "/prov/polycom_ip330/escape-dir/passwd",
        "/prov/polycom_ip330/../polycom_ip331/secret.ld",
        "/..%2f..%2fetc/passwd",
        "/prov/polycom_ip330/",
    ],
)
def test_path_tricks_never_leave_the_firmware_directory(site, client, image, tmp_path, path):
    fw = site.models["polycom_ip330"].firmware_dir
    (fw / ".hidden").write_bytes(b"dotfile")
    (fw / "escape").symlink_to("/etc/passwd")
    (fw / "escape-dir").symlink_to("/etc")
    (site.models["polycom_ip331"].firmware_dir / "secret.ld").write_bytes(b"other model")
    r = client.get(path, headers=IP330)
    assert r.status_code in (400, 404)
    assert b"root:" not in r.get_data()
    assert b"dotfile" not in r.get_data()


def test_symlink_inside_the_directory_is_followed(site, client, image):
    fw = site.models["polycom_ip330"].firmware_dir
    (fw / "2345-12200-001.sip.ld").symlink_to(fw / "sip.ld")
    assert client.get("/prov/polycom_ip330/2345-12200-001.sip.ld", headers=IP330).get_data() == image


def test_subdirectories_are_served(site, client, image):
    fw = site.models["polycom_ip330"].firmware_dir
    (fw / "SoundPointIPLocalization" / "Francais_France").mkdir(parents=True)
    (fw / "SoundPointIPLocalization" / "Francais_France" / "SoundPointIP-dictionary.xml").write_bytes(b"<x/>")
    path = "/prov/polycom_ip330/SoundPointIPLocalization/Francais_France/SoundPointIP-dictionary.xml"
    assert client.get(path, headers=IP330).get_data() == b"<x/>"


def test_missing_firmware_is_a_plain_404(client):
    r = client.get("/prov/polycom_ip330/sip.ld", headers=IP330)
    assert r.status_code == 404
    assert r.mimetype == "text/plain"


# --- Handing the file to Apache ([firmware] send_with = "apache"; the real thing: tests/test_apache.py) ---

MOD_WSGI_DAEMON = {"mod_wsgi.process_group": "autoprov"}


def test_under_mod_wsgi_daemon_mode_apache_is_told_which_file_to_send(site, client, image):
    site.settings.firmware.send_with = "apache"
    fw = site.models["polycom_ip330"].firmware_dir
    (fw / "a b%#?ü.ld").write_bytes(b"odd name")
    r = client.get("/prov/polycom_ip330/sip.ld", headers=IP330, environ_base=MOD_WSGI_DAEMON)
    assert (r.status_code, r.get_data()) == (200, b"")
    assert r.headers["Location"] == "/autoprov-firmware/polycom_ip330/sip.ld"
    r = client.get("/bootrom.ld", headers=IP330, environ_base=MOD_WSGI_DAEMON)  # chosen by the User-Agent
    assert r.headers["Location"] == "/autoprov-firmware/polycom_ip330/bootrom.ld"
    r = client.get("/prov/polycom_ip330/a%20b%25%23%3F%C3%BC.ld", headers=IP330, environ_base=MOD_WSGI_DAEMON)
    assert r.headers["Location"] == "/autoprov-firmware/polycom_ip330/a%20b%25%23%3F%C3%BC.ld"
    # What autoprov refuses, it refuses before any hand-off.
    (fw / "escape").symlink_to("/etc/passwd")
    r = client.get("/prov/polycom_ip330/escape", headers=IP330, environ_base=MOD_WSGI_DAEMON)
    assert r.status_code == 404 and "Location" not in r.headers


def test_anywhere_else_the_file_is_still_streamed(site, client, image):
    """autoprov serve (or mod_wsgi embedded mode) with the same configuration file: no empty answers."""
    site.settings.firmware.send_with = "apache"
    for environ in ({}, {"mod_wsgi.process_group": ""}):
        r = client.get("/prov/polycom_ip330/sip.ld", headers=IP330, environ_base=environ)
        assert r.status_code == 200 and r.get_data() == image and "Location" not in r.headers


def test_a_model_directory_linked_from_outside_the_root_is_streamed(site, client, tmp_path):
    site.settings.firmware.send_with = "apache"
    fw = site.models["polycom_ip330"].firmware_dir
    fw.rmdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "sip.ld").write_bytes(b"outside the alias")
    fw.symlink_to(tmp_path / "elsewhere")
    r = client.get("/prov/polycom_ip330/sip.ld", headers=IP330, environ_base=MOD_WSGI_DAEMON)
    assert r.get_data() == b"outside the alias" and "Location" not in r.headers


@pytest.mark.parametrize("key,value,message", [
    ("send_with", "x-sendfile", "firmware.send_with: must be app or apache"),
    ("apache_alias", "autoprov-firmware", "firmware.apache_alias"),
    ("apache_alias", "/../etc/", "firmware.apache_alias"),
    ("apache_alias", "/a b/", "firmware.apache_alias"),
])
def test_firmware_settings_are_checked(tmp_path, key, value, message):
    path = tmp_path / "autoprov.toml"
    path.write_text(f'[firmware]\n{key} = "{value}"\n')
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(path, environ={})
