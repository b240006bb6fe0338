"""The configuration file, its environment overrides, and the errors a mistyped setting gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoprov.config import ConfigError, Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "autoprov.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_embedded_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.database.url == "sqlite:///var/autoprov.db"
    assert s.source in ("embedded defaults", "/etc/autoprov/autoprov.toml")


def test_example_file_is_valid_and_documents_every_section():
    s = load_settings(REPO / "docs" / "autoprov.example.toml", environ={})
    defaults = Settings()
    for section in ("database", "http", "sip", "time", "polling", "firmware", "uploads", "agi", "dhcp", "asterisk",
                    "audit", "throttle"):
        assert getattr(s, section) == getattr(defaults, section), section


def test_file_values_and_environment_overrides(tmp_path):
    path = write(
        tmp_path,
        """
[database]
url = "sqlite:///from-file.db"
[http]
public_url = "https://prov.example.test/"
secrets_allowed_from = ["10.0.0.0/8"]
[time]
time_zone = "Europe/Paris"
[site_params]
"up.backlight.idleIntensity" = "1"
""",
    )
    s = load_settings(path, environ={"AUTOPROV_DATABASE_URL": "postgresql://db.example.test/autoprov"})
    assert s.database.url == "postgresql://db.example.test/autoprov"
    assert s.public_url == "https://prov.example.test"
    assert s.time.time_zone == "Europe/Paris"
    assert s.site_params == {"up.backlight.idleIntensity": "1"}
    assert s.may_fetch_secrets("10.9.9.9") and not s.may_fetch_secrets("192.0.2.1")
    assert load_settings(environ={"AUTOPROV_CONFIG": str(path)}).source == str(path)


@pytest.mark.parametrize(
    "text,message",
    [
        ("[http]\nprot = 1", "http.prot: unknown setting"),
        ("[http]\nport = true", "http.port: expected int"),
        ("[http]\nport = '80'", "http.port: expected int"),
        ("[http]\npublic_url = 'prov.example.test'", "http.public_url"),
        ("[http]\nsecrets_allowed_from = ['10.0.0.300/8']", "secrets_allowed_from"),
        ("[time]\ntime_zone = 'Mars/Olympus'", "time.time_zone: unknown time zone"),
        ("[polling]\ntime = '25:00'", "polling.time: must be HH:MM"),
        ("[polling]\nmode = 'sometimes'", "polling.mode"),
        ("[sip]\ntransport = 'UDP'", "sip.transport"),
        ('[site_params]\n"bad name\\"" = "1"', "site_params"),
        ("[database\nurl = 1", "autoprov.toml"),
        ("[database]\nurl = 'mysql://db/autoprov'", "database.url: use sqlite:///path or postgresql://"),
        ('[sip]\nserver = "a b\\"<"', "sip.server: "),
        ("[sip]\nport = 0", "sip.port: must be 1 or more and at most 65535"),
        ("[http]\nport = 70000", "http.port: must be 1 or more and at most 65535"),
        ("[polling]\nperiod = -1", "polling.period: must be 1 or more"),
        ("[http]\nretry_after = -5", "http.retry_after: must be 1 or more"),
        ('[time]\nsntp_server = "ntp\\nevil"', "time.sntp_server: "),
    ],
)
def test_mistakes_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_settings(write(tmp_path, text), environ={})


@pytest.mark.parametrize("url", ["sqlite:////srv/a.db", "postgresql://u:p@db/autoprov", "postgresql+pool://db/ap"])
def test_supported_database_urls(tmp_path, url):
    assert load_settings(write(tmp_path, f"[database]\nurl = '{url}'"), environ={}).database.url == url


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path, monkeypatch):
    """The CLI (run anywhere) and the service (working directory / under systemd) use the same database."""
    etc = tmp_path / "etc"
    etc.mkdir()
    path = write(etc, "[database]\nurl = 'sqlite:///var/a.db?timeout=5'\n[firmware]\nroot = 'fw'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(path, environ={})
    assert s.database.url == f"sqlite:///{etc}/var/a.db?timeout=5"
    assert s.firmware.root == str(etc / "fw")
    assert s.source == str(path)
    # Given as a relative path, the file is found from the working directory, its paths from its directory.
    monkeypatch.chdir(tmp_path)
    assert load_settings("etc/autoprov.toml", environ={}).database.url == f"sqlite:///{etc}/var/a.db?timeout=5"
    # What the file leaves out is the embedded default (relative to the working directory), as are the
    # environment overrides.
    s = load_settings(write(etc, "[http]\nport = 8081\n"), environ={"AUTOPROV_FIRMWARE_ROOT": "fw2"})
    assert s.database.url == "sqlite:///var/autoprov.db" and s.firmware.root == "fw2"
    s = load_settings(write(etc, "[database]\nurl = 'sqlite:////abs/a.db'\n"), environ={})
    assert s.database.url == "sqlite:////abs/a.db"


def test_a_dotted_site_param_name_gets_a_hint_to_quote_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[site_params]\nup.backlight.idleIntensity = '1'\n"), environ={})
    assert str(info.value) == (
        'site_params: up.backlight.idleIntensity was read as nested tables: quote the name: '
        '"up.backlight.idleIntensity" = ...'
    )


def test_masked_settings_hide_passwords_and_secret_like_settings(tmp_path):
    from autoprov.config import masked_settings

    s = load_settings(write(tmp_path, """
[database]
url = "postgresql://autoprov:db-pw@db.example.test/autoprov"
[http]
public_url = "http://prov:url-pw@prov.example.test/"
[site_params]
"reg.1.auth.password" = "param-pw"
"up.backlight.idleIntensity" = "1"
[plugins.vendor]
api_token = "tok"
"""), environ={})
    shown = masked_settings(s)
    assert shown["database"]["url"] == "postgresql://autoprov:***@db.example.test/autoprov"
    assert shown["http"]["public_url"] == "http://prov:***@prov.example.test/"
    assert shown["site_params"] == {"reg.1.auth.password": "***", "up.backlight.idleIntensity": "1"}
    assert shown["plugins"] == {"vendor": {"api_token": "***"}}
    assert not [secret for secret in ("db-pw", "url-pw", "param-pw", "'tok'") if secret in repr(shown)]


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
