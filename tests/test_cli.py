"""The ``autoprov`` command line, run as the real process against each database backend.

Refusals are one line on stderr (``Error: ...``) and a non-zero exit, and change nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.phones import headers, user_agent

MAC = "0004f2aabbcc"


@pytest.fixture
def config(tmp_path: Path, settings) -> Path:
    """A configuration file for the test's database, initialised by ``autoprov init``."""
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    autoprov("init", config=path)
    return path


@pytest.fixture
def two_extensions(config: Path) -> Path:
    autoprov("extension", "add", "1001", "--secret", "pw-1001", "--first-name", "Ada", "--last-name", "Lovelace",
             config=config)
    autoprov("extension", "add", "1002", "--secret", "pw-1002", config=config)
    return config


def refused(*args: str, config: Path | None) -> str:
    """Run a command that must fail; return its one error line (without "Error: ")."""
    result = autoprov(*args, config=config, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0].removeprefix("Error: ")


def phone_list(config: Path) -> list[str]:
    return autoprov("phone", "list", config=config).stdout.splitlines()


# --- init -----------------------------------------------------------------------------------------------


def test_init_twice_is_safe_and_says_up_to_date(tmp_path, settings):
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    first = autoprov("init", config=config).stdout
    assert "applied core 1: extensions, phones, lines, sightings" in first
    assert first.rstrip().endswith("is up to date")
    autoprov("extension", "add", "1001", "--secret", "pw-1001", config=config)

    second = autoprov("init", config=config).stdout
    assert "applied" not in second
    assert second.startswith("database ") and second.rstrip().endswith("is up to date")
    assert "pw-1001" not in second and "autoprov-test" not in second  # the PostgreSQL password is hidden
    assert autoprov("extension", "list", config=config).stdout.startswith("1001\t")  # nothing was lost
    for name in ("polycom_ip330", "polycom_ip331", "polycom_ip4000"):
        assert (Path(settings.firmware.root) / name).is_dir()


# --- extensions -----------------------------------------------------------------------------------------


def test_extension_add_list_remove_and_secrets(config):
    chosen = autoprov("extension", "add", "1001", "--secret", "chosen-secret", "--first-name", "Ada",
                      "--last-name", "Lovelace", config=config)
    assert chosen.stdout == "added extension 1001\n"  # a chosen secret is not echoed

    generated = autoprov("extension", "add", "1002", "--server", "pbx2.example.test", "--port", "5070",
                         "--no-directory", config=config).stdout.splitlines()
    assert generated[0] == "added extension 1002"
    assert generated[1].startswith("secret: ")
    secret = generated[1].removeprefix("secret: ")
    assert len(secret) >= 16

    listing = autoprov("extension", "list", config=config).stdout
    assert listing.splitlines() == [
        "1001\tAda Lovelace\t(site default)",
        "1002\t1002\tpbx2.example.test:5070  [not in directory]",
    ]
    assert "chosen-secret" not in listing and secret not in listing

    # The printed secret is the one the phone gets.
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1002", config=config)
    reg = ET.fromstring(autoprov("render", MAC, config=config).stdout).find("reg")
    assert reg.get("reg.1.auth.password") == secret
    assert reg.get("reg.1.server.1.address") == "pbx2.example.test"
    assert reg.get("reg.1.server.1.port") == "5070"
    assert secret not in autoprov("phone", "show", MAC, config=config).stdout

    autoprov("phone", "remove", MAC, config=config)
    assert autoprov("extension", "remove", "1002", config=config).stdout == "removed extension 1002\n"
    assert autoprov("extension", "list", config=config).stdout == "1001\tAda Lovelace\t(site default)\n"
    assert refused("extension", "remove", "1002", config=config) == "no extension 1002"


# --- phones ---------------------------------------------------------------------------------------------


