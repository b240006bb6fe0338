"""[polling] rendered by each model in its own terms, for every mode, fetched as the phones fetch them and
parsed back; a mode a model (or a firmware generation) cannot do is refused, naming the model, to the phone
(500 and a sighting problem) and beforehand in `autoprov models`. Also: device.cfg per Polycom generation."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests

from autoprov.devices import GENERATED, SettingRefused
from autoprov.provisioning import admin
from autoprov.provisioning.rendered import rendered_files
from autoprov.tables import Phone, Sighting
from tests.conftest import cli as autoprov
from tests.conftest import free_port, running_server, write_config
from tests.zerotouch.sqlite import database_url  # noqa: F401  (SQLite only)

SIP3_UA = "FileTransport PolycomSoundPointIP-SPIP_331-UA/3.3.2.0413"
UC4_UA = "FileTransport PolycomSoundPointIP-SPIP_331-UA/4.0.15.1009"
IP330_UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.2.7.0198"
VVX_UA = "FileTransport PolycomVVX-VVX_410-UA/5.9.0.9373 Type/Application"
YEALINK_UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:01"
GS_UA = "Grandstream Model HW GXP2160 SW 1.0.11.7 DevId 000b828aa872"



def polling(site, mode: str, period: int = 86400, time: str = "03:00", end: str = "04:00",
            enabled: bool = True) -> None:
    p = site.settings.polling
    p.enabled, p.mode, p.period, p.time, p.time_random_end = enabled, mode, period, time, end


def polycom_prov(client, path: str, ua: str) -> dict[str, str]:
    r = client.get(path, headers={"User-Agent": ua})
    assert r.status_code == 200, r.data
    return ET.fromstring(r.data).find("prov").attrib


def yealink_polling(client) -> dict[str, str]:
    r = client.get("/y000000000066.cfg", headers={"User-Agent": YEALINK_UA})
    assert r.status_code == 200, r.data
    pairs = (line.split(" = ", 1) for line in r.data.decode().splitlines() if " = " in line)
    return {k: v for k, v in pairs if k.startswith("static.auto_provision.") and not k.endswith(".server.url")}


def grandstream_polling(client) -> dict[str, str]:
    r = client.get("/cfg.xml", headers={"User-Agent": GS_UA})
    assert r.status_code == 200, r.data
    config = ET.fromstring(r.data).find("config")
    return {e.tag: e.text or "" for e in config if e.tag in ("P194", "P193", "P285", "P8458", "P8459")}


@pytest.mark.parametrize("mode,period,expected", [
    ("abs", 86400, {"prov.polling.enabled": "1", "prov.polling.mode": "abs", "prov.polling.period": "86400",
                    "prov.polling.time": "02:30"}),
    ("rel", 7200, {"prov.polling.enabled": "1", "prov.polling.mode": "rel", "prov.polling.period": "7200"}),
    ("random", 172800, {"prov.polling.enabled": "1", "prov.polling.mode": "random", "prov.polling.period": "172800",
                        "prov.polling.time": "02:30", "prov.polling.timeRandomEnd": "05:15"}),
])
def test_polycom_uc_software_polls_every_way(site, client, mode, period, expected):
    polling(site, mode, period, "02:30", "05:15")
    assert polycom_prov(client, "/prov/polycom_ip331/site.cfg", UC4_UA) == expected
    assert polycom_prov(client, "/prov/polycom_vvx410/site.cfg", VVX_UA) == expected


def test_polycom_polling_off(site, client):
    polling(site, "random", enabled=False)
    for path, ua in (("/prov/polycom_ip331/site.cfg", SIP3_UA), ("/prov/polycom_vvx410/site.cfg", VVX_UA)):
        assert polycom_prov(client, path, ua) == {"prov.polling.enabled": "0"}


def test_polycom_sip3_polls_abs_and_rel_and_is_refused_random(site, client, db):
    polling(site, "abs", 86400, "01:45")
    assert polycom_prov(client, "/prov/polycom_ip331/site.cfg", SIP3_UA)["prov.polling.time"] == "01:45"
    polling(site, "rel", 3700)
    assert polycom_prov(client, "/prov/polycom_ip330/site.cfg", IP330_UA)["prov.polling.period"] == "3700"
    site.fixed.clear()
    polling(site, "random")
    r = client.get("/prov/polycom_ip330/site.cfg", headers={"User-Agent": IP330_UA})
    assert r.status_code == 500
    message = r.data.decode()
    assert "Polycom SoundPoint IP 330 on SIP 3.x" in message and "cannot poll in mode 'random'" in message
    seen = Sighting.get(Sighting.user_agent == IP330_UA)
    assert "site.cfg refused: polling.mode" in seen.problem
    # The same model on UC Software (the User-Agent says 4.x) gets it: one render per generation.
    assert polycom_prov(client, "/prov/polycom_ip331/site.cfg", UC4_UA)["prov.polling.mode"] == "random"
    assert client.get("/prov/polycom_ip331/site.cfg", headers={"User-Agent": SIP3_UA}).status_code == 500


def test_polycom_relative_period_too_short_is_refused(site, client):
    polling(site, "rel", 600)
    r = client.get("/prov/polycom_vvx410/site.cfg", headers={"User-Agent": VVX_UA})
    assert r.status_code == 500
    assert "in mode 'rel' a Polycom VVX 410 needs a period over 3600 s, not 600" in r.data.decode()


@pytest.mark.parametrize("mode,expected", [
    ("abs", {"repeat.enable": "0", "weekly.enable": "1", "weekly.begin_time": "02:00", "weekly.end_time": "02:00",
             "weekly.dayofweek": "0123456"}),
    ("rel", {"repeat.enable": "1", "repeat.minutes": "120", "weekly.enable": "0"}),
    ("random", {"repeat.enable": "0", "weekly.enable": "1", "weekly.begin_time": "02:00",
                "weekly.end_time": "04:30", "weekly.dayofweek": "0123456"}),
])
def test_yealink_polls_every_way(site, client, mode, expected):
    polling(site, mode, 7200 if mode == "rel" else 86400, "02:00", "04:30")
    assert yealink_polling(client) == {f"static.auto_provision.{k}": v for k, v in expected.items()}


def test_yealink_refusals(site, client):
    polling(site, "rel", 90)
    r = client.get("/y000000000066.cfg", headers={"User-Agent": YEALINK_UA})
    assert r.status_code == 500 and "Yealink SIP-T46S polls every whole number of minutes" in r.data.decode()
    site.fixed.clear()
    polling(site, "abs", 3 * 86400)
    r = client.get("/y000000000066.cfg", headers={"User-Agent": YEALINK_UA})
    assert r.status_code == 500 and "polls in mode 'abs' once a day" in r.data.decode()
    site.fixed.clear()
    polling(site, "rel", enabled=False)
    assert yealink_polling(client) == {"static.auto_provision.repeat.enable": "0",
                                       "static.auto_provision.weekly.enable": "0"}


@pytest.mark.parametrize("mode,period,expected", [
    ("abs", 86400, {"P194": "2", "P285": "3", "P8458": "0"}),
    ("rel", 7200, {"P194": "1", "P193": "120"}),
    ("random", 86400, {"P194": "2", "P285": "3", "P8458": "1", "P8459": "5"}),
])
def test_grandstream_polls_every_way(site, client, mode, period, expected):
    polling(site, mode, period, "03:00", "05:00")
    assert grandstream_polling(client) == expected


def test_grandstream_refusals(site, client):
    for mode, period, time, message in (("abs", 86400, "03:30", "checks daily from a whole hour (P285)"),
                                        ("rel", 1800, "03:00", "at least 60, not every 1800 s"),
                                        ("random", 7 * 86400, "03:00", "once a day (86400 s)")):
        site.fixed.clear()
        polling(site, mode, period, time)
        r = client.get("/cfg.xml", headers={"User-Agent": GS_UA})
        assert r.status_code == 500 and "a Grandstream GXP2160 checks" in r.data.decode()
        assert message in r.data.decode()
    site.fixed.clear()
    polling(site, "abs", enabled=False)
    assert grandstream_polling(client) == {"P194": "0"}


def test_models_lists_refused_settings_beforehand(tmp_path, settings):
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    config.write_text(config.read_text() + '[polling]\nmode = "random"\n')
    out = autoprov("models", config=config).stdout
    assert "REFUSED SETTING (sip3): polling.mode: a Polycom SoundPoint IP 330 on SIP 3.x" in out
    assert "REFUSED SETTING (uc)" not in out  # UC Software polls at random


def test_a_real_server_warns_at_start_and_answers_the_refusal(tmp_path, settings, site, capsys):
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    config.write_text(config.read_text() + '[polling]\nmode = "random"\n')
    with running_server(config, port) as url:
        refused = requests.get(f"{url}/prov/polycom_ip330/site.cfg", headers={"User-Agent": IP330_UA}, timeout=10)
        served = requests.get(f"{url}/prov/polycom_ip331/site.cfg", headers={"User-Agent": UC4_UA}, timeout=10)
    assert refused.status_code == 500 and "cannot poll in mode 'random'" in refused.text
    assert served.status_code == 200 and 'prov.polling.mode="random"' in served.text
    log = capsys.readouterr().err
    assert "WARNING: polycom_ip330 (sip3): polling.mode: a Polycom SoundPoint IP 330 on SIP 3.x" in log
    assert "WARNING: polycom_vvx410" not in log


@pytest.mark.parametrize("ua,path,server_type,boot", [
    (SIP3_UA, "/prov/polycom_ip331/device.cfg", "2", "2"),
    (UC4_UA, "/prov/polycom_ip331/device.cfg", "HTTP", "Static"),
    (IP330_UA, "/prov/polycom_ip330/device.cfg", "2", "2"),
    (VVX_UA, "/prov/polycom_vvx410/device.cfg", "HTTP", "Static"),
])
def test_device_cfg_follows_the_firmware_generation(client, ua, path, server_type, boot):
    attrs = ET.fromstring(client.get(path, headers={"User-Agent": ua}).data).attrib
    assert (attrs["device.prov.serverType"], attrs["device.dhcp.bootSrvUseOpt"]) == (server_type, boot)
    assert attrs["device.prov.serverType.set"] == attrs["device.dhcp.bootSrvUseOpt.set"] == "1"


def test_the_admin_view_shows_the_generation_the_phone_reported(site, client):
    mac = "0004f2aabb31"
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1001", secret="pw"))
        admin.add_phone(site, mac, "polycom_ip331", ["1001"])

    def device_cfg() -> dict[str, str]:
        with site.db.connection_context():
            files = {f.name: f.body for f in rendered_files(site, Phone.get(Phone.mac == mac))}
        return ET.fromstring(files["device.cfg"]).attrib

    assert device_cfg()["device.prov.serverType"] == "2"  # never seen: the model's first generation (SIP 3.x)
    assert client.get(f"/prov/polycom_ip331/{mac}-phone.cfg", headers={"User-Agent": UC4_UA}).status_code == 200
    assert device_cfg()["device.prov.serverType"] == "HTTP"  # it said UC Software 4.0.15


def _polycom(body: bytes) -> dict[str, str] | None:
    prov = ET.fromstring(body).find("prov")
    return dict(prov.attrib) if prov is not None else None


def _yealink(body: bytes) -> dict[str, str] | None:
    pairs = (line.split(" = ", 1) for line in body.decode().splitlines() if " = " in line)
    found = {k: v for k, v in pairs if k.startswith("static.auto_provision.") and not k.endswith(".server.url")}
    return found or None


def _grandstream(body: bytes) -> dict[str, str] | None:
    config = ET.fromstring(body).find("config")
    return {e.tag: e.text or "" for e in config if e.tag in ("P194", "P193", "P285", "P8458", "P8459")} or None


READERS = {"Polycom": _polycom, "Yealink": _yealink, "Grandstream": _grandstream}
EXPECTED = {
    "Polycom": {"abs": {"prov.polling.enabled": "1", "prov.polling.mode": "abs", "prov.polling.period": "86400",
                        "prov.polling.time": "03:00"},
                "rel": {"prov.polling.enabled": "1", "prov.polling.mode": "rel", "prov.polling.period": "7200"},
                "random": {"prov.polling.enabled": "1", "prov.polling.mode": "random", "prov.polling.period": "86400",
                           "prov.polling.time": "03:00", "prov.polling.timeRandomEnd": "05:00"},
                "off": {"prov.polling.enabled": "0"}},
    "Yealink": {"abs": {"static.auto_provision.repeat.enable": "0", "static.auto_provision.weekly.enable": "1",
                        "static.auto_provision.weekly.begin_time": "03:00",
                        "static.auto_provision.weekly.end_time": "03:00",
                        "static.auto_provision.weekly.dayofweek": "0123456"},
                "rel": {"static.auto_provision.repeat.enable": "1", "static.auto_provision.repeat.minutes": "120",
                        "static.auto_provision.weekly.enable": "0"},
                "random": {"static.auto_provision.repeat.enable": "0", "static.auto_provision.weekly.enable": "1",
                           "static.auto_provision.weekly.begin_time": "03:00",
                           "static.auto_provision.weekly.end_time": "05:00",
                           "static.auto_provision.weekly.dayofweek": "0123456"},
                "off": {"static.auto_provision.repeat.enable": "0", "static.auto_provision.weekly.enable": "0"}},
    "Grandstream": {"abs": {"P194": "2", "P285": "3", "P8458": "0"}, "rel": {"P194": "1", "P193": "120"},
                    "random": {"P194": "2", "P285": "3", "P8458": "1", "P8459": "5"}, "off": {"P194": "0"}},
}


@pytest.mark.parametrize("mode", ["abs", "rel", "random", "off"])
def test_every_installed_model_writes_or_refuses_every_mode(site, mode):
    """Every model of every generation: its generated files carry the mode in its own terms (parsed back), or
    it refuses the mode, naming itself, exactly when check_settings says so."""
    polling(site, "abs" if mode == "off" else mode, 7200 if mode == "rel" else 86400, "03:00", "05:00",
            enabled=mode != "off")
    refused = []
    for model in site.models.values():
        read = READERS[model.vendor]
        for generation in model.generations or (None,):
            refusals = model.check_settings(generation)
            carried = 0
            for rule in (r for r in site.files_of(model) if r.role == GENERATED):
                try:
                    body = model.render(rule, None, generation)
                except SettingRefused as exc:
                    assert refusals and model.label in str(exc), (model.name, generation, exc)
                    refused.append((model.name, generation))
                    continue
                found = read(body)
                if found is not None:
                    assert found == EXPECTED[model.vendor][mode], (model.name, generation, rule.pattern)
                    carried += 1
            assert carried or refusals, f"{model.name} ({generation}) writes no polling"
    polycom_sip3 = {(m.name, "sip3") for m in site.models.values() if "sip3" in m.generations}
    assert set(refused) == (polycom_sip3 if mode == "random" else set())
