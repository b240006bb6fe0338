"""SIP passwords encrypted at rest ([secrets] key_file): what the database holds, what phones and commands get,
key rotation under a running server, and what happens when the key is missing. On SQLite and PostgreSQL."""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from autoprov.atrest import PREFIX, Keyring
from autoprov.tables import Extension
from tests.conftest import autoprov as real_process
from tests.conftest import cli as autoprov
from tests.conftest import free_port, running_server, write_config
from tests.phones import headers

MAC = "0004f2aabbcc"
PHONE_CFG = f"/prov/polycom_ip330/{MAC}-phone.cfg"
LONG = "Zoë-" + "日" * 124  # 128 characters, 376 bytes of UTF-8: the longest password, encrypted, must fit


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "secrets.key"


@pytest.fixture
def config(tmp_path: Path, settings, key_file: Path) -> tuple[Path, int]:
    """A configuration with [secrets] key_file (a relative path: relative to the file), initialised."""
    port = free_port()
    path = write_config(tmp_path / "autoprov.toml", settings, port)
    path.write_text(path.read_text() + '[secrets]\nkey_file = "keys/secrets.key"\n')
    key_file.parent.mkdir()
    autoprov("init", config=path)
    return path, port


def stored(site, user_id: str) -> str:
    """The secret column as the database holds it (raw SQL: no decryption)."""
    with site.db.connection_context():
        return site.db.execute_sql(f'SELECT secret FROM "{Extension._meta.table_name}" WHERE user_id = '
                                   f"{site.db.param}", (user_id,)).fetchone()[0]


def password_served(url: str) -> str:
    r = requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), timeout=10)
    assert r.status_code == 200, r.text
    return ET.fromstring(r.content).find("reg").get("reg.1.auth.password")


def test_encrypted_in_the_database_clear_to_the_phone_and_through_key_rotation(site, config, key_file):
    path, port = config
    created = autoprov("secrets", "keygen", config=path).stdout
    assert "created" in created and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    autoprov("extension", "add", "1001", "--secret", "pw<&>'1001", config=path)
    autoprov("extension", "add", "1002", "--secret", LONG, config=path)
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", "--line", "1002", config=path)
    for user_id in ("1001", "1002"):
        assert stored(site, user_id).startswith(PREFIX) and "1001" not in stored(site, user_id)[len(PREFIX):]
    first = stored(site, "1001")

    with running_server(path, port) as url:
        assert password_served(url) == "pw<&>'1001"
        phone = ET.fromstring(requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), timeout=10).content)
        assert phone.findall("reg")[1].get("reg.2.auth.password") == LONG
        # Rotation while the server runs: a new first key, every row re-encrypted with it. The server reads the
        # key file again when a token does not decrypt, so it needs no restart.
        assert "2 keys" in autoprov("secrets", "keygen", "--add", config=path).stdout
        assert "2 SIP password(s) encrypted" in autoprov("secrets", "rotate", config=path).stdout
        assert stored(site, "1001") != first
        assert password_served(url) == "pw<&>'1001"
        assert "dropped 1 old key" in autoprov("secrets", "rotate", "--drop-old", config=path).stdout
        assert password_served(url) == "pw<&>'1001"
    keys = [line for line in key_file.read_text().splitlines() if not line.startswith("#")]
    assert len(keys) == 1 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The old token no longer decrypts with what is left: the old key is really gone.
    only_new = Keyring(str(key_file))
    with pytest.raises(Exception, match="no key"):
        only_new.unseal(first)
    # Commands see the passwords in clear, as before.
    assert "secret: pw<&>'1001" in autoprov("extension", "show", "1001", "--secret", config=path).stdout
    assert "password=pw<&>'1001" in autoprov("asterisk", "pjsip", config=path).stdout
    assert "2 of 2 SIP password(s) stored encrypted" in autoprov("secrets", "status", config=path).stdout


