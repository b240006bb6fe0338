"""The attack walked as an outsider and then as a phone, over real HTTP: guessing MACs is throttled (429 with
Retry-After, shared by every worker and by two servers on one PostgreSQL) while the real phone, at another
address, still gets its config; the audit trail shows secrets served, refusals and blocks, with filters and
retention; a provisioned phone asked for from afar is flagged; the sighting table is bounded.

Loopback has a whole /8: the attacker connects from 127.0.0.1, the phone from 127.0.0.2 (the same /16, as a
phone and a guesser on one LAN) or a far one, 127.1.0.1 (another /16). Nothing here waits on a fixed sleep.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from autoprov.audit import AccessRecord
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.sightings import far_apart, prune_sightings
from autoprov.tables import Phone, Sighting, utcnow
from autoprov.throttle import MacThrottle
from tests.conftest import LoopbackClient, cli, free_port, running_server, write_config
from tests.phones import headers

MODEL = "polycom_ip330"
MAC = "0004f2aabbcc"
PATH = f"/prov/{MODEL}/{MAC}-phone.cfg"
IP330 = headers(MODEL)
ATTACKER, PHONE_ADDRESS, FAR = "127.0.0.1", "127.0.0.2", "127.1.0.1"
LIMIT = 30


def password(body: bytes) -> str | None:
    return ET.fromstring(body).find("reg").get("reg.1.auth.password")


def fetch(port: int, path: str, source: str, hdrs: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET on a new connection (so the server's workers share the requests) from ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=hdrs or IP330)
        response = conn.getresponse()
        return response.status, CaseInsensitiveDict(response.getheaders()), response.read()
    finally:
        conn.close()


def poll(what: Callable[[], Any], message: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


@pytest.fixture
def phone(site):
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-1", "Ada"))
        admin.add_phone(site, MAC, MODEL, ["1001"])


def server_config(tmp_path: Path, site, port: int, name: str = "server", extra: str = "") -> Path:
    path = write_config(tmp_path / f"{name}.toml", site.settings, port)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"""
