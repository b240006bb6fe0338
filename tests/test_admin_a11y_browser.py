"""Every admin page in a real headless Chromium, filled with hostile input: each page is checked for labels,
names, focus order and a visible focus ring, and text contrast (tests/admin_audit.js), at laptop and phone
widths, and every stored value (``<script>``, quotes, ``&``, newlines, non-ASCII) shows as text."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from autoprov.adminui.tables import AuditEntry
from autoprov.adminui.users import create_user
from autoprov.agi.tables import CallerName, Route
from autoprov.phonefiles import storedfiles
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.provisioning.import_jobs import ImportJob, ImportJobError
from autoprov.tables import Sighting
from tests import test_admin_ui_browser as chromium
from tests.phones import headers
from tests.test_admin_ui_browser import PASSWORD, SIZES, UI, _login
from tests.uploads_helpers import log_path

AUDIT = (Path(__file__).parent / "admin_audit.js").read_text()
NAME = "<script>alert('x')</script> O'Brien & \"Co\" Zoë 東京"
TEXT = NAME + "\nsecond line <b>bold</b> & done"
MAC = "0004f2aabb01"
UA = "<script>x</script> & \"q\" 's'"  # a hostile User-Agent
browser = chromium.browser  # the module's headless Chromium fixture


def _hostile_data(site, server: str) -> dict[str, int]:
    with site.db.connection_context():
        admin.add_extension(ExtensionData("2001", "pw-2001-secret", NAME, NAME, "2001"))
        admin.add_phone(site, MAC, "polycom_ip330", ["2001"], None, "\n" + TEXT)  # a leading newline too
        storedfiles.store(site.db, MAC, storedfiles.OVERRIDES, "phone.cfg", TEXT.encode() + b"\n", "phone")
        storedfiles.store(site.db, MAC, storedfiles.OVERRIDES, "phone.cfg", NAME.encode() + b"\n", "phone")
        storedfiles.store(site.db, MAC, storedfiles.CONTACTS, "directory.xml", TEXT.encode() + b"\n", "phone")
        CallerName.create(number="5551234567", name=NAME)
        AuditEntry.create(username="admin", action="caller name set", target="5551234567", details=TEXT)
        route = Route.create(pattern="_555XXXX", priority=100, dest_type="extension", destination="2001",
                             ring_timeout=30, description=NAME)
        job = ImportJob.create(username="admin", source=NAME, text="extension,first_name\n" + "3001,\"" +
                               TEXT.replace('"', '""') + "\"\n", state="checked", rows_total=1, rows_checked=1,
                               error_count=0)
        running = ImportJob.create(username="admin", source=NAME, text="extension\n", state="checking", running=1,
                                   rows_total=9, rows_checked=3, error_count=1)
        ImportJobError.create(job=running, line=2, message=TEXT)
    # What phones send: a log with hostile lines, a request from an unknown phone with a hostile User-Agent.
    line = f"1015120000|sip  |0|00|{NAME} & more\n".encode()
    r = requests.put(server + log_path(MAC), data=line, headers=headers("polycom_ip330"), timeout=30)
    assert r.status_code in (200, 201, 204), r.text
    # ASCII: Granian (autoprov serve) drops a header value that is not visible ASCII, as HTTP asks of senders.
    requests.get(server + "/0004f2ccdd01.cfg", headers={"User-Agent": UA}, timeout=30)
    requests.get(server + "/prov/polycom_ip330/0004f2ccdd02-phone.cfg", headers=headers("polycom_ip330"),
                 timeout=30)
    deadline = time.monotonic() + 30
    while True:
        with site.db.connection_context():
            # Both: the two requests may land on two server workers, each writing its own sightings.
            if Sighting.select().where(Sighting.mac.in_(["0004f2ccdd01", "0004f2ccdd02"])).count() == 2:
                break
        assert time.monotonic() < deadline, "the sighting was not written"
        time.sleep(0.05)
    return {"route": route.id, "job": job.id, "running": running.id}


def _pages(ids: dict[str, int]) -> list[str]:
    return ["/admin/login", "/admin/phones", "/admin/phones?q=%3Cscript%3E&model=nokia&ext=%22&seen=never&problem=1",
            "/admin/phones/new", f"/admin/phones/new?mac={MAC}&model=polycom_ip330&ext=2001",
            f"/admin/phones/{MAC}", f"/admin/phones/{MAC}?log_grep=%3Cscript%3E&log_since=%22x%22",
            f"/admin/phones/{MAC}/delete", "/admin/extensions", "/admin/extensions?q=%3Cb%3E",
            "/admin/extensions/new", "/admin/extensions/2001", "/admin/extensions/2001/delete", "/admin/sightings",
            "/admin/fleet", "/admin/import", f"/admin/import/{ids['job']}", "/admin/caller-names",
            "/admin/caller-names/5551234567", "/admin/routes", "/admin/routes?number=%3Cscript%3E",
            "/admin/routes/new", f"/admin/routes/{ids['route']}", "/admin/audit", "/admin/audit?q=%3Cscript%3E",
            f"/admin/import/{ids['running']}", "/admin/no-such-page", "/admin/phones/%3Cscript%3E%22",
            "/admin/extensions/%3Cscript%3E%22'%26", "/admin/login?next=%22%3E%3Cscript%3Ealert(1)%3C/script%3E"]


def _tab_walk(ui: UI, stops: int = 25) -> list[str]:
    """Press Tab from the top: each stop must show a focus ring that stands out from what surrounds it (after
    AUDIT ran on the page). Returns problems."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    problems = []
    ui.d.execute_script("window.scrollTo(0, 0); document.activeElement.blur()")
    for i in range(stops):
        ActionChains(ui.d).send_keys(Keys.TAB).perform()
        ring = ui.d.execute_script(
            "var e = document.activeElement, s = getComputedStyle(e); return e === document.body ? 'body' :"
            " [s.outlineStyle, s.outlineWidth, window.autoprovRingContrast(e), e.outerHTML.slice(0, 100)]")
        if ring == "body":
            break
        if ring[0] == "none" or ring[1] == "0px":
            problems.append(f"no focus ring on stop {i + 1}: {ring[3]}")
        elif ring[2] < 3:
            problems.append(f"focus ring contrast {ring[2]:.2f} < 3 on stop {i + 1}: {ring[3]}")
    return problems