def test_rows_from_before_are_served_then_encrypted_by_rotate_and_decrypt_turns_it_off(site, config, key_file):
    path, port = config
    key_file.parent.rmdir()  # encryption configured, no key file yet: refusals, one line each
    result = autoprov("extension", "add", "1001", "--secret", "plain-1001", config=path, check=False)
    assert result.returncode == 1 and "does not exist (create it: autoprov secrets keygen)" in result.stderr
    key_file.parent.mkdir()
    path.write_text(path.read_text().replace('key_file = "keys/secrets.key"', 'key_file = ""'))
    autoprov("extension", "add", "1001", "--secret", "plain-1001", config=path)
    assert stored(site, "1001") == "plain-1001"
    path.write_text(path.read_text().replace('key_file = ""', 'key_file = "keys/secrets.key"'))
    autoprov("secrets", "keygen", config=path)
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=path)
    assert "0 of 1 SIP password(s) stored encrypted" in autoprov("secrets", "status", config=path).stdout
    with running_server(path, port) as url:
        assert password_served(url) == "plain-1001"  # a row from before encryption still works
        autoprov("secrets", "rotate", config=path)
        assert stored(site, "1001").startswith(PREFIX)
        assert password_served(url) == "plain-1001"
    autoprov("secrets", "rotate", "--decrypt", config=path)
    assert stored(site, "1001") == "plain-1001"


def test_a_missing_key_is_503_for_phones_and_one_line_for_commands(tmp_path, site, config, key_file):
    path, port = config
    autoprov("secrets", "keygen", config=path)
    autoprov("extension", "add", "1001", "--secret", "pw-1001", config=path)
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=path)
    key_file.rename(tmp_path / "moved.key")
    serve = real_process("serve", config=path, check=False)  # refuses to start, in one line
    assert serve.returncode == 1 and "does not exist" in serve.stderr.splitlines()[-1]
    # Encryption turned off while rows are encrypted: phones get 503 (they retry), never 500 or a bad config.
    path.write_text(path.read_text().replace('key_file = "keys/secrets.key"', 'key_file = ""'))
    with running_server(path, port) as url:
        r = requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), timeout=10)
        assert r.status_code == 503 and r.headers["Retry-After"] and "pw-1001" not in r.text
        assert requests.get(url + "/000000000000.cfg", headers=headers("polycom_ip330"), timeout=10).ok
    result = autoprov("extension", "show", "1001", "--secret", config=path, check=False)
    assert result.returncode == 1 and "encrypted, but [secrets] key_file is not set" in result.stderr


def test_a_key_file_open_to_others_is_refused(site, config, key_file):
    path, _ = config
    autoprov("secrets", "keygen", config=path)
    assert "exists" in autoprov("secrets", "keygen", config=path, check=False).stderr
    key_file.chmod(0o644)
    result = autoprov("extension", "add", "1001", "--secret", "pw", config=path, check=False)
    assert result.returncode == 1 and "open to other users (mode 644): chmod 600 it" in result.stderr
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)
    result = autoprov("extension", "add", "1001", "--secret", "pw", config=path, check=False)
    assert result.returncode == 1 and "not a Fernet key" in result.stderr


def test_realtime_views_and_encryption_exclude_each_other(site, config):
    path, _ = config
    autoprov("secrets", "keygen", config=path)
    result = autoprov("asterisk", "realtime-views", config=path, check=False)
    assert result.returncode == 1 and "realtime views and encryption exclude each other" in result.stderr


def test_a_password_that_looks_encrypted_is_refused(config):
    path, _ = config
    result = autoprov("extension", "add", "1001", "--secret", PREFIX + "abc", config=path, check=False)
    assert result.returncode == 1 and "may not begin with 'fernet:'" in result.stderr