[audit]
flush_interval = 0.05
[throttle]
unknown_macs = {LIMIT}
window = 120
block = 300
share_interval = 0.1
{extra}""")
    return path


def audit_lines(config: Path, *args: str) -> list[dict[str, Any]]:
    out = cli("audit", "--json", "--limit", "1000", *args, config=config).stdout
    return [json.loads(line) for line in out.splitlines()]


def guesses(n: int, start: int = 0) -> list[str]:
    return [f"/prov/{MODEL}/0004f2{i:06x}-phone.cfg" for i in range(start + 1, start + n + 1)]


def test_guessing_300_macs_is_throttled_and_the_real_phone_still_boots(tmp_path, site, phone):
    port = free_port()
    config = server_config(tmp_path, site, port)
    with running_server(config, port):
        answers = [fetch(port, path, ATTACKER) for path in guesses(300)]
        statuses = [status for status, _, _ in answers]
        assert 200 not in statuses
        first = statuses.index(429)
        # Each worker blocks on its own count at once; the other within the share interval.
        assert LIMIT < first + 1 <= 4 * LIMIT, statuses[:first + 1]
        assert statuses.count(429) >= 300 - 4 * LIMIT
        assert set(statuses) == {404, 429}
        for status, hdrs, body in answers:
            if status == 429:
                assert 0 < int(hdrs["Retry-After"]) <= 300 and b"pw-" not in body
        # Blocked for every per-phone file, the real phone's too: a block must not tell which MACs exist.
        status, _, body = fetch(port, PATH, ATTACKER)
        assert status == 429 and b"pw-1" not in body
        # The real phone, at another address, boots: its own master name (404: it falls back), the shared
        # master, its config with its password, the site's config.
        boot = [fetch(port, f"/prov/{MODEL}/{name}", PHONE_ADDRESS)
                for name in (f"{MAC}.cfg", "000000000000.cfg", f"{MAC}-phone.cfg", "site.cfg")]
        assert [status for status, _, _ in boot] == [404, 200, 200, 200]
        assert password(boot[2][2]) == "pw-1"
        # Shared files hold no one's secret: still served to the blocked client.
        assert fetch(port, f"/prov/{MODEL}/site.cfg", ATTACKER)[0] == 200
        assert fetch(port, f"/prov/{MODEL}/{MAC}.cfg", ATTACKER)[0] == 429

        # Every 429 is in the audit (one record per client per write, with a count), and so is the block.
        refused = statuses.count(429) + 2  # and the guesser's two for the real phone's names

        def all_written() -> list[dict[str, Any]] | None:
            rows = audit_lines(config, "--outcome", "throttled")
            counted = sum(r["count"] for r in rows if r["reason"].startswith("refused while blocked"))
            return rows if counted == refused else None

        throttled = poll(all_written, f"the audit never counted {refused} requests refused while blocked")
        blocks = [r for r in throttled if r["status"] == 429 and r["reason"].startswith("blocked for")]
        assert blocks and all(r["client"] == ATTACKER for r in throttled)
        assert all("unknown MACs asked for within 120 s" in r["reason"] for r in blocks)
        allowed = poll(lambda: audit_lines(config, "--mac", MAC, "--outcome", "allowed"), "no allowed record")
        assert [(r["client"], r["status"], r["path"]) for r in allowed] == [(PHONE_ADDRESS, 200, PATH)]
        assert allowed[0]["user_agent"] == IP330["User-Agent"]


@contextmanager
def two_servers(tmp_path: Path, site) -> Iterator[list[int]]:
    """Two `autoprov serve` processes sharing the test's PostgreSQL database (on SQLite, the first test's two
    workers already share one database file)."""
    if not site.settings.database.url.startswith("postgres"):
        pytest.skip("servers sharing PostgreSQL")
    ports = [free_port(), free_port()]
    configs = [server_config(tmp_path, site, port, f"server{i}") for i, port in enumerate(ports)]
    with running_server(configs[0], ports[0]), running_server(configs[1], ports[1]):
        yield ports


def test_two_servers_sharing_postgresql_share_the_block(tmp_path, site, phone):
    with two_servers(tmp_path, site) as ports:
        assert fetch(ports[1], guesses(1, 1000)[0], ATTACKER)[0] == 404  # not blocked to begin with
        # Guess on server one until it blocks (each of its workers at once on its own count, or both within the
        # share interval through the database).
        assert next((i for i, path in enumerate(guesses(300)) if fetch(ports[0], path, ATTACKER)[0] == 429),
                    None) is not None
        # The other server learns the block through the database, each of its workers within its share
        # interval: four requests in a row (new connections, spread over its workers) all refused.
        poll(lambda: all(fetch(ports[1], PATH, ATTACKER)[0] == 429 for _ in range(4)), "server two never blocked it")
        status, hdrs, _ = fetch(ports[1], guesses(1, 2000)[0], ATTACKER)
        assert status == 429 and int(hdrs["Retry-After"]) > 0
        status, _, body = fetch(ports[1], PATH, PHONE_ADDRESS)
        assert status == 200 and password(body) == "pw-1"


def test_guesses_spread_over_two_servers_add_up(tmp_path, site, phone):
    """Neither server sees more than the limit; their counts in the database do."""
    with two_servers(tmp_path, site) as ports:
        paths = guesses(LIMIT // 2 + 3)
        assert {fetch(ports[0], p, ATTACKER)[0] for p in paths} == {404}
        paths = guesses(LIMIT // 2 + 3, 500)
        assert {fetch(ports[1], p, ATTACKER)[0] for p in paths} <= {404, 429}
        poll(lambda: fetch(ports[0], guesses(1, 3000)[0], ATTACKER)[0] == 429, "the counts were not added up")


def test_the_audit_shows_secrets_served_and_refusals_with_filters(tmp_path, site, phone):
    """Only 127.0.0.2 may fetch secrets here: the attacker's 127.0.0.1 is refused (403), and recorded."""
    port = free_port()
    config = server_config(tmp_path, site, port)
    text = config.read_text().replace('[http]\n', '[http]\nsecrets_allowed_from = ["127.0.0.2/32"]\n', 1)
    config.write_text(text)
    with running_server(config, port):
        status, _, body = fetch(port, PATH, ATTACKER, {"User-Agent": "curl/8.5.0"})
        assert status == 403 and b"pw-1" not in body
        status, hdrs, body = fetch(port, PATH, PHONE_ADDRESS)
        assert status == 200 and password(body) == "pw-1"
        # A 304 sends no secret: not recorded (see autoprov.audit).
        assert fetch(port, PATH, PHONE_ADDRESS, {**IP330, "If-None-Match": hdrs["ETag"]})[0] == 304
        # Not a secret: not recorded.
        assert fetch(port, f"/prov/{MODEL}/sip.cfg", PHONE_ADDRESS)[0] in (200, 404)
        rows = poll(lambda: len(found := audit_lines(config)) >= 2 and found, "the audit was never written")
    assert [(r["outcome"], r["status"], r["client"], r["mac"]) for r in rows] == [
        ("allowed", 200, PHONE_ADDRESS, MAC), ("refused", 403, ATTACKER, MAC)]
    assert rows[1]["user_agent"] == "curl/8.5.0" and "secrets_allowed_from" in rows[1]["reason"]
    assert [r["outcome"] for r in audit_lines(config, "--outcome", "refused")] == ["refused"]
    assert [r["client"] for r in audit_lines(config, "--client", "127.0.0.2")] == [PHONE_ADDRESS]
    assert len(audit_lines(config, "--client", "127.0.0.*")) == 2
    assert audit_lines(config, "--mac", "00:04:f2:00:00:01") == []
    assert len(audit_lines(config, "--mac", "00:04:F2:AA:BB:CC", "--since", "1h")) == 2
    assert audit_lines(config, "--until", "1h") == []
    assert len(audit_lines(config, "--limit", "1")) == 1
    plain = cli("audit", "--outcome", "refused", config=config).stdout
    assert "refused\t403\t0004f2aabbcc\t127.0.0.1\tGET " + PATH in plain
    bad = cli("audit", "--since", "yesterday", config=config, check=False)
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_retention_prunes_old_records(tmp_path, site):
    config = write_config(tmp_path / "c.toml", site.settings, free_port())
    with config.open("a") as fh:
        fh.write("[audit]\nkeep_days = 30\nmax_rows = 5\n")
    with site.db.connection_context():
        old = utcnow() - dt.timedelta(days=31)
        AccessRecord.insert_many([{"at": old, "outcome": "allowed", "mac": "0004f2000001"}] * 2).execute()
        AccessRecord.insert_many([{"at": utcnow() - dt.timedelta(minutes=i), "outcome": "refused",
                                   "mac": f"0004f20000{i:02x}"} for i in range(8)]).execute()
    out = cli("audit", "prune", config=config).stdout
    assert "pruned 5 audit record(s)" in out
    with site.db.connection_context():
        left = list(AccessRecord.select().order_by(AccessRecord.id))
    assert [r.outcome for r in left] == ["refused"] * 5
    assert [r.mac for r in left] == [f"0004f20000{i:02x}" for i in range(3, 8)]  # the oldest went

    # The server's writer prunes too, on its own.
    site.settings.audit.keep_days, site.settings.audit.max_rows = 1, 0
    with site.db.connection_context():
        AccessRecord.update(at=utcnow() - dt.timedelta(days=2)).where(AccessRecord.mac == "0004f2000003").execute()
    site.__dict__.pop("audit", None)
    trail = site.audit
    trail.interval = 0.05
    trail.record("refused", mac="0004f2ffffff", client="10.0.0.1", status=403)

    def pruned() -> bool:
        with site.db.connection_context():
            return not AccessRecord.select().where(AccessRecord.mac == "0004f2000003").exists()

    poll(pruned, "the writer never pruned")
    with site.db.connection_context():
        assert AccessRecord.select().where(AccessRecord.mac == "0004f2ffffff").exists()


