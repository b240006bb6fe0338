"""The admin web UI driven in a real headless Chromium (Debian's chromium and chromedriver, through Selenium)
against a real ``autoprov serve``, with the phone's side over real HTTP.

Screenshots of the phones page and a phone's page, at laptop and phone widths, are written to
``var/screenshots/`` (or $AUTOPROV_SCREENSHOTS); the run prints where.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from autoprov.adminui import sessions
from autoprov.adminui.tables import AdminUser, AuditEntry
from autoprov.tables import Extension, Phone
from tests.conftest import REPO, autoprov
from tests.phones import headers

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "correct horse battery staple"
HOSTILE = "<script>alert('x')</script> O'Brien & \"Co\""
SCREENSHOTS = Path(os.environ.get("AUTOPROV_SCREENSHOTS") or REPO / "var" / "screenshots")
SIZES = {"laptop": (1366, 768), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the module (a fresh profile; it downloads nothing)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are not installed (scripts/test installs them)")
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="autoprov-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", "--window-size=1366,768"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class UI:
    """The browser on one server, with the few gestures the tests need; counts what a person does."""

    def __init__(self, driver, base: str) -> None:
        from selenium.webdriver.common.by import By

        self.d, self.base, self.By = driver, base, By
        self.clicks = 0
        self.fields = 0

    def go(self, path: str) -> None:
        self.d.get(self.base + path)

    def find(self, css: str):
        return self.d.find_element(self.By.CSS_SELECTOR, css)

    def fill(self, name: str, value: str) -> None:
        box = self.find(f"[name='{name}']")
        box.clear()
        box.send_keys(value)
        self.fields += 1

    def choose(self, name: str, value: str) -> None:
        from selenium.webdriver.support.select import Select

        Select(self.find(f"select[name='{name}']")).select_by_value(value)
        self.fields += 1

    def click(self, css: str) -> None:
        """Click and wait for the next page (the old one goes stale)."""
        element = self.find(css)
        element.click()
        self.clicks += 1
        self.wait(lambda: _stale(element))

    def click_text(self, text: str) -> None:
        found = self.d.find_elements(self.By.XPATH, f"//main//*[self::a or self::button][normalize-space()='{text}']")
        assert found, f"no {text!r} to click on {self.d.current_url}: {self.text()[:2000]}"
        element = found[0]
        element.click()
        self.clicks += 1
        self.wait(lambda: _stale(element))

    def wait(self, condition: Callable[[], bool], timeout: float = 15) -> None:
        """Poll ``condition`` until it holds; a page that reloads itself meanwhile (an import's) counts as not yet."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

        def holds() -> bool:
            try:
                return condition()
            except (StaleElementReferenceException, NoSuchElementException):
                return False

        deadline = time.monotonic() + timeout
        while not holds():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {self.d.current_url}: {self.text()[:2000]}")
            time.sleep(0.05)

    def text(self) -> str:
        return self.find("body").text

    def path(self) -> str:
        return self.d.current_url.removeprefix(self.base)

    def error_next_to(self, name: str) -> str:
        """The message tied to a field (aria-describedby), as a screen reader reads it."""
        box = self.find(f"[name='{name}']")
        assert box.get_attribute("aria-invalid") == "true", f"{name} not marked invalid"
        return self.find("#" + box.get_attribute("aria-describedby")).text

    def no_injected_script(self) -> None:
        """The page runs only its own script file: nothing a stored name could have added."""
        from selenium.common.exceptions import NoAlertPresentException

        scripts = self.d.find_elements(self.By.TAG_NAME, "script")
        assert [s.get_attribute("src").rsplit("/", 1)[-1] for s in scripts] == ["admin.js"]
        try:
            self.d.switch_to.alert.dismiss()
        except NoAlertPresentException:
            pass
        else:
            raise AssertionError("a stored name opened an alert")

    def screenshot(self, name: str) -> list[Path]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        written = []
        for size, (width, height) in SIZES.items():
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
            self.d.refresh()
            path = SCREENSHOTS / f"{name}-{size}.png"
            assert self.d.save_screenshot(str(path))
            written.append(path)
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return written

    def full_page(self, name: str, width: int = 1366) -> Path:
        """The whole page at laptop width, below the fold too."""
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 768, "deviceScaleFactor": 1, "mobile": False})
        height = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
        shot = self.d.execute_cdp_cmd("Page.captureScreenshot", {
            "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        path = SCREENSHOTS / f"{name}-full.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def _stale(element) -> bool:
    """Whether the page that held ``element`` is gone (a node caught mid-navigation: ask again)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException:
        return False


def _fetch_config(server: str, model: str, mac: str) -> requests.Response:
    """As the phone asks for its own config: its real User-Agent, over HTTP."""
    return requests.get(f"{server}/prov/{model}/{mac}-phone.cfg", headers=headers(model), timeout=30)


def test_admin_ui_in_chromium(server, site, tmp_path, browser, capsys):
    autoprov("admin", "create-user", "admin", "--password-stdin", config=tmp_path / "autoprov.toml",
             input=PASSWORD + "\n")
    browser.delete_all_cookies()  # cookies do not care about ports: the last server's session must not count
    ui = UI(browser, server)

    # -- the add-a-phone flow, counted from the login page to a phone that gets its config ----------------------
    ui.go("/admin/phones")
    assert ui.path().startswith("/admin/login?next=")
    ui.fill("username", "admin")
    ui.fill("password", PASSWORD)
    ui.click("button[type=submit].primary")
    assert ui.path() == "/admin/phones", ui.text()
    ui.click_text("Add a phone")
    ui.click_text("New extension…")
    ui.fill("user_id", "2001")
    ui.fill("first_name", HOSTILE)
    ui.click_text("Add extension")
    assert ui.path().startswith("/admin/phones/new"), ui.text()
    assert ui.find("[name='line1']").get_attribute("value") == "2001"  # came back with the new extension filled in
    ui.fill("mac", "00:04:F2:AB:CD:01")
    ui.choose("model", "polycom_ip330")
    ui.click_text("Add phone")
    assert ui.path() == "/admin/phones/0004f2abcd01", ui.text()
    flow = (ui.clicks, ui.fields)
    reply = _fetch_config(server, "polycom_ip330", "0004f2abcd01")
    assert reply.status_code == 200
    assert b'reg.1.address="2001"' in reply.content
    assert b"&lt;script&gt;alert" in reply.content  # the phone's XML carries the name escaped, too

    # The phone's page: its lines, its file with the SIP password masked until revealed.
    with site.db.connection_context():
        secret = Extension.get(Extension.user_id == "2001").secret
    assert HOSTILE in ui.text()
    assert secret not in browser.page_source
    ui.click_text("Reveal secrets")
    assert secret in ui.text()
    ui.no_injected_script()
    ui.go("/admin/phones/0004f2abcd01")
    shots = ui.screenshot("phone-page")
    shots.append(ui.full_page("phone-page"))

    # -- a phone that boots before it is added: its sighting, one click, pick the extension, save ------------------
    assert _fetch_config(server, "polycom_ip331", "0004f2abcd02").status_code == 404
    ui.go("/admin/sightings")
    ui.wait(lambda: "0004f2abcd02" in ui.text() or ui.d.refresh())  # sightings are written every 50 ms
    ui.click("a[aria-label='Add phone 0004f2abcd02']")
    assert ui.find("[name='mac']").get_attribute("value") == "0004f2abcd02"
    assert ui.find("select[name='model']").get_attribute("value") == "polycom_ip331"
    shots += ui.screenshot("phone-new")
    ui.fill("line1", "2001")
    ui.click_text("Add phone")
    assert ui.path() == "/admin/phones/0004f2abcd02", ui.text()
    reply = _fetch_config(server, "polycom_ip331", "0004f2abcd02")
    assert reply.status_code == 200 and b'reg.1.address="2001"' in reply.content
    ui.go("/admin/sightings")
    assert "0004f2abcd02" not in ui.text()

    # -- a form with errors keeps what was typed and shows each message next to its field ---------------------------
    ui.go("/admin/phones/new")
    ui.fill("mac", "00:04:f2:zz")
    ui.choose("model", "polycom_ip330")
    ui.fill("line1", "2001")
    ui.fill("line2", "9999")
    ui.find("main details > summary").click()  # "More: time zone, notes"
    ui.fill("notes", HOSTILE)
    ui.click_text("Add phone")
    assert "not a MAC address" in ui.error_next_to("mac")
    assert "no extension 9999" in ui.error_next_to("line2")
    assert ui.find("[name='mac']").get_attribute("value") == "00:04:f2:zz"
    assert ui.find("[name='notes']").get_attribute("value") == HOSTILE
    ui.no_injected_script()

    # -- CSV import: a file with an error row is refused whole, each error on its row -----------------------------
    ui.go("/admin/import")
    bad = ("extension,secret,first_name,mac,model\n"
           "3001,pw-3001-abc,Ann,0004f2abcd10,polycom_ip330\n3002,pw-3002-abc,Bob,0004f2abcd11,nokia_3310\n")
    ui.fill("text", bad)
    ui.click_text("Check")
    ui.wait(lambda: "Nothing was imported." in ui.text())  # checked in the background, its page follows
    row = browser.find_element(ui.By.XPATH, "//table[@id='preview-table']//tr[td[1]='3']")
    assert "nokia_3310" in row.text and "unknown model" in row.text
    assert not browser.find_elements(ui.By.XPATH, "//button[starts-with(normalize-space(), 'Import ')]")
    with site.db.connection_context():
        assert not Extension.select().where(Extension.user_id.in_(["3001", "3002"])).exists()
        assert not Phone.select().where(Phone.mac == "0004f2abcd10").exists()
    ui.fill("text", bad.replace("nokia_3310", "polycom_ip331"))  # the pasted text, corrected on the job's page
    ui.click_text("Check this text")
    ui.wait(lambda: "Every row is good: 2 row(s)." in ui.text())
    ui.click_text("Import 2 row(s)")
    ui.wait(lambda: "Imported 2 extension(s), 2 phone(s)" in ui.text())  # the job's page, updated by its script
    assert _fetch_config(server, "polycom_ip331", "0004f2abcd11").status_code == 200

    # -- the phones list, with its filters ------------------------------------------------------------------------
    ui.go("/admin/phones")
    for mac in ("0004f2abcd01", "0004f2abcd02", "0004f2abcd10", "0004f2abcd11"):
        assert mac in ui.text()
    shots += ui.screenshot("phones")
    ui.choose("seen", "never")
    ui.click_text("Filter")
    assert "0004f2abcd10" in ui.text() and "0004f2abcd01" not in ui.text()

    # -- a hostile name shows as text on every page that shows it --------------------------------------------------
    for path in ("/admin/extensions", "/admin/extensions/2001", "/admin/phones/0004f2abcd01", "/admin/audit",
                 "/admin/phones/new"):
        ui.go(path)
        source = browser.page_source
        assert "<script>alert(" not in source, path
        ui.no_injected_script()
    ui.go("/admin/extensions")
    assert HOSTILE in ui.text()

    # -- a forged CSRF token is refused and changes nothing ---------------------------------------------------------
    ui.go("/admin/extensions/new")
    ui.fill("user_id", "4001")
    browser.execute_script("document.querySelector(\"main input[name='csrf']\").value = 'forged'")
    ui.click_text("Add extension")
    assert "This form has expired" in ui.text()
    with site.db.connection_context():
        assert not Extension.select().where(Extension.user_id == "4001").exists()

    # -- an expired session is refused, for a form already open and for the next page --------------------------------
    ui.go("/admin/extensions/new")
    ui.fill("user_id", "4002")
    with site.db.connection_context():
        user = AdminUser.get(AdminUser.username == "admin")
        old = sessions.Session(user.id, user.session_epoch, int(time.time()) - sessions.SESSION_LIFETIME - 60, "n")
        expired = old.encode(sessions.signing_key())
    browser.delete_cookie(sessions.COOKIE)
    browser.add_cookie({"name": sessions.COOKIE, "value": expired, "path": "/admin/", "httpOnly": True})
    ui.click_text("Add extension")
    assert "Your session has ended" in ui.text()
    with site.db.connection_context():
        assert not Extension.select().where(Extension.user_id == "4002").exists()
    ui.go("/admin/phones")
    assert ui.path().startswith("/admin/login")

    # -- without JavaScript every form still works (the table filter simply is not offered) -------------------------
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        ui.fill("username", "admin")
        ui.fill("password", PASSWORD)
        ui.click("button[type=submit].primary")
        assert ui.path() == "/admin/phones", ui.text()
        ui.go("/admin/caller-names")
        assert not ui.find("#filter-names-table").is_displayed()
        ui.fill("number", "(555) 010-0100")
        ui.fill("name", HOSTILE)
        ui.click_text("Save")
        assert f"Calls from 5550100100 show {HOSTILE}." in ui.text()
        assert HOSTILE in ui.find("#names-table").text
        ui.no_injected_script()
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})

    # Every change above is in the audit trail, by whom.
    with site.db.connection_context():
        actions = [(e.username, e.action, e.target) for e in AuditEntry.select().order_by(AuditEntry.id)]
    assert ("admin", "extension add", "2001") in actions
    assert ("admin", "phone add", "0004f2abcd01") in actions
    assert ("admin", "reveal secrets", "0004f2abcd01") in actions
    assert ("admin", "csv import", "") in actions

    with capsys.disabled():
        print(f"\nadd-a-phone flow from the login page: {flow[0]} clicks, {flow[1]} fields"
              f"\nscreenshots: {', '.join(str(p) for p in shots)}")
    for path in shots:
        assert path.stat().st_size > 5000


def _login(ui: UI) -> None:
    ui.d.delete_all_cookies()
    ui.go("/admin/login")
    ui.fill("username", "admin")
    ui.fill("password", PASSWORD)
    ui.click("button[type=submit].primary")
    assert ui.path() == "/admin/phones", ui.text()


def test_csv_import_progress_in_chromium(server, site, tmp_path, browser):
    from autoprov.adminui.users import create_user
    from autoprov.provisioning.import_jobs import ImportJob, ImportJobError

    with site.db.connection_context():
        create_user("admin", PASSWORD)
    ui = UI(browser, server)
    _login(ui)

    # -- a 10,000-row file: uploaded, checked in the background while its page follows, then imported ---------------
    rows = ["extension,secret,first_name,mac,model"]
    rows += [f"{50000 + i},pw-{i:08d},User {i},0004f2{0x100000 + i:06x},polycom_ip330" for i in range(10000)]
    path = tmp_path / "fleet.csv"
    path.write_text("\n".join(rows) + "\n")
    ui.go("/admin/import")
    ui.find("input[type=file]").send_keys(str(path))
    ui.click_text("Check")
    assert ui.path().startswith("/admin/import/"), ui.text()
    ui.wait(lambda: "Every row is good: 10,000 row(s)." in ui.text(), timeout=120)
    ui.click_text("Import 10000 row(s)")
    ui.wait(lambda: "Imported 10000 extension(s), 10000 phone(s) and 10000 line(s)." in ui.text(), timeout=120)
    reply = _fetch_config(server, "polycom_ip330", f"0004f2{0x100000 + 9999:06x}")  # the file's last phone
    assert reply.status_code == 200 and b'reg.1.address="59999"' in reply.content

    # -- a job another worker runs: the page's script shows its progress and each error as text, in place ----------
    with site.db.connection_context():
        job = ImportJob.create(username="bob", source="big.csv", text="extension\n", state="checking", running=1,
                               rows_total=5000, rows_checked=100)
    ui.go(f"/admin/import/{job.id}")
    assert "100 of 5,000 rows checked" in ui.text() and "None so far." in ui.text()
    browser.execute_script("window.samePage = true")
    with site.db.connection_context():
        ImportJobError.create(job=job, line=42, message=f"not a MAC address: {HOSTILE}")
        ImportJob.update(rows_checked=2500, error_count=1).where(ImportJob.id == job.id).execute()
    ui.wait(lambda: ui.find("#import-count").text == "2,500 of 5,000 rows checked")
    ui.wait(lambda: f"line 42: not a MAC address: {HOSTILE}" in ui.find("#import-errors").text)
    assert ui.find("progress#import-progress").get_attribute("value") == "2500"
    assert browser.execute_script("return window.samePage") is True  # updated in place, not reloaded
    assert not ui.find("#import-no-errors").is_displayed()
    ui.no_injected_script()
    shots = ui.screenshot("import-progress")
    with site.db.connection_context():  # it finishes: the page reloads and shows the outcome
        ImportJob.update(state="checked", running=None).where(ImportJob.id == job.id).execute()
    ui.wait(lambda: "Nothing was imported." in ui.text())
    assert "Import 5000" not in ui.text()

    # -- without JavaScript the page reloads itself until the job has finished ------------------------------------
    with site.db.connection_context():
        job = ImportJob.create(username="bob", source="big.csv", text="extension\n", state="checking", running=1,
                               rows_total=5000, rows_checked=100)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        ui.go(f"/admin/import/{job.id}")
        assert "100 of 5,000 rows checked" in ui.text() and "Check again" in ui.text()
        with site.db.connection_context():
            ImportJob.update(rows_checked=4000).where(ImportJob.id == job.id).execute()
        ui.wait(lambda: "4,000 of 5,000 rows checked" in ui.text())
        with site.db.connection_context():
            ImportJob.update(state="checked", running=None, rows_checked=5000).where(ImportJob.id == job.id).execute()
        ui.wait(lambda: "Every row is good: 5,000 row(s)." in ui.text())
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    for shot in shots:
        assert shot.stat().st_size > 5000
