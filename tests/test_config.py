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
    for section in ("database", "http", "sip", "time", "polling", "firmware", "uploads", "agi"):
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


@pytest.mark.parametrize("url", ["sqlite:///var/a.db", "postgresql://u:p@db/autoprov", "postgresql+pool://db/ap"])
def test_supported_database_urls(tmp_path, url):
    assert load_settings(write(tmp_path, f"[database]\nurl = '{url}'"), environ={}).database.url == url


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
