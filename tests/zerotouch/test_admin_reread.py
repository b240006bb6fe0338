"""The admin UI's "Make it re-read its config" button: enabled when a plugin implements the core check-sync hook,
a POST with the CSRF token, and the page shows what was sent and what came back. The phone's SIP side is SIPp,
at the address Asterisk's realtime ``ps_contacts`` table says it registered from (the table made here as
Asterisk's realtime driver writes it, on SQLite and PostgreSQL). Over HTTP, then in the real Chromium."""

from __future__ import annotations

from autoprov.adminui.users import create_user
from autoprov.provisioning import admin
from tests.conftest import free_port, running_server, write_config
from tests.test_admin_ui import audit_rows, ui  # noqa: F401  (the logged-in admin fixture)
from tests.test_admin_ui_browser import PASSWORD, UI, browser  # noqa: F401  (the module's Chromium)
from tests.zerotouch.test_notify import Sipp, header

MAC = "0004f2aabb01"


def phone_registered_at(site, port: int) -> None:
    """Extension 1001 on an IP 330 that registered from 127.0.0.1:<port> (one ps_contacts row)."""
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1001", secret="pw-1001"))
        admin.add_phone(site, MAC, "polycom_ip330", ["1001"])
        site.db.execute_sql("CREATE TABLE ps_contacts (id VARCHAR(255) PRIMARY KEY, uri VARCHAR(511), "
                            "expiration_time BIGINT, endpoint VARCHAR(40), via_addr VARCHAR(40), via_port INTEGER, "
                            "user_agent VARCHAR(255))")
        site.db.execute_sql("INSERT INTO ps_contacts VALUES (%s, %s, 1796000000, '1001', '127.0.0.1', %s, "
                            "'PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413')".replace("%s", site.db.param),
                            ("1001;@7a1f2e3d4c5b", f"sip:1001@127.0.0.1:{port};transport=udp", port))


def test_the_button_notifies_the_phone_and_shows_the_answer(site, ui, tmp_path):  # noqa: F811
    sipp = Sipp(tmp_path, "200 OK")
    try:
        phone_registered_at(site, sipp.port)
        site.settings.asterisk.registrations = "ps_contacts"
        page = ui.get(f"/admin/phones/{MAC}")
        assert f'action="/admin/phones/{MAC}/reread"' in page.text and "Sends it a SIP NOTIFY" in page.text
        assert ui.client.post(f"/admin/phones/{MAC}/reread", data={}).status_code == 400  # no CSRF token
        assert ui.client.get(f"/admin/phones/{MAC}/reread").status_code == 405
        done = ui.post(f"/admin/phones/{MAC}/reread", {})
        assert sipp.finish() == 0, sipp.output.read_text()
    finally:
        if sipp.process.poll() is None:
            sipp.process.kill()
    assert done.status_code == 200
    expected = (f"Sent: {MAC} 127.0.0.1:{sipp.port} (registered (ps_contacts)): sent NOTIFY "
                f"sip:1001@127.0.0.1:{sipp.port} Event: check-sync -&gt; 200 OK")
    assert expected in done.text
    assert header(sipp.received(), "Event") == "check-sync"
    assert ("admin", "re-read config", MAC) in [r[:3] for r in audit_rows(site)]


def test_without_an_implementation_the_button_is_disabled_and_a_post_says_so(site, ui):  # noqa: F811
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1001", secret="pw-1001"))
        admin.add_phone(site, MAC, "polycom_ip330", ["1001"])
    site.plugins.unregister(name="autoprov.zerotouch.reach")
    page = ui.get(f"/admin/phones/{MAC}")
    assert f'action="/admin/phones/{MAC}/reread"' not in page.text
    assert 'disabled aria-describedby="reread-why"' in page.text
    assert "No installed plugin can notify phones" in page.text
    done = ui.post(f"/admin/phones/{MAC}/reread", {})
    assert done.status_code == 200 and "Failed: not sent: no installed plugin can notify phones" in done.text


def test_the_button_in_chromium(site, tmp_path, browser):  # noqa: F811
    """A real server and browser: log in, open the phone, click the button, read what came back."""
    sipp = Sipp(tmp_path, "200 OK")
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    config.write_text(config.read_text() + '[asterisk]\nregistrations = "ps_contacts"\n')
    try:
        phone_registered_at(site, sipp.port)
        with site.db.connection_context():
            create_user("admin", PASSWORD)
        with running_server(config, port) as url:
            browser.delete_all_cookies()
            page = UI(browser, url)
            page.go(f"/admin/phones/{MAC}")
            page.fill("username", "admin")
            page.fill("password", PASSWORD)
            page.click("button[type=submit].primary")
            assert page.path() == f"/admin/phones/{MAC}", page.text()
            page.click_text("Make it re-read its config")
            assert sipp.finish() == 0, sipp.output.read_text()
            shown = page.find("#reread-result").text
            assert shown == (f"Sent: {MAC} 127.0.0.1:{sipp.port} (registered (ps_contacts)): sent NOTIFY "
                             f"sip:1001@127.0.0.1:{sipp.port} Event: check-sync -> 200 OK")
            assert page.find("#reread-result").get_attribute("role") == "status"
    finally:
        if sipp.process.poll() is None:
            sipp.process.kill()
    assert header(sipp.received(), "Event") == "check-sync"
    assert ("admin", "re-read config", MAC) in [r[:3] for r in audit_rows(site)]