def test_a_first_contact_from_afar_is_flagged_and_the_phone_row_keeps_its_first_address(tmp_path, site, phone):
    port = free_port()
    config = server_config(tmp_path, site, port)
    with running_server(config, port):
        assert fetch(port, PATH, PHONE_ADDRESS)[0] == 200

        def first_row() -> Sighting | None:
            with site.db.connection_context():
                return Sighting.get_or_none(Sighting.mac == MAC, Sighting.user_agent == IP330["User-Agent"])

        poll(lambda: (row := first_row()) is not None and row.served_etag, "the phone's sighting was not written")
        # Near: another address of the same /16 is not a first contact.
        assert fetch(port, PATH, "127.0.0.3")[0] == 200
        poll(lambda: first_row().ip == "127.0.0.3", "the second request was not written")
        assert first_row().flag == ""
        # Far, with the phone's own User-Agent: the attacker's request updates the same row...
        assert fetch(port, PATH, FAR)[0] == 200
        row = poll(lambda: (r := first_row()).ip == FAR and r, "the far request was not written")
        # ...but the phone's first address survives, and the change is flagged.
        assert row.first_ip == PHONE_ADDRESS and row.first_seen < row.last_seen
        assert FAR in row.flag and PHONE_ADDRESS in row.flag
        # Another User-Agent family (not a Polycom) from the phone's own network: flagged too.
        assert fetch(port, PATH, PHONE_ADDRESS, {"User-Agent": "curl/8.5.0"})[0] == 200

        def curl_row() -> Sighting | None:
            with site.db.connection_context():
                return Sighting.get_or_none(Sighting.mac == MAC, Sighting.user_agent == "curl/8.5.0")

        curl = poll(curl_row, "the curl request was not written")
        assert "another family" in curl.flag and "unknown:curl" in curl.flag
        flagged = poll(lambda: len(r := audit_lines(config, "--outcome", "flagged")) >= 2 and r,
                       "the flags are not in the audit")
        # A later request from the same far network is not flagged again.
        count = first_row().count
        assert fetch(port, PATH, FAR)[0] == 200
        poll(lambda: first_row().count > count, "the later far request was not written")
    assert {(r["client"], r["mac"]) for r in flagged} == {(FAR, MAC), (PHONE_ADDRESS, MAC)}
    shown = cli("phone", "show", MAC, config=config).stdout
    assert f"from {FAR} (first from {PHONE_ADDRESS})" in shown and "FLAGGED: first contact: requested from" in shown
    assert "FLAGGED: first contact: User-Agent of another family" in cli("sightings", config=config).stdout
    assert len(audit_lines(config, "--outcome", "flagged")) == 2


