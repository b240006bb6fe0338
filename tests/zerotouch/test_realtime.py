"""``autoprov asterisk realtime-views``: on PostgreSQL, ps_endpoints/ps_auths/ps_aors read exactly what
``autoprov asterisk pjsip`` exports, follow the extension table at once, and carry values no line-oriented
file could."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.zerotouch.test_pjsip import parse_pjsip, with_asterisk


@pytest.fixture
def config(tmp_path: Path, settings, site) -> Path:
    return write_config(tmp_path / "autoprov.toml", settings, free_port())


def rows(site, view: str) -> list[dict[str, object]]:
    with site.db.connection_context():
        cursor = site.db.execute_sql(f"SELECT * FROM {view} ORDER BY id")
        names = [c[0] for c in cursor.description]
        return [{k: v for k, v in zip(names, row, strict=True) if v is not None} for row in cursor.fetchall()]


def test_views_read_what_the_export_writes_and_follow_the_database(config, site):
    if not site.settings.database.url.startswith("postgres"):
        result = autoprov("asterisk", "realtime-views", "--create", config=config, check=False)
        assert result.returncode == 1 and "realtime views are for PostgreSQL sites" in result.stderr
        assert "CREATE OR REPLACE VIEW ps_endpoints" in autoprov("asterisk", "realtime-views", config=config).stdout
        return
    autoprov("extension", "add", "1001", "--secret", "s3cret'x", "--first-name", "Ad\u00e9la\u00efde",
             "--last-name", "O'Brien", "--mailbox", "1001@pbx.example.com", config=config)
    autoprov("extension", "add", "2002", "--secret", "plain", config=config)
    with_asterisk(config, 'context = "from-phones"\nallow = ["g722", "ulaw"]\ntransport = "transport-udp"\n'
                          "max_contacts = 2\n")
    assert autoprov("asterisk", "realtime-views", "--create", config=config).stdout.strip() == (
        "created views ps_endpoints, ps_auths, ps_aors")
    exported = parse_pjsip(autoprov("asterisk", "pjsip", config=config).stdout)
    by_type = {kind: [{"id": name, **{k: v for k, v in options.items() if k != "type"}}
                      for name, _, options in exported if options["type"] == kind]
               for kind in ("endpoint", "auth", "aor")}
    assert rows(site, "ps_endpoints") == by_type["endpoint"]
    assert rows(site, "ps_auths") == by_type["auth"]
    assert [{**r, "max_contacts": str(r["max_contacts"])} for r in rows(site, "ps_aors")] == by_type["aor"]
    # No export step: a changed secret is what Asterisk reads next, even one pjsip.conf could not hold.
    autoprov("extension", "update", "2002", "--secret", "semi;colon [x]", config=config)
    assert rows(site, "ps_auths")[1]["password"] == "semi;colon [x]"
    # Run again (a changed setting): replaced, not an error.
    config.write_text(config.read_text(encoding="utf-8").replace('"from-phones"', '"other"'), encoding="utf-8")
    autoprov("asterisk", "realtime-views", "--create", config=config)
    assert {r["context"] for r in rows(site, "ps_endpoints")} == {"other"}


def test_a_setting_that_is_not_a_name_is_refused(config):
    hostile = with_asterisk(config, "context = \"x'; DROP TABLE y; --\"\n")
    result = autoprov("asterisk", "realtime-views", config=hostile, check=False)
    assert result.returncode == 1 and result.stdout == "" and "asterisk.context: " in result.stderr