def test_every_admin_page_is_accessible_and_shows_hostile_input_as_text(server, site, browser):
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    ids = _hostile_data(site, server)
    ui = UI(browser, server)
    _login(ui)
    problems: dict[str, list[str]] = {}
    for path in _pages(ids):
        for size, (width, height) in SIZES.items():
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
            if path.startswith("/admin/login"):
                browser.delete_all_cookies()
            ui.go(path)
            found = browser.execute_script(AUDIT) + _tab_walk(ui)
            source = browser.page_source
            if "<script>alert(" in source or "<b>bold</b>" in source or "<script>x</script>" in source:
                found.append("hostile markup in the page's source")
            ui.no_injected_script()
            if found:
                problems[f"{path} ({size})"] = found
            if path.startswith("/admin/login"):
                _login(ui)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert not problems, "\n".join(f"{page}:\n  " + "\n  ".join(p) for page, p in problems.items())

    # The checks find what they look for: faint text, a field without a label, focus that goes back up.
    ui.go("/admin/phones")
    browser.execute_script("""
        var main = document.querySelector("main");
        var faint = document.createElement("p"); faint.textContent = "faint"; faint.style.color = "#aaa";
        var field = document.createElement("input"); field.name = "x";
        var up = document.createElement("a"); up.href = "#"; up.textContent = "up";
        up.style.position = "absolute"; up.style.top = "0";
        main.append(faint, field, up);""")  # CSSOM, as the page's CSP forbids inline style attributes
    found = "\n".join(browser.execute_script(AUDIT))
    assert re.search(r"contrast 2\.\d+ < 4\.5: <p style=\"color: rgb\(170, 170, 170\);\">faint</p>", found), found
    assert 'form field without a label: <input name="x">' in found, found
    assert "focus goes back up the page" in found and ">up</a>" in found, found

    # The stored values show as the text they are, and a form gives back exactly what was stored.
    shown = {"/admin/extensions": NAME, f"/admin/phones/{MAC}": NAME + " & more",
             "/admin/caller-names": NAME, "/admin/routes": NAME, f"/admin/import/{ids['job']}": NAME,
             "/admin/sightings": UA, "/admin/audit": "Zoë"}
    for path, text in shown.items():
        ui.go(path)
        assert text in ui.text(), path
    ui.go(f"/admin/phones/{MAC}")
    assert ui.find("textarea[name='notes']").get_attribute("value") == "\n" + TEXT  # newlines and all
    assert "second line <b>bold</b> & done" in ui.text()  # the overrides' history
    ui.go("/admin/extensions/2001")
    assert ui.find("[name='first_name']").get_attribute("value") == NAME
    ui.go(f"/admin/import/{ids['job']}")
    assert TEXT.replace("\n", " ") in " ".join(ui.find("#preview-table").text.split("\n"))
    # A form shown again with errors puts the focus on its first field in error, tied to its message.
    def focused_after(path: str, fields: dict[str, str], button: str) -> str:
        ui.go(path)
        for name, value in fields.items():
            ui.choose(name, value) if name == "model" else ui.fill(name, value)
        ui.click_text(button)
        return browser.switch_to.active_element.get_attribute("name")

    assert focused_after("/admin/phones/new", {"mac": "0004f2aabb09", "model": "polycom_ip330", "line1": "9999"},
                         "Add phone") == "line1"  # not the MAC field, the form's usual first
    assert "no extension 9999" in ui.error_next_to("line1")
    assert focused_after("/admin/routes/new", {"pattern": "_555XXXX", "destination": "2001", "priority": "high"},
                         "Save") == "priority"

    # A refused value comes back in its field, and its message shows it as text.
    ui.go("/admin/extensions/new")
    ui.fill("user_id", NAME)
    ui.click_text("Add extension")
    assert ui.find("[name='user_id']").get_attribute("value") == NAME
    assert "<script>" in ui.error_next_to("user_id")
    ui.no_injected_script()
    assert "<script>alert(" not in browser.page_source