def test_phone_add_list_show_render_remove(two_extensions):
    config = two_extensions
    added = autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", "--line", "1002",
                     config=config)
    assert added.stdout == f"added phone {MAC} (polycom_ip330) with 2 line(s)\n"
    assert phone_list(config) == [f"{MAC}\tpolycom_ip330\t1001,1002"]

    show = autoprov("phone", "show", MAC, config=config).stdout.splitlines()
    assert show[:3] == [f"phone {MAC} (00:04:f2:aa:bb:cc)", "model: polycom_ip330", "time zone: UTC (site)"]
    assert "line 1: 1001 'Ada Lovelace' via pbx.example.test:5060" in show
    assert "line 2: 1002 '1002' via pbx.example.test:5060" in show

    rendered = autoprov("render", MAC, config=config).stdout
    phone = ET.fromstring(rendered)
    assert phone.get("mac") == MAC
    regs = phone.findall("reg")
    assert [(r.get(f"reg.{i}.address"), r.get(f"reg.{i}.auth.password")) for i, r in enumerate(regs, 1)] == [
        ("1001", "pw-1001"),
        ("1002", "pw-1002"),
    ]
    assert regs[0].get("reg.1.displayName") == "Ada Lovelace"
    assert "Generated by autoprov for the Polycom SoundPoint IP 330" in rendered

    assert autoprov("phone", "remove", MAC, config=config).stdout == f"removed phone {MAC}\n"
    assert phone_list(config) == []
    assert refused("render", MAC, config=config) == f"no phone {MAC}"
    assert refused("phone", "show", MAC, config=config) == f"no phone {MAC}"
    # Its extensions stay, and can be used again.
    assert len(autoprov("extension", "list", config=config).stdout.splitlines()) == 2
    autoprov("phone", "add", MAC, "--model", "polycom_ip4000", "--line", "1002", config=config)


def test_macs_in_any_case_and_with_separators_are_one_phone(two_extensions):
    config = two_extensions
    added = autoprov("phone", "add", "00:04:F2:AA:BB:CC", "--model", "polycom_ip330", "--line", "1001", config=config)
    assert f"added phone {MAC} " in added.stdout
    assert phone_list(config) == [f"{MAC}\tpolycom_ip330\t1001"]
    assert autoprov("phone", "show", "00-04-f2-aa-bb-cc", config=config).stdout.startswith(f"phone {MAC} ")
    assert 'reg.1.auth.password="pw-1001"' in autoprov("render", "0004F2AABBCC", config=config).stdout
    assert refused("phone", "add", "00-04-f2-AA-bb-CC", "--model", "polycom_ip330", config=config) == (
        f"phone {MAC} already exists"
    )
    autoprov("phone", "remove", "00-04-F2-AA-BB-CC", config=config)
    assert phone_list(config) == []


def test_refusals_are_one_line_and_change_nothing(two_extensions):
    config = two_extensions
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=config)
    before = phone_list(config)
    other = "0004f2aabbdd"

    assert refused("phone", "add", "00:04:F2:AA:BB:CC", "--model", "polycom_ip331", config=config) == (
        f"phone {MAC} already exists"
    )
    assert refused("phone", "add", other, "--model", "polycom_ip330", "--line", "1001", "--line", "1999",
                   config=config) == "unknown extension(s): 1999"
    assert refused("phone", "add", other, "--model", "polycom_ip4000", "--line", "1001", "--line", "1002",
                   config=config) == "polycom_ip4000 has 1 line(s); 2 given"
    assert refused("phone", "add", other, "--model", "polycom_ip330", "--line", "1001", "--line", "1002",
                   "--line", "1002", config=config) == "polycom_ip330 has 2 line(s); 3 given"
    for bad in ("0004f2aabbzz", "00:04:f2:aa-bb:cc"):
        assert refused("phone", "add", bad, "--model", "polycom_ip330", config=config) == (
            f"not a MAC address: {bad!r} (12 hex digits, optionally separated by : or -, or dotted as 0004.f2aa.bbcc)"
        )
    assert refused("phone", "add", "000000000000", "--model", "polycom_ip330", config=config) == (
        "000000000000 is the shared-defaults name, not a phone's MAC"
    )
    message = refused("phone", "add", other, "--model", "polycom_vvx999", config=config)
    # Every installed model is listed, sorted (other model packages may be installed beside the Polycom ones).
    assert message.startswith("unknown model 'polycom_vvx999' (installed: ") and message.endswith(")")
    installed = message.split("(installed: ", 1)[1][:-1].split(", ")
    assert {"polycom_ip330", "polycom_ip331", "polycom_ip4000"} <= set(installed) and installed == sorted(installed)
    assert refused("extension", "remove", "1001", config=config) == (
        f"extension 1001 is on phone(s) {MAC}; remove it from them first"
    )
    assert refused("extension", "add", "1001", "--secret", "x", config=config) == "extension 1001 already exists"
    assert refused("phone", "remove", other, config=config) == f"no phone {other}"

    assert phone_list(config) == before
    assert [line.split("\t")[0] for line in autoprov("extension", "list", config=config).stdout.splitlines()] == [
        "1001",
        "1002",
    ]


