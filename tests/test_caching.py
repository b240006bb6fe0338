"""Cached renders stay correct: a change made anywhere (this process, the CLI, another server) is served
within [http] change_check_interval, a replaced database is noticed, and nothing a phone waits for writes.

No test here times anything: each waits for an outcome with a deadline.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import peewee
import pytest
import requests

from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.revision import ChangeCounter
from autoprov.tables import Sighting
from tests.conftest import LoopbackClient, autoprov, free_port, running_server, write_config
from tests.phones import headers

MODEL = "polycom_ip330"
MAC = "0004f2aabbcc"
PATH = f"/prov/{MODEL}/{MAC}-phone.cfg"
IP330 = headers(MODEL)


def password(body: bytes) -> str | None:
    return ET.fromstring(body).find("reg").get("reg.1.auth.password")


@pytest.fixture
def phone(site):
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-1", "Ada"))
        admin.add_phone(site, MAC, MODEL, ["1001"])


def test_every_write_path_moves_the_change_counter(site, phone, db):
    """Triggers, not the writers, bump the counter: the CLI, imports, uploads and raw SQL all count."""
    def revision() -> int:
        return ChangeCounter.get_by_id(1).revision

    before = revision()
    admin.update_extension("1001", site, first_name="Augusta")
    after_update = revision()
    assert after_update > before
    site.db.execute_sql("UPDATE phone SET notes = 'by hand'")  # an admin's own SQL
    assert revision() > after_update
    bumped = revision()
    Sighting.create(mac=MAC, user_agent="x")  # sightings are not what a phone is served
    assert revision() == bumped


def test_a_change_is_served_at_once_with_no_interval(site, client, phone):
    first = client.get(PATH, headers=IP330)
    assert password(first.data) == "pw-1"
    with site.db.connection_context():
        admin.update_extension("1001", site, secret="pw-2")
    assert password(client.get(PATH, headers=IP330).data) == "pw-2"
    # And an unchanged phone polling with its ETag gets 304 without a render.
    etag = client.get(PATH, headers=IP330).headers["ETag"]
    assert client.get(PATH, headers={**IP330, "If-None-Match": etag}).status_code == 304


def test_a_change_is_served_within_the_interval(site, client, phone):
    """With an interval, this process serves its cached config until it reads the counter again."""
    site.settings.http.change_check_interval = 0.3
    site.__dict__.pop("changes", None)
    site.__dict__.pop("renders", None)
    assert password(client.get(PATH, headers=IP330).data) == "pw-1"
    with site.db.connection_context():
        admin.update_extension("1001", site, secret="pw-2")
    changed_at = time.monotonic()
    seen = []
    while time.monotonic() - changed_at < 10:
        seen.append(password(client.get(PATH, headers=IP330).data))
        if seen[-1] == "pw-2":
            break
        time.sleep(0.02)
    assert seen[-1] == "pw-2", "the change was never served"
    # Never the new value and then the old one again.
    assert seen == sorted(seen, key=lambda p: p == "pw-2")


def test_a_render_from_data_older_than_the_counter_is_not_kept(site, client, phone, monkeypatch):
    """The counter is read before the data: a change committed between the two is rendered again next time."""
    import autoprov.provisioning.files as files

    real = files.load_phone
    calls = []

    def load_then_change(db, settings, mac):
        view = real(db, settings, mac)
        if not calls:
            with site.db.connection_context():
                admin.update_extension("1001", site, secret="pw-2")
        calls.append(mac)
        return view

    monkeypatch.setattr(files, "load_phone", load_then_change)
    assert password(client.get(PATH, headers=IP330).data) == "pw-1"
    assert password(client.get(PATH, headers=IP330).data) == "pw-2"


def test_two_servers_serve_a_change_made_through_the_cli_within_the_bound(tmp_path, site, phone):
    """Two `autoprov serve` processes on one database (SQLite here, PostgreSQL in its run) with a 0.5 s bound:
    a change made by the CLI, a third process, reaches both."""
    settings = site.settings
    settings.http.change_check_interval = 0.5
    urls = []
    ports = [free_port(), free_port()]
    configs = [write_config(tmp_path / f"server{i}.toml", settings, port) for i, port in enumerate(ports)]
    with running_server(configs[0], ports[0]) as one, running_server(configs[1], ports[1]) as two:
        urls = [one + PATH, two + PATH]
        for url in urls:
            assert password(requests.get(url, headers=IP330, timeout=10).content) == "pw-1"
        autoprov("extension", "update", "1001", "--secret", "pw-2", config=configs[0])
        deadline = time.monotonic() + 20
        pending = set(urls)
        while pending and time.monotonic() < deadline:
            for url in list(pending):
                if password(requests.get(url, headers=IP330, timeout=10).content) == "pw-2":
                    pending.discard(url)
            time.sleep(0.05)
        assert not pending, f"never served the change: {pending}"


def test_sightings_are_written_off_the_request_path(site, phone):
    """A request only adds to the buffer; the writer thread stores it, and what is pending at close is kept."""

    from autoprov.web import create_app

    site.settings.http.sighting_flush_interval = 30  # the writer thread will not run during this test
    site.__dict__.pop("sightings", None)
    client = LoopbackClient(create_app(site))
    for _ in range(3):
        assert client.get(PATH, headers=IP330).status_code == 200
    with site.db.connection_context():
        assert Sighting.select().where(Sighting.mac == MAC).count() == 0  # nothing written by the requests
    site.sightings.close()  # a clean shutdown writes what is pending
    with site.db.connection_context():
        (row,) = Sighting.select().where(Sighting.mac == MAC)
    assert row.count == 3 and row.model == MODEL and row.served_etag


def test_the_sighting_buffer_is_bounded(site):
    buffer = site.sightings
    buffer.limit = 5
    for i in range(8):
        buffer.record(f"0004f2{i:06x}", "ua", MODEL, None, "127.0.0.1", "/x")
    buffer.record("0004f2000000", "ua", MODEL, None, "127.0.0.1", "/x")  # a phone already held still counts
    assert buffer.flush() == 5
    with site.db.connection_context():
        assert Sighting.select().count() == 5
        assert Sighting.get(Sighting.mac == "0004f2000000").count == 2


def test_a_locked_or_missing_database_keeps_sightings_for_later(site, phone, tmp_path):
    if not site.settings.database.url.startswith("sqlite"):
        pytest.skip("SQLite: the file is moved away")
    buffer = site.sightings
    buffer.record(MAC, "ua", MODEL, None, "127.0.0.1", "/x")
    path = tmp_path / "autoprov.db"
    moved = tmp_path / "moved.db"
    site.db.close()
    path.rename(moved)
    path.mkdir()
    try:
        assert buffer.flush() == 0  # unavailable: kept
    finally:
        path.rmdir()
        moved.rename(path)
    assert buffer.flush() == 1
    with site.db.connection_context():
        assert Sighting.get(Sighting.mac == MAC).count == 1


def test_a_database_down_after_a_cached_render_is_a_503_once_the_counter_is_read(site, client, phone):
    """Within the interval a cached config is served (documented); once the counter cannot be read: 503."""
    if not site.settings.database.url.startswith("sqlite"):
        pytest.skip("SQLite: the file is replaced by a directory")
    assert client.get(PATH, headers=IP330).status_code == 200
    path = site.settings.database.url.removeprefix("sqlite:///")
    import os
    import shutil

    shutil.move(path, path + ".away")
    os.mkdir(path)
    try:
        r = client.get(PATH, headers=IP330)
        assert (r.status_code, r.headers.get("Retry-After")) == (503, "30")
        assert b"pw-1" not in r.data
    finally:
        os.rmdir(path)
        shutil.move(path + ".away", path)
    assert client.get(PATH, headers=IP330).status_code == 200


def test_prepared_phone_query_is_built_once_per_database(site, client, phone, monkeypatch):
    """The hot path does not rebuild SQL: peewee's builder runs once, then only SQL text with new values."""
    calls = []
    real = peewee.Query.sql

    def counting(self):
        calls.append(type(self).__name__)
        return real(self)

    client.get(PATH, headers=IP330)  # built here, if not before
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1002", "pw-2", "Grace"))
        admin.add_phone(site, "0004f2aabbcd", MODEL, ["1002"])
    monkeypatch.setattr(peewee.Query, "sql", counting)
    for mac in (MAC, "0004f2aabbcd", "0004f2aabbce"):
        client.get(f"/prov/{MODEL}/{mac}-phone.cfg", headers=IP330)
    assert calls == []