def test_a_phone_config_is_decrypted_once_per_render_not_per_request(settings, tmp_path, key_file):
    """The render cache holds the rendered bytes: a phone polling again costs no decryption."""
    from autoprov.atrest import create_key_file
    from autoprov.plugins import build_plugin_manager
    from autoprov.provisioning import admin
    from autoprov.provisioning.admin import ExtensionData
    from autoprov.site import Site
    from tests.conftest import PhoneClient

    key_file.parent.mkdir()
    create_key_file(key_file)
    settings.secrets.key_file = str(key_file)
    site = Site(settings, build_plugin_manager())
    site.init_database()
    calls = []
    real = site.keyring.unseal
    site.keyring.unseal = lambda value: calls.append(value) or real(value)  # counts, still decrypts
    try:
        with site.activated(), site.db.connection_context():
            admin.add_extension(ExtensionData("1001", "pw-1001"))
            admin.add_phone(site, MAC, "polycom_ip330", ["1001"])
        client = PhoneClient(site)
        calls.clear()
        for _ in range(5):
            r = client.get(PHONE_CFG, headers=headers("polycom_ip330"))
            assert ET.fromstring(r.data).find("reg").get("reg.1.auth.password") == "pw-1001"
        assert len(calls) == 1
    finally:
        site.close()


def test_init_widens_an_old_postgresql_column_unless_realtime_views_read_it(site, config):
    """A database made before encryption existed has extension.secret varchar(128), too narrow for an encrypted
    password; init widens it. Realtime views reading the column pin its type (and could not decrypt anyway):
    then it is left as it is, and `secrets rotate` refuses to start."""
    if not site.settings.database.url.startswith("postgresql"):
        pytest.skip("SQLite does not check column lengths")
    path, _ = config
    table = Extension._meta.table_name

    def width() -> int:
        with site.db.connection_context():
            return site.db.execute_sql("SELECT character_maximum_length FROM information_schema.columns WHERE "
                                       "table_name = %s AND column_name = 'secret'", (table,)).fetchone()[0]

    def as_before_encryption(view: bool) -> None:
        with site.db.connection_context():
            site.db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN secret TYPE varchar(128)')
            site.db.execute_sql("DELETE FROM schema_version WHERE component = 'secrets'")
            if view:
                site.db.execute_sql(f'CREATE VIEW ps_auths AS SELECT user_id AS id, secret AS password FROM "{table}"')

    assert width() == 1024
    as_before_encryption(view=False)
    assert "applied secrets 1" in autoprov("init", config=path).stdout
    assert width() == 1024
    as_before_encryption(view=True)
    autoprov("init", config=path)
    assert width() == 128
    autoprov("secrets", "keygen", config=path)
    result = autoprov("secrets", "rotate", config=path, check=False)
    assert result.returncode == 1 and "ps_auths" in result.stderr and "drop the views first" in result.stderr


def test_provisioning_logins_are_encrypted_too(site, config, key_file):
    """[access] credentials = "phone": the login handed to the phone is stored sealed, checked in clear, and
    `secrets rotate` re-encrypts (or, with --decrypt, clears) it with the SIP passwords."""
    path, port = config
    path.write_text(path.read_text() + '[access]\ncredentials = "phone"\n')
    autoprov("secrets", "keygen", config=path)
    autoprov("extension", "add", "1001", "--secret", "pw-1001", config=path)
    autoprov("phone", "add", MAC, "--model", "polycom_ip330", "--line", "1001", config=path)
    table = "access_credential"

    def login_stored() -> str:
        with site.db.connection_context():
            return site.db.execute_sql(f'SELECT password FROM "{table}" WHERE owner = {site.db.param}',
                                       (MAC,)).fetchone()[0]

    with running_server(path, port) as url:
        r = requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), timeout=10)
        assert r.status_code == 200, r.text
        handed = {k: v for e in ET.fromstring(r.content).iter() for k, v in e.attrib.items()}
        password = handed["device.prov.password"]
        assert handed["device.prov.user"] == MAC and len(password) >= 20
        sealed = login_stored()
        assert sealed.startswith(PREFIX) and password not in sealed
        r = requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), auth=(MAC, password), timeout=10)
        assert r.status_code == 200, r.text
        assert requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), auth=(MAC, "wrong"),
                            timeout=10).status_code == 401
        assert "provisioning logins" in autoprov("secrets", "rotate", config=path).stdout
        assert login_stored() != sealed and login_stored().startswith(PREFIX)
        r = requests.get(url + PHONE_CFG, headers=headers("polycom_ip330"), auth=(MAC, password), timeout=10)
        assert r.status_code == 200, r.text
    autoprov("secrets", "rotate", "--decrypt", config=path)
    assert login_stored() == password