# --- models ---------------------------------------------------------------------------------------------


def test_models_lists_the_polycom_models(config, settings):
    out = autoprov("models", config=config).stdout
    firmware = Path(settings.firmware.root)
    for name, label, token, lines in (
        ("polycom_ip330", "Polycom SoundPoint IP 330", "SPIP_330", 2),
        ("polycom_ip331", "Polycom SoundPoint IP 331", "SPIP_331", 2),
        ("polycom_ip4000", "Polycom SoundStation IP 4000", "SSIP_4000", 1),
    ):
        block = out.split(f"{name}: ", 1)[1].split("\n\n")[0]
        assert block.startswith(f"{label} (Polycom)\n")
        assert f"  user-agent tokens: {token}\n" in block
        assert f"  lines: {lines}\n" in block
        assert f"  firmware: {firmware / name}\n" in block
        assert "    sip.ld: missing" in block
    assert "BROKEN" not in out

    # A firmware image put in place shows as present.
    (firmware / "polycom_ip330" / "sip.ld").write_bytes(b"image")
    out = autoprov("models", config=config).stdout
    assert out.split("polycom_ip331: ")[0].count("    sip.ld: present") == 1


# --- configuration and database errors ------------------------------------------------------------------


def test_missing_config_file_is_one_line(tmp_path):
    missing = tmp_path / "nowhere.toml"
    assert refused("models", config=missing) == f"configuration file {missing} does not exist"
    assert refused("--config", str(missing), "phone", "list", config=None) == (
        f"configuration file {missing} does not exist"
    )


def test_unknown_setting_is_one_line(tmp_path, settings):
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    config.write_text(config.read_text().replace("[sip]\n", "[sip]\nservre = 'typo.example.test'\n"))
    assert refused("init", config=config) == "sip.servre: unknown setting"
    config.write_text("[htttp]\nport = 80\n")
    assert refused("phone", "list", config=config) == "htttp: unknown setting"


def unreachable(url: str, tmp_path: Path) -> str:
    """A database URL of the same backend that cannot be opened."""
    if url.startswith("sqlite:"):
        (tmp_path / "a-file").write_text("not a directory")
        return f"sqlite:///{tmp_path}/a-file/autoprov.db"
    return url.rsplit("/", 1)[0] + "/autoprov_test_no_such_database"


def test_database_that_cannot_be_opened_is_one_line(tmp_path, settings):
    settings.database.url = unreachable(settings.database.url, tmp_path)
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    init = refused("init", config=config)
    assert "autoprov-test" not in init  # no password in messages
    for args in (("phone", "list"), ("extension", "add", "1001"), ("models",)):
        message = refused(*args, config=config)
        assert message.startswith("database unavailable: "), message
    if settings.database.url.startswith("sqlite:"):
        assert init.endswith("a-file: File exists") and "cannot create" in init
    else:
        assert 'database "autoprov_test_no_such_database" does not exist' in init


def test_database_without_the_schema_says_run_init(tmp_path, settings):
    config = write_config(tmp_path / "autoprov.toml", settings, free_port())
    for args in (("phone", "list"), ("extension", "add", "1001"), ("sightings",)):
        assert refused(*args, config=config) == "the database has no autoprov tables yet: run `autoprov init`"
    autoprov("init", config=config)
    assert autoprov("phone", "list", config=config).stdout == ""


def test_values_a_phone_cannot_carry_are_refused(config):
    """A secret the XML would have to drop, bytes that are not UTF-8, Asterisk's box@context as a mailbox."""
    assert "printable" in refused("extension", "add", "4002", "--secret", "pw\x16x", config=config)
    assert refused("extension", "add", "4003", "--first-name", b"\xff", config=config) == (
        "extension 4003: the first name is not valid UTF-8"
    )
    message = refused("extension", "add", "4004", "--mailbox", "4004@default", config=config)
    assert "give the number the phone subscribes to (4004)" in message
    autoprov("extension", "add", "4005", "--mailbox", "4005@pbx.example.test", config=config)
    assert [line.split("\t")[0] for line in autoprov("extension", "list", config=config).stdout.splitlines()] == [
        "4005"
    ]


# --- what the server saw --------------------------------------------------------------------------------


