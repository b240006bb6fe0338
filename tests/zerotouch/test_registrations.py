"""Where a phone is, for check-sync: Asterisk's realtime ``ps_contacts`` table (read by default on
PostgreSQL, when the table is there), the contact of a shared extension told apart by the phone's last seen
address, else the sighting."""

from __future__ import annotations

import peewee

from autoprov.provisioning import admin
from autoprov.zerotouch import reach
from tests.phones import headers

A, B = "0004f2aabb01", "0004f2aabb02"


def contacts_table(site, rows: list[tuple[str, str, str, int]]) -> None:
    """``ps_contacts`` as Asterisk's realtime driver creates it (the columns read here, and a few more)."""
    site.db.execute_sql("CREATE TABLE ps_contacts (id VARCHAR(255) PRIMARY KEY, uri VARCHAR(511), "
                        "expiration_time BIGINT, endpoint VARCHAR(40), via_addr VARCHAR(40), via_port INTEGER)")
    for row in rows:
        site.db.execute_sql("INSERT INTO ps_contacts (id, uri, via_addr, via_port) VALUES (%s, %s, %s, %s)"
                            .replace("%s", site.db.param), row)


def test_shared_extension_contacts_follow_the_sighting(site, client):
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1001", secret="pw"))
        admin.add_phone(site, A, "polycom_ip330", ["1001"])
        admin.add_phone(site, B, "polycom_ip330", ["1001"])
    # A fetched its config from 127.0.0.1, B from 10.1.1.2.
    assert client.get(f"/prov/polycom_ip330/{A}-phone.cfg", headers=headers("polycom_ip330")).status_code == 200
    assert client.get(f"/prov/polycom_ip330/{B}-phone.cfg", headers=headers("polycom_ip330"),
                      environ_base={"REMOTE_ADDR": "10.1.1.2"}).status_code == 200
    site.settings.asterisk.registrations = "ps_contacts"
    with site.db.connection_context():
        contacts_table(site, [("1001;@aa", "sip:1001@127.0.0.1:5071", "127.0.0.1", 5071),
                              ("1001;@bb", "sip:1001@10.9.9.9:5072;ob", "10.9.9.9", 5072)])
        found, problem = reach.registrations(site)
        assert problem is None and [(c.host, c.port) for c in found["1001"]] == [("127.0.0.1", 5071),
                                                                                 ("10.9.9.9", 5072)]
        a = reach.target(site, A, None, False, found)
        b = reach.target(site, B, None, False, found)
        forced = reach.target(site, A, 5090, True, found)
    assert (a.host, a.port, a.found_by) == ("127.0.0.1", 5071, "registered (ps_contacts)")
    assert (b.host, b.port, b.found_by) == ("10.1.1.2", 5060, "last seen")  # neither contact is at 10.1.1.2
    assert (forced.port, forced.event) == (5090, "check-sync;reboot=true")


def test_auto_reads_ps_contacts_on_postgresql_only_and_a_broken_table_falls_back(site, client):
    assert client.get(f"/prov/polycom_ip330/{A}-phone.cfg", headers=headers("polycom_ip330")).status_code == 404
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1001", secret="pw"))
        admin.add_phone(site, A, "polycom_ip330", ["1001"])
        contacts_table(site, [("1001;@aa", "sip:1001@[::ffff:10.2.3.4]:5080", "", 0)])
        found, problem = reach.registrations(site)  # [asterisk] registrations = "auto"
        on_postgresql = isinstance(site.db, peewee.PostgresqlDatabase)
        assert problem is None
        assert [(c.host, c.port) for c in found.get("1001", [])] == ([("10.2.3.4", 5080)] if on_postgresql else [])
        site.db.execute_sql("DROP TABLE ps_contacts")
        site.settings.asterisk.registrations = "ps_contacts"
        found, problem = reach.registrations(site)
        assert reach.target(site, A, None, False, found).found_by == "last seen"  # the connection still works
    assert found == {} and problem.startswith("registrations not read (ps_contacts: ")