def test_far_apart():
    assert far_apart("10.1.2.3", "10.2.2.3")  # another /16
    assert not far_apart("10.1.2.3", "10.1.200.9")
    assert far_apart("192.168.1.5", "203.0.113.7")  # private and public
    assert far_apart("10.1.2.3", "2001:db8::1")
    assert not far_apart("::ffff:10.1.2.3", "10.1.9.9")  # an IPv4 client of a server on "::"
    assert far_apart("2001:db8:1::1", "2001:db8:2::1")  # another /48
    assert not far_apart("2001:db8:1:5::1", "2001:db8:1:6::1")
    assert not far_apart(None, "10.0.0.1") and not far_apart("garbage", "10.0.0.1")


def test_the_sighting_table_is_bounded_unknown_macs_first(site, phone):
    with site.db.connection_context():
        now = utcnow()
        Sighting.insert_many([{"mac": f"0004f2{i:06x}", "user_agent": "ua", "last_seen": now - dt.timedelta(hours=i)}
                              for i in range(1, 11)]).execute()
        Sighting.insert({"mac": MAC, "user_agent": "ua", "last_seen": now - dt.timedelta(days=400)}).execute()
        Sighting.insert({"mac": "", "user_agent": "x", "last_seen": now - dt.timedelta(days=40)}).execute()
        # keep_days: unknown MACs' (and MAC-less) rows not seen for 30 days; the known phone's row stays.
        assert prune_sightings(site.db, 30, 0) == 1
        # max_rows: the oldest unknown MACs go first, though the known phone's row is older.
        assert prune_sightings(site.db, 30, 6) == 5
        left = {s.mac for s in Sighting.select()}
        assert MAC in left and left - {MAC} == {f"0004f2{i:06x}" for i in range(1, 6)}
        # Fewer unknown rows than the excess: then the oldest known phones' rows go.
        Sighting.insert({"mac": MAC, "user_agent": "ua2", "last_seen": now}).execute()
        assert prune_sightings(site.db, 30, 1) == 6
        assert [(s.mac, s.user_agent) for s in Sighting.select()] == [(MAC, "ua2")]
        assert Phone.select().count() == 1


