"""Versioned migrations: `autoprov init` creates, upgrades, and is safe to rerun, per component."""

from __future__ import annotations

import os
import subprocess
import sys

import peewee
from playhouse.migrate import SchemaMigrator

from autoprov import hookimpl
from autoprov.db import BaseModel
from autoprov.schema import Migration, create_tables, current_versions
from tests.conftest import write_config


class Gadget(BaseModel):
    name = peewee.CharField()


def add_colour(db: peewee.Database, migrator: SchemaMigrator) -> None:
    from playhouse.migrate import migrate

    migrate(migrator.add_column("gadget", "colour", peewee.CharField(default="grey")))


class GadgetsV1:
    @hookimpl
    def autoprov_migrations(self) -> list[Migration]:
        return [Migration("gadgets", 1, "gadgets", create_tables(Gadget))]


class GadgetsV2:
    @hookimpl
    def autoprov_migrations(self) -> list[Migration]:
        return [*GadgetsV1().autoprov_migrations(), Migration("gadgets", 2, "gadget colours", add_colour)]


def test_core_schema_is_created_once(site):
    with site.db.connection_context():
        versions = current_versions(site.db)
    assert versions["core"] >= 1
    assert site.init_database() == []  # a rerun applies nothing


def test_a_component_is_upgraded_in_place_keeping_its_rows(site):
    site.plugins.register(GadgetsV1(), name="gadgets")
    assert [m.version for m in site.init_database()] == [1]
    with site.db.connection_context():
        site.db.execute_sql("INSERT INTO gadget (name) VALUES ('widget')")
    site.plugins.unregister(name="gadgets")
    site.plugins.register(GadgetsV2(), name="gadgets")
    assert [(m.component, m.version) for m in site.init_database()] == [("gadgets", 2)]
    assert site.init_database() == []
    with site.db.connection_context():
        rows = site.db.execute_sql("SELECT name, colour FROM gadget").fetchall()
        assert [tuple(r) for r in rows] == [("widget", "grey")]
        assert current_versions(site.db)["gadgets"] == 2


def test_a_failing_migration_leaves_the_recorded_version_alone(site):
    def broken(db: peewee.Database, migrator: SchemaMigrator) -> None:
        db.execute_sql("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("migration bug")

    class Broken:
        @hookimpl
        def autoprov_migrations(self) -> list[Migration]:
            return [Migration("broken", 1, "fails", broken)]

    site.plugins.register(Broken(), name="broken")
    try:
        site.init_database()
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failing migration was not reported")
    with site.db.connection_context():
        assert "broken" not in current_versions(site.db)
        assert not site.db.table_exists("half_done")  # rolled back with its transaction


def test_wsgi_module_serves_from_the_configuration_file(tmp_path, site):
    """``autoprov.wsgi.application`` as mod_wsgi imports it: configured by AUTOPROV_CONFIG."""
    config = write_config(tmp_path / "autoprov.toml", site.settings, 8080)
    probe = (
        "from werkzeug.test import Client\n"
        "from autoprov.wsgi import application\n"
        "r = Client(application).get('/000000000000.cfg', headers={'User-Agent': "
        "'FileTransport PolycomSoundPointIP-SPIP_331-UA/3.3.2'})\n"
        "print(r.status_code, r.get_data(as_text=True))\n"
    )
    env = dict(os.environ, AUTOPROV_CONFIG=str(config))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("200 ")
    assert "prov/polycom_ip331/device.cfg" in out.stdout


def test_init_run_by_two_servers_at_once_is_safe(settings):
    """Two servers starting together both run `autoprov init` on one fresh database: every migration is
    applied once, neither fails, and the schema is whole."""
    import threading

    from autoprov.plugins import build_plugin_manager
    from autoprov.schema import current_versions
    from autoprov.site import Site

    sites = [Site(settings, build_plugin_manager()) for _ in range(2)]
    barrier = threading.Barrier(len(sites))
    results: list[object] = [None] * len(sites)

    def init(i: int) -> None:
        barrier.wait()
        try:
            results[i] = [(m.component, m.version) for m in sites[i].init_database()]
        except Exception as exc:  # what the test is about: reported below
            results[i] = exc

    threads = [threading.Thread(target=init, args=(i,)) for i in range(len(sites))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(isinstance(r, Exception) for r in results), results
    applied = [step for r in results for step in r]  # type: ignore[union-attr]
    assert len(applied) == len(set(applied)), applied  # each migration applied by one of them only
    with sites[0].activated(), sites[0].db.connection_context():
        assert current_versions(sites[0].db) == {m.component: max(n.version for n in sites[0].migrations()
                                                                  if n.component == m.component)
                                                 for m in sites[0].migrations()}
    for site in sites:
        site.close()
