"""Files holding secrets are created readable by their owner alone, whatever the umask: the SQLite database
and its -wal/-shm files (by ``autoprov init`` and by a server that finds no database), and what a command
writes with credentials in it."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import requests

from autoprov.config import Settings
from autoprov.privatefiles import create_private, create_private_if_missing, replace_private
from tests.conftest import autoprov, free_port, running_server, write_config
from tests.phones import headers


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """The umask a careless shell has (022: files 0644, readable by every local user)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def sqlite_settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.database.url = f"sqlite:///{tmp_path}/state/autoprov.db"
    s.firmware.root = str(tmp_path / "firmware")
    s.sip.server = "pbx.example.test"
    return s


def test_init_creates_the_database_0600(tmp_path, loose_umask):
    config = write_config(tmp_path / "autoprov.toml", sqlite_settings(tmp_path), free_port())
    autoprov("init", config=config)
    db = tmp_path / "state" / "autoprov.db"
    assert mode(db) == 0o600
    assert mode(config) == 0o644  # the test wrote it; nothing of autoprov's widened or narrowed it


def test_init_closes_an_existing_database_to_other_users(tmp_path, loose_umask):
    """A database made before autoprov created it 0600 (0644 by SQLite's default): init takes the other
    users' read permission off, keeps the group's, and says so."""
    config = write_config(tmp_path / "autoprov.toml", sqlite_settings(tmp_path), free_port())
    autoprov("init", config=config)
    db = tmp_path / "state" / "autoprov.db"
    db.chmod(0o644)
    result = autoprov("init", config=config)
    assert mode(db) == 0o640
    assert "closed to other users" in result.stdout and "644 -> 640" in result.stdout
    assert "closed to other users" not in autoprov("init", config=config).stdout


def test_a_server_that_creates_the_database_makes_it_and_its_wal_and_shm_0600(tmp_path, loose_umask):
    settings = sqlite_settings(tmp_path)
    (tmp_path / "state").mkdir()
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    db = tmp_path / "state" / "autoprov.db"
    assert not db.exists()
    with running_server(config, port) as url:
        # No schema yet: the phone gets 503, and the request thread has opened (created) the database.
        phone_cfg = f"{url}/prov/polycom_ip330/0004f2aabbcc-phone.cfg"
        assert requests.get(phone_cfg, headers=headers("polycom_ip330"), timeout=10).status_code == 503
        assert mode(db) == 0o600
        autoprov("init", config=config)
        # The server's threads write sightings and keep their connections open: -wal and -shm stay.
        files = [db, db.with_name("autoprov.db-wal"), db.with_name("autoprov.db-shm")]
        deadline = time.monotonic() + 15
        while not all(f.exists() for f in files):
            assert requests.get(phone_cfg, headers=headers("polycom_ip330"), timeout=10).status_code == 404
            assert time.monotonic() < deadline, [f.name for f in db.parent.iterdir()]
            time.sleep(0.1)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_private_files_are_0600_never_written_through_a_link(tmp_path, loose_umask):
    create_private(tmp_path / "key", b"k")
    assert mode(tmp_path / "key") == 0o600 and (tmp_path / "key").read_bytes() == b"k"
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "key", b"other")
    (tmp_path / "elsewhere").write_bytes(b"untouched")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "link", b"x")
    assert create_private_if_missing(tmp_path / "link") is False
    assert (tmp_path / "elsewhere").read_bytes() == b"untouched"
    assert create_private_if_missing(tmp_path / "missing-dir" / "x") is False
    (tmp_path / "open").write_bytes(b"old")
    (tmp_path / "open").chmod(0o644)
    replace_private(tmp_path / "open", b"new")
    assert mode(tmp_path / "open") == 0o600 and (tmp_path / "open").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "key", "link", "open"]