def test_seven_thousand_guesses_leave_a_bounded_table(site):
    """The issue's 7,039 rows from 20 s of guessing: the writer's prune brings them down to the bound."""
    site.settings.http.sightings_max_rows = 1000
    site.__dict__.pop("sightings", None)
    buffer = site.sightings
    for i in range(7039):
        buffer.record(f"0004f2{i:06x}", "curl/8", None, None, "198.51.100.7", "/x.cfg")
    assert buffer.flush() == 7039
    with site.db.connection_context():
        buffer._pruned_at = float("-inf")  # due now (the writer thread may have pruned the empty table already)
        buffer._tick()
        assert Sighting.select().count() == 1000


def test_the_throttle_is_per_client_and_exempt_networks_are_never_counted(site):
    settings = site.settings.throttle
    settings.unknown_macs, settings.exempt = 3, ["10.9.0.0/16"]
    clock = [1000.0]
    throttle = MacThrottle(site.db, settings, clock=lambda: clock[0])
    for i in range(4):
        throttle.miss("10.0.0.5", f"0004f2{i:06x}")
        throttle.miss("10.9.1.1", f"0004f2{i:06x}")
    assert throttle.blocked("10.0.0.5") == settings.block
    assert throttle.blocked("10.0.0.6") == 0 and throttle.blocked("10.9.1.1") == 0
    clock[0] += settings.block + 1
    assert throttle.blocked("10.0.0.5") == 0
    # The same MAC asked for again and again is one unknown MAC (a phone retrying its own config).
    for _ in range(50):
        throttle.miss("10.0.0.7", "0004f2000099")
    assert throttle.blocked("10.0.0.7") == 0
    throttle.close()


def test_no_database_write_on_a_guess(site, phone):
    """A 404 for a guessed MAC and a 429 touch memory only: the writes come from the writer thread."""
    from autoprov.web import create_app

    site.settings.throttle.unknown_macs = 2
    site.settings.throttle.share_interval = 60
    site.settings.http.sighting_flush_interval = 60
    client = LoopbackClient(create_app(site))
    statuses = [client.get(path, headers=IP330).status_code for path in guesses(5)]
    assert statuses == [404, 404, 404, 429, 429]
    with site.db.connection_context():
        assert site.db.execute_sql("SELECT COUNT(*) FROM throttle_miss").fetchone()[0] == 0
        assert AccessRecord.select().count() == 0
    site.close()  # a clean shutdown writes it all
    with site.db.connection_context():
        assert site.db.execute_sql("SELECT COUNT(*) FROM throttle_miss").fetchone()[0] == 3
        assert site.db.execute_sql("SELECT client FROM throttle_block").fetchall() == [("127.0.0.1",)]
        assert {r.outcome for r in AccessRecord.select()} == {"throttled"}