def test_phone_show_reports_a_model_mismatch(two_extensions, client):
    config = two_extensions
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=config)
    assert "problem" not in autoprov("phone", "list", config=config).stdout

    # The phone on the desk is an IP 331, though the database says IP 330.
    r = client.get(f"/prov/polycom_ip330/{MAC}-phone.cfg", headers=headers("polycom_ip331"))
    assert r.status_code == 200

    show = autoprov("phone", "show", MAC, config=config).stdout
    assert f"(1x): {user_agent('polycom_ip331')}\n" in show
    problem = [line for line in show.splitlines() if line.startswith("  PROBLEM: ")]
    assert len(problem) == 1, show
    assert "the database says polycom_ip330 but the phone's User-Agent says polycom_ip331" in problem[0]
    assert phone_list(config) == [f"{MAC}\tpolycom_ip330\t1001  [problem: see phone show]"]


# --- update ---------------------------------------------------------------------------------------------


def test_phone_update_changes_model_lines_and_zone_and_the_phone_sees_it(two_extensions, site, client):
    config = two_extensions
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=config)
    out = autoprov("phone", "update", MAC.upper(), "--model", "polycom_ip331", "--line", "1002", "--line", "1001",
                   "--time-zone", "Europe/Paris", config=config).stdout
    assert out.splitlines()[:2] == [f"updated phone {MAC} (polycom_ip331)", f"config changed for 1 phone(s): {MAC}"]
    r = client.get(f"/prov/polycom_ip331/{MAC}-phone.cfg", headers=headers("polycom_ip331"))
    root = ET.fromstring(r.data)
    assert [reg.get(f"reg.{i}.address") for i, reg in enumerate(root.findall("reg"), 1)] == ["1002", "1001"]
    assert root.find("tcpIpApp").get("tcpIpApp.sntp.gmtOffset") == "3600"
    autoprov("phone", "update", MAC, "--time-zone", "", "--notes", "desk 4", config=config)
    shown = autoprov("phone", "show", MAC, config=config).stdout
    assert "time zone: UTC (site)" in shown and "notes: desk 4" in shown
    autoprov("phone", "update", MAC, "--no-lines", config=config)
    assert phone_list(config) == [f"{MAC}\tpolycom_ip331\t-"]


def test_phone_update_refusals_change_nothing(two_extensions):
    config = two_extensions
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", "--line", "1002", config=config)
    before = phone_list(config)
    assert refused("phone", "update", MAC, "--model", "polycom_ip4000", config=config) == (
        "polycom_ip4000 has 1 line(s); 2 given"
    )
    assert refused("phone", "update", MAC, "--line", "1001", "--line", "9999", config=config) == (
        "unknown extension(s): 9999"
    )
    assert "unknown time zone" in refused("phone", "update", MAC, "--time-zone", "Mars/Base", config=config)
    assert refused("phone", "update", "0004f2000000", "--notes", "x", config=config) == "no phone 0004f2000000"
    assert phone_list(config) == before
    usage = autoprov("phone", "update", MAC, config=config, check=False)
    assert usage.returncode == 2 and "nothing to change" in usage.stderr


def test_extension_update(two_extensions, site, client):
    config = two_extensions
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=config)
    autoprov("extension", "update", "1001", "--first-name", "Augusta", "--secret", "new-pw", "--server",
             "pbx9.example.test", "--no-directory", config=config)
    reg = ET.fromstring(client.get(f"/prov/polycom_ip330/{MAC}-phone.cfg", headers=headers("polycom_ip330")).data)
    line = reg.find("reg")
    assert line.get("reg.1.displayName") == "Augusta Lovelace"
    assert line.get("reg.1.auth.password") == "new-pw"
    assert line.get("reg.1.server.1.address") == "pbx9.example.test"
    listed = autoprov("extension", "list", config=config).stdout
    assert "[not in directory]" in listed and "new-pw" not in listed
    autoprov("extension", "update", "1001", "--server", "", config=config)
    line = ET.fromstring(client.get(f"/prov/polycom_ip330/{MAC}-phone.cfg", headers=headers("polycom_ip330")).data)
    assert line.find("reg").get("reg.1.server.1.address") == "pbx.example.test"  # the site's again
    assert "one line" in refused("extension", "update", "1001", "--secret", "a\nb", config=config)
    assert refused("extension", "update", "7777", "--first-name", "x", config=config) == "no extension 7777"
