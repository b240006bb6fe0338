"""A database that is down gets phones a 503 with Retry-After, never a 200 with a partial config."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from werkzeug.test import Client

from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.site import Site
from autoprov.web import create_app
from tests.conftest import LoopbackClient
from tests.phones import headers

IP330 = headers("polycom_ip330")


def down_client(tmp_path, url: str) -> Client:
    s = Settings()
    s.database.url = url
    s.firmware.root = str(tmp_path / "fw")
    s.http.retry_after = 17
    return LoopbackClient(create_app(Site(s, build_plugin_manager())))


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-dir/autoprov.db",
        "postgresql://postgres:wrong@127.0.0.1:1/autoprov",  # nothing listens on port 1
    ],
    ids=["sqlite-missing-directory", "postgresql-refused"],
)
def test_unreachable_database_is_503_with_retry_after(tmp_path, url):
    client = down_client(tmp_path, url)
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "17"
    assert b"database unavailable" in r.data
    # <mac>.cfg stays the normal 404 (its sighting is lost), so the phone goes on to 000000000000.cfg.
    for path in ("/prov/polycom_ip330/0004f2aabbcc.cfg", "/0004f2aabbcc.cfg"):
        assert client.get(path, headers=IP330).status_code == 404


def test_a_file_that_is_not_a_database_is_503(tmp_path):
    """A SQLite path holding something else (a truncated copy, the wrong file) is an outage, not a bug."""
    path = tmp_path / "autoprov.db"
    path.write_bytes(b"this is not a SQLite database, it is text " * 200)
    client = down_client(tmp_path, f"sqlite:///{path}")
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    assert (r.status_code, r.headers.get("Retry-After")) == (503, "17")
    assert client.get("/000000000000.cfg", headers=IP330).status_code == 200  # needs no database


def test_uninitialised_schema_is_503(tmp_path, database_url):
    """`autoprov init` never ran: phones are told to come back, the initial config still works."""
    client = down_client(tmp_path, database_url)
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=IP330)
    assert (r.status_code, r.headers.get("Retry-After")) == (503, "17")
    assert client.get("/000000000000.cfg", headers=IP330).status_code == 200


def test_files_that_do_not_need_the_database_are_still_served(tmp_path):
    """A phone can still be pointed at its path and fetch firmware while the database is down."""
    client = down_client(tmp_path, "sqlite:////nonexistent-dir/autoprov.db")
    assert client.get("/000000000000.cfg", headers=IP330).status_code == 200
    assert client.get("/prov/polycom_ip330/000000000000.cfg", headers=IP330).status_code == 200


@contextmanager
def database_unavailable(site, tmp_path) -> Iterator[None]:
    """The site's database cannot be reached (SQLite: its file is a directory; PostgreSQL: connections are
    refused) for the duration of the block; then it is back, as it was."""
    if site.settings.database.url.startswith("sqlite"):
        db_dir = tmp_path
        moved = tmp_path.parent / (tmp_path.name + "-moved")
        shutil.copytree(db_dir, moved)
        for name in ("autoprov.db", "autoprov.db-wal", "autoprov.db-shm"):
            (db_dir / name).unlink(missing_ok=True)
        (db_dir / "autoprov.db").mkdir()  # now the path cannot be opened as a database at all
        try:
            yield
        finally:
            (db_dir / "autoprov.db").rmdir()
            for name in ("autoprov.db", "autoprov.db-wal", "autoprov.db-shm"):
                if (moved / name).exists():
                    shutil.copy(moved / name, db_dir / name)
        return
    import psycopg2

    from tests.conftest import PG_URL

    name = site.settings.database.url.rsplit("/", 1)[1]
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        conn.close()


def test_database_lost_and_back_under_a_running_server(tmp_path, site, server):
    """A real server: the database disappears (503 every time), then returns (200 again)."""
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-1001", "Ada"))
        admin.add_phone(site, "0004f2aabbcc", "polycom_ip330", ["1001"])
    url = f"{server}/prov/polycom_ip330/0004f2aabbcc-phone.cfg"
    ok = requests.get(url, headers=IP330, timeout=10)
    assert ok.status_code == 200
    with database_unavailable(site, tmp_path):
        for _ in range(6):  # both workers, several threads
            r = requests.get(url, headers=IP330, timeout=10)
            assert (r.status_code, r.headers.get("Retry-After")) == (503, "30")
            assert b"pw-1001" not in r.content
    again = requests.get(url, headers=IP330, timeout=10)
    assert again.status_code == 200
    assert again.content == ok.content