def test_the_admin_page_shows_the_audit_with_filters(site, client, phone):
    from autoprov.adminui.users import create_user
    from tests.test_admin_ui import PASSWORD, Admin

    hostile = "<script>alert(1)</script> & \"x\""
    assert client.get(PATH, headers=IP330).status_code == 200
    refused = client.get(PATH, headers={"User-Agent": hostile}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 403
    site.audit.flush()
    assert client.get("/admin/access-audit").status_code in (302, 303)  # login first
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    ui = Admin(client)
    assert ui.login().status_code == 303
    page = ui.get("/admin/access-audit")
    assert page.status_code == 200 and "Access audit" in page.text
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "203.0.113.9" in page.text and "127.0.0.1" in page.text
    only = ui.get("/admin/access-audit?outcome=refused")
    assert "203.0.113.9" in only.text and "127.0.0.1" not in only.text
    by_client = ui.get("/admin/access-audit?client=127.0.0.*")
    assert "127.0.0.1" in by_client.text and "203.0.113.9" not in by_client.text
    assert "0004f2aabbcc" in ui.get("/admin/access-audit?mac=00:04:F2:AA:BB:CC&since=1h").text
    bad = ui.get("/admin/access-audit?mac=nonsense")
    assert bad.status_code == 400 and "Nothing recorded" in bad.text
    assert ui.get("/admin/access-audit?since=yesterday").status_code == 400
    # A first contact from afar shows on the phone's page.
    assert client.get(PATH, headers=IP330, environ_base={"REMOTE_ADDR": "192.168.7.7"}).status_code == 200
    phone_page = ui.get(f"/admin/phones/{MAC}").text
    assert "Flagged" in phone_page and "requested from 192.168.7.7" in phone_page
    site.audit.flush()
    assert "192.168.7.7" in ui.get("/admin/access-audit?outcome=flagged").text


def test_bad_settings_are_refused_by_name(tmp_path):
    from autoprov.config import ConfigError, load_settings

    for text, name in (("[throttle]\nexempt = [\"nonsense\"]\n", "throttle.exempt"),
                       ("[throttle]\nwindow = 0\n", "throttle.window"),
                       ("[audit]\nkeep_days = -1\n", "audit.keep_days"),
                       ("[http]\nsightings_max_rows = -5\n", "http.sightings_max_rows")):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
            load_settings(path, environ={})


def test_with_the_database_gone_the_throttle_still_blocks_and_the_audit_waits(site, phone, tmp_path):
    """The block is in memory first; records and counts are kept, bounded, until the database is back."""
    if not site.settings.database.url.startswith("sqlite"):
        pytest.skip("SQLite: the file is moved away")
    from autoprov.web import create_app

    site.settings.throttle.unknown_macs = 2
    site.settings.throttle.share_interval = site.settings.audit.flush_interval = 3600
    client = LoopbackClient(create_app(site))
    assert [client.get(p, headers=IP330).status_code for p in guesses(3)] == [404] * 3
    path = Path(site.settings.database.url.removeprefix("sqlite:///"))
    site.db.close()
    path.rename(path.with_suffix(".away"))
    path.mkdir()
    try:
        r = client.get(PATH, headers=IP330)
        assert (r.status_code, r.headers.get("Retry-After")) == (429, "600")  # no database needed to refuse
        assert site.audit.flush() == 0 and site.throttle.flush() == 0  # unavailable: kept for later
    finally:
        path.rmdir()
        path.with_suffix(".away").rename(path)
    assert site.throttle.flush() == 4  # three misses and the block
    assert site.audit.flush() == 2  # the block, and the 429
    with site.db.connection_context():
        assert [(r.outcome, r.status) for r in AccessRecord.select().order_by(AccessRecord.id)] == [
            ("throttled", 429), ("throttled", 429)]


def test_an_admitted_write_of_overrides_is_recorded_and_a_refused_one_too(site, client, phone):
    override = f"/prov/{MODEL}/overrides/{MAC}-phone.cfg"
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n<PHONE_CONFIG><OVERRIDES up.x="1"/></PHONE_CONFIG>'
    assert client.put(override, data=body, headers=IP330).status_code == 200
    refused = client.put(override, data=body, headers=IP330, environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert refused.status_code == 403
    site.audit.flush()
    with site.db.connection_context():
        rows = [(r.outcome, r.method, r.status, r.client, r.path)
                for r in AccessRecord.select().order_by(AccessRecord.id)]
    assert rows == [("allowed", "PUT", 200, "127.0.0.1", override), ("refused", "PUT", 403, "198.51.100.4", override)]


def test_a_write_between_the_first_contact_read_and_the_upsert_waits_instead_of_failing(site, monkeypatch):
    """SQLite: the writer reads (first contact) then writes in one transaction; another process writing in
    between must not make it fail at once with "database is locked" (the install test's server log saw it)."""
    import sqlite3
    import threading

    if not site.settings.database.url.startswith("sqlite"):
        pytest.skip("SQLite's locking")
    from autoprov.sightings import SightingBuffer

    path = site.settings.database.url.removeprefix("sqlite:///")
    done = threading.Event()
    original = SightingBuffer._first_contact

    def read_then_let_another_write(self, batch):  # type: ignore[no-untyped-def]
        found = original(self, batch)

        def other() -> None:
            conn = sqlite3.connect(path, timeout=10)
            conn.execute("INSERT INTO sighting (mac, user_agent, last_path, problem, flag, first_seen, last_seen,"
                         " count) VALUES ('0004f2999999', 'other', '', '', '', '2026-01-01', '2026-01-01', 1)")
            conn.commit()
            conn.close()
            done.set()

        threading.Thread(target=other).start()
        done.wait(0.5)  # it is waiting for this transaction's lock, or (before the fix) had already written
        return found

    monkeypatch.setattr(SightingBuffer, "_first_contact", read_then_let_another_write)
    site.sightings.record(MAC, "ua", MODEL, None, "10.0.0.1", "/x")
    assert site.sightings.flush() == 1
    assert done.wait(10)
    with site.db.connection_context():
        assert {s.mac for s in Sighting.select()} == {MAC, "0004f2999999"}
