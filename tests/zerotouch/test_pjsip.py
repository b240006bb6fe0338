"""``autoprov asterisk pjsip`` parsed back with pjsip.conf's rules and compared with the database; values that
would break the line-oriented file are refused with the extension (or setting) named; ``extension show``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config


@pytest.fixture
def config(tmp_path: Path, settings) -> Path:
    path = write_config(tmp_path / "autoprov.toml", settings, free_port())
    autoprov("init", config=path)
    return path


def with_asterisk(config: Path, section: str) -> Path:
    config.write_text(config.read_text(encoding="utf-8") + "[asterisk]\n" + section, encoding="utf-8")
    return config


def parse_pjsip(text: str) -> list[tuple[str, tuple[str, ...], dict[str, str]]]:
    """pjsip.conf as Asterisk's config reader takes it: ';' starts a comment (unless escaped as '\\;'), spaces
    around names and values are trimmed, '[name](template,...)' opens a section, 'key=value' or 'key => value'
    sets an option. Anything else is an error here, as it would be a warning and a lost line in Asterisk."""
    found: list[tuple[str, tuple[str, ...], dict[str, str]]] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = re.sub(r"(?<!\\);.*", "", raw).replace("\\;", ";").strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            templates = tuple(t.strip() for t in header.group(2).split(",")) if header.group(2) else ()
            found.append((header.group(1), templates, {}))
            continue
        assert "=" in line and found, f"line {number} is neither a section nor an option: {raw!r}"
        key, _, value = line.partition("=")
        value = value[1:] if value.startswith(">") else value
        assert key.strip() not in found[-1][2], f"line {number}: {key.strip()} set twice in one section"
        found[-1][2][key.strip()] = value.strip()
    return found


SECRET = "p\"a's=s#w\\o<r>d&\u00e9 x"


def test_every_extension_comes_back_from_the_file(config):
    autoprov("extension", "add", "1001", "--secret", SECRET, "--first-name", "Ad\u00e9la\u00efde", "--last-name",
             "O'Brien", "--mailbox", "1001@pbx.example.com", config=config)
    autoprov("extension", "add", "2002", "--secret", "plain", config=config)
    with_asterisk(config, 'context = "from-phones"\nallow = ["g722", "ulaw"]\ntransport = "transport-udp"\n'
                          'endpoint_template = "phone-defaults"\naor_template = "one-phone"\nmax_contacts = 2\n'
                          'voicemail_context = "office"\n')
    parsed = parse_pjsip(autoprov("asterisk", "pjsip", config=config).stdout)
    assert parsed == [
        ("1001", ("phone-defaults",), {
            "type": "endpoint", "context": "from-phones", "disallow": "all", "allow": "g722,ulaw",
            "transport": "transport-udp", "auth": "1001", "aors": "1001",
            "callerid": "\"Ad\u00e9la\u00efde O'Brien\" <1001>", "mailboxes": "1001@office"}),
        ("1001", (), {"type": "auth", "auth_type": "userpass", "username": "1001", "password": SECRET}),
        ("1001", ("one-phone",), {"type": "aor", "max_contacts": "2"}),
        ("2002", ("phone-defaults",), {
            "type": "endpoint", "context": "from-phones", "disallow": "all", "allow": "g722,ulaw",
            "transport": "transport-udp", "auth": "2002", "aors": "2002", "callerid": "<2002>"}),
        ("2002", (), {"type": "auth", "auth_type": "userpass", "username": "2002", "password": "plain"}),
        ("2002", ("one-phone",), {"type": "aor", "max_contacts": "2"}),
    ]


def test_defaults_and_a_changed_secret_follow_the_database(config):
    autoprov("extension", "add", "1001", "--secret", "first", config=config)
    auth = [s for s in parse_pjsip(autoprov("asterisk", "pjsip", config=config).stdout) if s[2]["type"] == "auth"]
    assert auth[0][2]["password"] == "first"
    autoprov("extension", "update", "1001", "--secret", "second", config=config)
    sections = parse_pjsip(autoprov("asterisk", "pjsip", config=config).stdout)
    endpoint = sections[0][2]
    assert (endpoint["context"], endpoint["allow"], "transport" in endpoint) == ("default", "ulaw,alaw", False)
    assert sections[1][2]["password"] == "second"


@pytest.mark.parametrize("option,value,message", [
    ("--secret", "pass;word", "extension 1001: the secret: ';'"),
    ("--secret", "[evil]", "extension 1001: the secret: '[', ']'"),
    ("--secret", ">secret", "extension 1001: the secret: a leading '>'"),
    ("--secret", " padded", "extension 1001: the secret: Asterisk would drop its leading"),
    ("--first-name", "Ada\n[1001]\ntype=auth", "extension 1001: first/last name: '\\n', '['"),
    ("--first-name", 'Ada "The" Admin', "extension 1001: first/last name"),
    ("--last-name", "Lovelace;x", "extension 1001: first/last name: ';'"),
])
def test_a_value_that_would_break_the_file_is_refused(config, option, value, message):
    autoprov("extension", "add", "1001", option, value, config=config)
    autoprov("extension", "add", "1000", "--secret", "fine", config=config)
    result = autoprov("asterisk", "pjsip", config=config, check=False)
    assert result.returncode == 1
    assert result.stdout == ""  # not a partial file
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: {message}") and line.endswith("nothing was written"), line


@pytest.mark.parametrize("setting,message", [
    ('context = "from;phones"', "asterisk.context: 'from;phones' is not a pjsip.conf name"),
    ('allow = ["ulaw\\n[evil]"]', "asterisk.allow: "),
    ("allow = []", "asterisk.allow: name at least one codec"),
    ('transport = "udp]"', "asterisk.transport: "),
    ('endpoint_template = "a b"', "asterisk.endpoint_template: "),
])
def test_a_setting_that_would_break_the_file_is_refused(config, setting, message):
    autoprov("extension", "add", "1001", config=config)
    result = autoprov("asterisk", "pjsip", config=with_asterisk(config, setting + "\n"), check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {message}"), result.stderr


def test_extension_show_hides_the_secret_unless_asked(config):
    autoprov("extension", "add", "1001", "--secret", "s3cret-1001", "--first-name", "Ada", config=config)
    autoprov("extension", "add", "1002", "--secret", "other", config=config)
    autoprov("phone", "add", "0004f2aabbcc", "--model", "polycom_ip330", "--line", "1002", "--line", "1001",
             config=config)
    autoprov("phone", "add", "0004f2aabbcd", "--model", "polycom_ip330", "--line", "1001", config=config)
    shown = autoprov("extension", "show", "1001", config=config).stdout
    assert "s3cret-1001" not in shown and "secret: (hidden; --secret shows it)" in shown
    assert "extension 1001: Ada" in shown
    assert re.findall(r"^phone (\S+) \((\S+)\) line (\d)$", shown, re.M) == [
        ("0004f2aabbcc", "polycom_ip330", "2"), ("0004f2aabbcd", "polycom_ip330", "1")]
    assert "secret: s3cret-1001\n" in autoprov("extension", "show", "1001", "--secret", config=config).stdout
    autoprov("extension", "add", "1003", config=config)
    assert autoprov("extension", "show", "1003", config=config).stdout.endswith("secret: (hidden; --secret shows it)\n"
                                                                                "on no phone\n")
    missing = autoprov("extension", "show", "9999", config=config, check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == "Error: no extension 9999"
