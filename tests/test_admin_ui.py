"""The admin web UI over HTTP (the WSGI app in-process, each database): who may use it, what every form
refuses, what it records. The browser walk-through is in test_admin_ui_browser.py."""

from __future__ import annotations

import io
import logging
import re
import time

import pytest
from werkzeug.test import Client

from autoprov import hookimpl
from autoprov.adminui import AdminPage, PhoneSection
from autoprov.adminui import sessions as admin_sessions
from autoprov.adminui.tables import AdminUser, AuditEntry, LoginFailure
from autoprov.adminui.users import THROTTLE_FAILURES, create_user, set_password
from autoprov.agi.tables import CallerName, Route
from autoprov.phonefiles import storedfiles
from autoprov.provisioning import admin
from autoprov.provisioning.import_jobs import ImportJob
from autoprov.tables import Extension, Phone, PhoneLine
from autoprov.web import create_app
from tests.conftest import cli as autoprov
from tests.conftest import free_port, write_config
from tests.phones import headers
from tests.uploads_helpers import log_lines, put_log

PASSWORD = "correct horse battery staple"
HOSTILE = "<script>alert('x')</script> O'Brien & \"Co\"\nnext line"
MAC = "0004f2aabb01"


def csrf_of(html: str) -> str:
    """The token of the page's last form (the first may be the header's logout form)."""
    return re.findall(r'name="csrf" value="([^"]+)"', html)[-1]


class Admin:
    """A logged-in browser, as far as HTTP goes: cookies, and the CSRF token of the last page."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.token = ""

    def login(self, username: str = "admin", password: str = PASSWORD, next_url: str = "") -> object:
        page = self.client.get("/admin/login")
        return self.client.post("/admin/login", data={"csrf": csrf_of(page.text), "username": username,
                                                      "password": password, "next": next_url})

    def get(self, path: str, **kw):
        r = self.client.get(path, **kw)
        if 'name="csrf"' in r.text:
            self.token = csrf_of(r.text)
        return r

    def post(self, path: str, data: dict, **kw):
        if not self.token:
            self.get("/admin/phones")
        return self.client.post(path, data={"csrf": self.token, **data}, **kw)


@pytest.fixture
def ui(site, client) -> Admin:
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    a = Admin(client)
    assert a.login().status_code == 303
    return a


def audit_rows(site) -> list[tuple[str, str, str, str]]:
    with site.db.connection_context():
        return [(e.username, e.action, e.target, e.details) for e in AuditEntry.select().order_by(AuditEntry.id)]


def test_phone_urls_stay_outside_the_login(client):
    assert client.get("/000000000000.cfg", headers=headers("polycom_ip330")).status_code == 200
    r = client.get("/admin/phones")
    assert r.status_code == 303 and r.headers["Location"] == "/admin/login?next=%2Fadmin%2Fphones"
    assert client.get("/admin").status_code == 308
    assert client.get("/admin/static/admin.css").status_code == 200  # the login page needs it


def test_session_cookie_is_signed_httponly_samesite_with_expiry(ui, client):
    page = client.get("/admin/login")
    r = client.post("/admin/login", data={"csrf": csrf_of(page.text), "username": "admin", "password": PASSWORD})
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(admin_sessions.COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin/" in cookie
    assert f"Max-Age={admin_sessions.SESSION_LIFETIME}" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    body, sig = value.split(".")
    forged = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    client.set_cookie(admin_sessions.COOKIE, forged, path="/admin/")
    assert client.get("/admin/phones").status_code == 303  # to the login page
    r = client.post("/admin/extensions/new", data={"csrf": "x", "user_id": "1001"})
    assert r.status_code == 403 and "Your session has ended" in r.text


def test_pages_are_never_cached_nor_framed(ui):
    r = ui.get("/admin/phones")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"


def test_failed_logins_are_throttled_and_logged(site, client, caplog):
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    a = Admin(client)
    caplog.set_level(logging.WARNING)
    for _ in range(THROTTLE_FAILURES):
        assert a.login(password="wrong password!").status_code == 401
    assert "admin login failed: user 'admin'" in caplog.text
    r = a.login()  # the right password, too late
    assert r.status_code == 429 and "too many failed logins" in r.text
    assert "admin login throttled" in caplog.text
    assert a.login(username="someone-else").status_code == 429  # the same address
    with site.db.connection_context():
        assert LoginFailure.select().count() == THROTTLE_FAILURES
        LoginFailure.delete().execute()  # the window has passed
    assert a.login().status_code == 303


def test_wrong_or_missing_csrf_token_is_refused_and_nothing_saved(site, ui, client):
    other = Client(create_app(site))
    Admin(other).login()
    other_token = csrf_of(other.get("/admin/phones").text)
    for token in (None, "", "forged", other_token):
        data = {"user_id": "1001"} | ({"csrf": token} if token is not None else {})
        r = client.post("/admin/extensions/new", data=data)
        assert r.status_code == 400 and "This form has expired" in r.text
    with site.db.connection_context():
        assert not Extension.select().exists()
    # The login form has its own token, tied to the browser that loaded it.
    fresh = Client(create_app(site))
    r = fresh.post("/admin/login", data={"csrf": "forged", "username": "admin", "password": PASSWORD})
    assert r.status_code == 400 and admin_sessions.COOKIE + "=" not in r.headers.get("Set-Cookie", "")


def test_expired_session_is_refused(site, ui, client):
    with site.db.connection_context():
        user = AdminUser.get(AdminUser.username == "admin")
        key = admin_sessions.signing_key()
    old = admin_sessions.Session(user.id, user.session_epoch, int(time.time()) - admin_sessions.SESSION_LIFETIME - 1,
                                 "nonce")
    client.set_cookie(admin_sessions.COOKIE, old.encode(key), path="/admin/")
    assert client.get("/admin/phones").status_code == 303
    r = client.post("/admin/extensions/new", data={"csrf": old.csrf_token(key), "user_id": "1001"})
    assert r.status_code == 403
    recent = admin_sessions.Session(user.id, user.session_epoch, int(time.time()) - 60, "nonce")
    client.set_cookie(admin_sessions.COOKIE, recent.encode(key), path="/admin/")
    assert client.get("/admin/phones").status_code == 200


def test_logout_and_a_new_password_end_sessions(site, ui, client):
    kept = client.get_cookie(admin_sessions.COOKIE, path="/admin/").value
    r = ui.post("/admin/logout", {})
    assert r.status_code == 303 and r.headers["Location"] == "/admin/login"
    client.set_cookie(admin_sessions.COOKIE, kept, path="/admin/")
    assert client.get("/admin/phones").status_code == 303
    assert ui.login().status_code == 303
    assert client.get("/admin/phones").status_code == 200
    with site.db.connection_context():
        set_password("admin", "another long password")
    assert client.get("/admin/phones").status_code == 303
    assert [a for _, a, _, _ in audit_rows(site)] == ["login", "logout", "login"]


def test_login_never_redirects_off_site(ui):
    for target in ("//evil.example/admin/", "https://evil.example/admin/", "/admin/..//evil", "/\\evil"):
        r = ui.login(next_url=target)
        assert r.headers["Location"] == "/admin/", target
    assert ui.login(next_url="/admin/fleet?days=3").headers["Location"] == "/admin/fleet?days=3"


def test_admin_command_line(site, tmp_path):
    config = write_config(tmp_path / "autoprov.toml", site.settings, free_port())
    out = autoprov("admin", "create-user", "alice", "--password-stdin", config=config, input=PASSWORD + "\n")
    assert "created admin user alice" in out.stdout
    refused = autoprov("admin", "create-user", "alice", "--password-stdin", config=config, input=PASSWORD + "\n",
                       check=False)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    short = autoprov("admin", "create-user", "bob", "--password-stdin", config=config, input="short\n", check=False)
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    bad = autoprov("admin", "create-user", "<bob>", "--password-stdin", config=config, input=PASSWORD + "\n",
                   check=False)
    assert bad.returncode == 1 and "user name" in bad.stderr
    with site.db.connection_context():
        user = AdminUser.get(AdminUser.username == "alice")
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    listing = autoprov("admin", "list", config=config).stdout
    assert listing.startswith("alice\t") and "never" in listing
    autoprov("admin", "passwd", "alice", "--password-stdin", config=config, input="a new long password\n")
    with site.db.connection_context():
        assert AdminUser.get(AdminUser.username == "alice").session_epoch == 1
    missing = autoprov("admin", "passwd", "nobody", "--password-stdin", config=config, input=PASSWORD + "\n",
                       check=False)
    assert missing.returncode == 1 and "no user nobody" in missing.stderr
    autoprov("admin", "remove", "alice", config=config)
    assert autoprov("admin", "list", config=config).stdout == ""


def _phone_with_line(site, secret: str = "s3cret&<pw>") -> None:
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1001", secret=secret, first_name=HOSTILE.split("\n")[0]))
        admin.add_phone(site, MAC, "polycom_ip330", ["1001"])


def test_secrets_are_masked_until_revealed_and_the_reveal_is_audited(site, ui):
    _phone_with_line(site)
    page = ui.get(f"/admin/phones/{MAC}")
    assert page.status_code == 200
    assert "s3cret" not in page.text and "••••••••" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text
    assert ui.client.post(f"/admin/phones/{MAC}/reveal", data={}).status_code == 400
    revealed = ui.post(f"/admin/phones/{MAC}/reveal", {})
    assert revealed.status_code == 200
    assert "s3cret&amp;amp;&amp;lt;pw&amp;gt;" in revealed.text  # XML-escaped in the file, HTML-escaped on the page
    assert ("admin", "reveal secrets", MAC) in [r[:3] for r in audit_rows(site)]


def test_add_phone_form_refuses_field_by_field_keeps_the_input_and_saves_nothing(site, ui):
    _phone_with_line(site)
    form = {"mac": "00:04:f2:aa:bb:01", "model": "polycom_ip4000", "line1": "1001", "line2": "1001",
            "time_zone": "Mars/Olympus", "notes": HOSTILE}
    r = ui.post("/admin/phones/new", form)
    assert r.status_code == 422
    assert re.search(r'id="f-mac-msg">phone 0004f2aabb01 already exists', r.text)
    assert re.search(r'id="f-line2-msg">a Polycom SoundStation IP 4000 has 1 line\(s\); 2 given', r.text)
    assert re.search(r'id="f-time_zone-msg">unknown time zone', r.text)
    assert 'value="00:04:f2:aa:bb:01"' in r.text and 'value="Mars/Olympus"' in r.text
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; O&#39;Brien &amp; &#34;Co&#34;\nnext line"
    assert escaped + "</textarea>" in r.text
    r = ui.post("/admin/phones/new", form | {"mac": "0004f2aabb02", "model": "nokia", "line1": "", "line2": "7"})
    assert 'id="f-model-msg">model &#39;nokia&#39; is not installed' in r.text
    assert 'id="f-line1-msg">fill the lines in order' in r.text
    assert 'id="f-line2-msg">no extension 7;' in r.text
    with site.db.connection_context():
        assert Phone.select().count() == 1


def test_edit_a_phone_and_remove_it(site, ui):
    _phone_with_line(site)
    with site.db.connection_context():
        admin.add_extension(admin.ExtensionData("1002", secret="pw-1002"))
    r = ui.post(f"/admin/phones/{MAC}", {"model": "polycom_ip331", "line1": "1002", "line2": "1001",
                                          "time_zone": "Europe/Paris", "notes": "desk 4"})
    assert r.status_code == 303
    with site.db.connection_context():
        phone = Phone.get(Phone.mac == MAC)
        assert (phone.model, phone.time_zone, phone.notes) == ("polycom_ip331", "Europe/Paris", "desk 4")
        assert [line.extension.user_id for line in phone.lines.order_by(PhoneLine.position)] == ["1002", "1001"]
    changes = [r for r in audit_rows(site) if r[1] == "phone update"][0][3]
    assert "Changes made here" in ui.get(f"/admin/phones/{MAC}").text
    assert "lines: &#39;1001&#39; -&gt; &#39;1002, 1001&#39;" in ui.get(f"/admin/phones/{MAC}").text
    assert "model: 'polycom_ip330' -> 'polycom_ip331'" in changes and "lines: '1001' -> '1002, 1001'" in changes
    r = ui.client.get("/admin/extensions")
    assert MAC in r.text
    r = ui.post("/admin/extensions/1001/delete", {})
    assert r.status_code == 409 and f"extension 1001 is on phone(s) {MAC}" in r.text
    assert ui.post(f"/admin/phones/{MAC}/delete", {}).status_code == 303
    assert ui.post("/admin/extensions/1001/delete", {}).status_code == 303
    with site.db.connection_context():
        assert not Phone.select().exists() and not Extension.select().where(Extension.user_id == "1001").exists()
    assert ui.client.get(f"/admin/phones/{MAC}").status_code == 404


def test_extension_form_messages_sit_next_to_their_field(site, ui):
    r = ui.post("/admin/extensions/new", {"user_id": "10 01", "port": "99999x"})
    assert r.status_code == 422 and 'id="f-port-msg">a port is a number' in r.text
    r = ui.post("/admin/extensions/new", {"user_id": "1001", "mailbox": "100@default", "first_name": HOSTILE})
    assert r.status_code == 422 and re.search(r'id="f-mailbox-msg">extension 1001: mailbox', r.text)
    assert r.text.count("<script>") == 0
    r = ui.post("/admin/extensions/new", {"user_id": "1001", "first_name": "Ann", "in_directory": "1"})
    assert r.status_code == 303
    r = ui.post("/admin/extensions/1001", {"first_name": "Anne", "secret": ""})
    assert r.status_code == 303
    with site.db.connection_context():
        ext = Extension.get(Extension.user_id == "1001")
        assert ext.first_name == "Anne" and not ext.in_directory and len(ext.secret) >= 16
    details = [r for r in audit_rows(site) if r[1] == "extension update"][0][3]
    assert "first_name: 'Ann' -> 'Anne'" in details and "in_directory: True -> False" in details
    assert ext.secret not in "".join(r[3] for r in audit_rows(site))


def import_finished(ui: Admin, response, deadline: float = 60) -> tuple[dict, object]:
    """Follow an import's 303 to its job, poll its status URL until it has finished: (status, job page)."""
    assert response.status_code == 303, response.text
    job = response.headers["Location"]
    assert re.fullmatch(r"/admin/import/\d+", job), job
    end = time.monotonic() + deadline
    while (status := ui.client.get(job + "/status").json)["running"]:
        assert time.monotonic() < end, status
        time.sleep(0.05)
    return status, ui.get(job)


def test_csv_import_checks_everything_first_and_saves_nothing_on_an_error(site, ui):
    text = ("extension,secret,first_name,mac,model,line\n"
            "3001,pw-3001-a,Ann,0004f2000001,polycom_ip330,1\n"
            "3002,pw-3002-a,Bob,0004f2000001,polycom_ip330,1\n")
    r = ui.post("/admin/import", {"text": text, "action": "import"})  # straight to import: still checked
    status, page = import_finished(ui, r)
    assert status["state"] == "checked" and status["error_count"] == 1
    assert "Nothing was imported" in page.text and "line 3: phone 0004f2000001: line 1 is already given" in page.text
    assert "Import 2 row(s)" not in page.text
    with site.db.connection_context():
        assert not Extension.select().exists() and not Phone.select().exists()
    good = text.replace("Bob,0004f2000001,polycom_ip330", "Bob,0004f2000002,polycom_ip331")
    status, page = import_finished(ui, ui.post("/admin/import", {"text": good, "action": "check"}))
    assert status == status | {"state": "checked", "rows_total": 2, "rows_checked": 2, "error_count": 0}
    assert "Import 2 row(s)" in page.text
    with site.db.connection_context():
        assert not Extension.select().exists()  # a check writes nothing
    job = re.search(r'action="(/admin/import/\d+)"', page.text).group(1)
    status, page = import_finished(ui, ui.post(job, {"action": "import"}))
    assert status["state"] == "imported" and "Imported 2 extension(s), 2 phone(s) and 2 line(s)." in page.text
    with site.db.connection_context():
        assert Phone.select().count() == 2
    details = [r[3] for r in audit_rows(site) if r[1] == "csv import"][0]
    assert "2 extension(s), 2 phone(s), 2 line(s)" in details and "pw-3001" not in details
    # Imported once: the job keeps no copy of the file (it holds SIP passwords), and cannot be imported again.
    with site.db.connection_context():
        assert ImportJob.get(ImportJob.state == "imported").text == ""
    r = ui.post(job, {"action": "import"})
    assert r.status_code == 409 and "imported already" in r.text
    r = ui.post("/admin/import", {"text": "\x00binary", "action": "check"})
    assert r.status_code == 422
    upload = {"file": (__import__("io").BytesIO(b"\xff\xfe bad"), "x.csv"), "action": "check", "csrf": ui.token}
    r = ui.client.post("/admin/import", data=upload, content_type="multipart/form-data")
    assert r.status_code == 422 and "not UTF-8" in r.text


def test_sightings_list_phones_not_yet_added_with_their_form_prefilled(site, ui, client):
    assert client.get("/prov/polycom_ip331/0004f2cc0001-phone.cfg", headers=headers("polycom_ip331")).status_code == 404
    r = ui.get("/admin/sightings")
    assert "0004f2cc0001" in r.text
    link = re.search(r'href="(/admin/phones/new\?mac=0004f2cc0001[^"]*)"', r.text).group(1).replace("&amp;", "&")
    form = ui.get(link)
    assert 'value="0004f2cc0001"' in form.text and '<option value="polycom_ip331" selected>' in form.text
    # What a stranger sends is shown as text: a hostile User-Agent and path.
    hostile = {"User-Agent": "<script>alert(1)</script> \"&'"}
    client.get("/prov/polycom_ip330/0004f2cc0002-phone.cfg?<b>x</b>", headers=hostile)
    client.get("/<img src=x onerror=alert(1)>.cfg", headers=hostile)
    r = ui.get("/admin/sightings")
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&amp;&#39;" in r.text
    assert "<img" not in r.text


def test_fleet_counts_models_firmware_problems_and_stale_phones(site, ui, client):
    _phone_with_line(site)
    assert client.get(f"/prov/polycom_ip331/{MAC}-phone.cfg", headers=headers("polycom_ip331")).status_code == 200
    with site.db.connection_context():
        admin.add_phone(site, "0004f2aabb09", "polycom_ip330", [])
    r = ui.get("/admin/fleet")
    assert r.status_code == 200
    assert "the database says polycom_ip330 but the phone&#39;s User-Agent says polycom_ip331" in r.text
    assert re.search(r"Polycom SoundPoint IP 330</a></td><td>2</td>", r.text)
    assert re.search(r"Polycom SoundPoint IP 331</td><td>3.3.2.0413</td><td>1</td>", r.text)
    assert re.search(r'Not seen for 7 days</h2><p class="stat">1</p>', r.text)
    assert 'href="/admin/phones/0004f2aabb09"' in r.text and f'href="/admin/phones/{MAC}"' in r.text


def test_phonefiles_panels_show_history_diff_and_logs(site, ui, client):
    _phone_with_line(site)
    with site.db.connection_context():
        storedfiles.store(site.db, MAC, storedfiles.OVERRIDES, "phone.cfg", b'<PHONE_CONFIG a="1"/>\n', "phone")
        storedfiles.store(site.db, MAC, storedfiles.OVERRIDES, "phone.cfg", b'<PHONE_CONFIG a="2"/>\n', "phone")
    assert put_log(client, MAC, b"".join(log_lines(5))).status_code in (200, 201, 204)
    r = ui.get(f"/admin/phones/{MAC}")
    assert 'class="del">-&lt;PHONE_CONFIG a=&#34;1&#34;/&gt;' in r.text
    assert 'class="add">+&lt;PHONE_CONFIG a=&#34;2&#34;/&gt;' in r.text
    assert "event number 4" in r.text
    r = ui.get(f"/admin/phones/{MAC}?log_grep=number+3")
    assert "event number 3" in r.text and "event number 4" not in r.text
    r = ui.get(f"/admin/phones/{MAC}?log_since=yesterday")
    assert "is neither a duration" in r.text
    r = ui.post(f"/admin/phones/{MAC}/stored/overrides/clear", {"name": "phone.cfg"})
    assert r.status_code == 303
    with site.db.connection_context():
        assert storedfiles.current(MAC, storedfiles.OVERRIDES, "phone.cfg") is None
    assert ("admin", "overrides clear", MAC, "phone.cfg") in audit_rows(site)


def test_agi_tables_and_which_route_a_number_takes_now(site, ui):
    r = ui.post("/admin/caller-names", {"number": "(555) 123-4567", "name": HOSTILE.split("\n")[0]})
    assert r.status_code == 303
    r = ui.post("/admin/caller-names", {"number": "x;y", "name": "a\x07"})
    assert r.status_code == 422 and 'id="f-number-msg">not a caller-ID number' in r.text
    assert 'id="f-name-msg">the name must be' in r.text
    assert "<script>" not in ui.get("/admin/caller-names").text
    r = ui.post("/admin/routes/new", {"pattern": "_555XXXX", "priority": "100", "dest_type": "extension",
                                      "destination": "1001", "ring_timeout": "30", "days": "", "start": "",
                                      "end": "", "time_zone": "", "fallback_type": "", "fallback": "",
                                      "description": "main"})
    assert r.status_code == 303
    bad = ui.post("/admin/routes/new", {"pattern": "_5.5", "priority": "x", "dest_type": "group",
                                        "destination": "1001&evil", "ring_timeout": "0", "days": "someday",
                                        "start": "25:00", "end": "", "time_zone": "Mars/Base",
                                        "fallback_type": "", "fallback": "", "description": ""})
    assert bad.status_code == 422
    for name in ("pattern", "priority", "destination", "ring_timeout", "days", "start", "time_zone"):
        assert f'id="f-{name}-msg"' in bad.text and "aria-invalid" in bad.text, name
    with site.db.connection_context():
        assert Route.select().count() == 1 and CallerName.get().number == "5551234567"
        route_id = Route.get().id
    r = ui.get("/admin/routes?number=5551234")
    assert f"takes <a href=\"/admin/routes/{route_id}\">route {route_id}</a>" in r.text
    assert "No route takes 9999" in ui.get("/admin/routes?number=9999").text
    assert ui.post(f"/admin/routes/{route_id}", {"action": "delete"}).status_code == 303
    assert ui.post("/admin/caller-names/5551234567", {"action": "delete"}).status_code == 303
    actions = [r[1] for r in audit_rows(site)]
    assert actions[-4:] == ["caller name set", "route add", "route remove", "caller name remove"]


class _ExtraPages:
    """A third-party plugin: a page of its own and a panel on every phone's page."""

    @hookimpl
    def autoprov_admin_pages(self):
        def hello(ui):
            from werkzeug.wrappers import Response

            return Response(f"hello {ui.user.username}", mimetype="text/plain")

        return [AdminPage("hello", "hello", hello, title="Hello", order=5)]

    @hookimpl
    def autoprov_admin_phone_sections(self):
        def broken(ui, mac):
            raise RuntimeError("boom")

        return [PhoneSection("Extra <panel>", lambda ui, mac: f"<p>extra for {mac}</p>", order=1),
                PhoneSection("Broken", broken, order=2)]


class _BrokenPages:
    @hookimpl
    def autoprov_admin_pages(self):
        raise RuntimeError("this plugin is broken")


def hook_autoprov_admin_pages(site):
    """Run as test_hook_autoprov_admin_pages by tests/test_plugins.py (every hook is tested there by name)."""
    site.plugins.register(_ExtraPages(), name="extra-pages")
    site.plugins.register(_BrokenPages(), name="broken-pages")
    client = Client(create_app(site))
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    a = Admin(client)
    assert client.get("/admin/hello").status_code == 303  # behind the login like every page
    assert a.login().headers["Location"] == "/admin/"
    assert client.get("/admin/").headers["Location"] == "/admin/hello"  # the first page of the navigation
    assert client.get("/admin/hello").text == "hello admin"
    assert ">Hello</a>" in client.get("/admin/phones").text
    assert any(b.name == "broken-pages" and b.value == "autoprov_admin_pages" for b in site.plugins.broken)


def hook_autoprov_admin_phone_sections(site):
    """Run as test_hook_autoprov_admin_phone_sections by tests/test_plugins.py."""
    site.plugins.register(_ExtraPages(), name="extra-pages")
    _phone_with_line(site)
    client = Client(create_app(site))
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    Admin(client).login()
    r = client.get(f"/admin/phones/{MAC}")
    assert r.status_code == 200
    assert "<h2>Extra &lt;panel&gt;</h2>" in r.text and f"<p>extra for {MAC}</p>" in r.text
    assert "This panel could not be shown" in r.text
    assert "Logs" in r.text and "Overrides" in r.text  # phonefiles' panels, without provisioning importing it


def test_mounted_below_a_prefix(site):
    """As Apache's ``WSGIScriptAlias /autoprov`` mounts it: links, redirects and cookies carry the prefix."""
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    client = Client(create_app(site))
    base = "http://prov.example.test/autoprov/"
    r = client.get("/admin/phones", base_url=base)
    assert r.headers["Location"] == "/autoprov/admin/login?next=%2Fadmin%2Fphones"
    page = client.get("/admin/login", base_url=base)
    assert 'href="/autoprov/admin/static/admin.css"' in page.text
    r = client.post("/admin/login", base_url=base, data={"csrf": csrf_of(page.text), "username": "admin",
                                                         "password": PASSWORD, "next": "/admin/fleet"})
    assert r.status_code == 303 and r.headers["Location"] == "/autoprov/admin/fleet"
    assert "Path=/autoprov/admin/" in r.headers["Set-Cookie"]
    r = client.get("/admin/fleet", base_url=base)
    assert r.status_code == 200 and 'href="/autoprov/admin/phones"' in r.text


def test_drift_says_whether_the_phone_has_the_config_it_would_get_now(site, ui, client):
    _phone_with_line(site)
    assert "never fetched" in ui.get(f"/admin/phones/{MAC}").text
    assert client.get(f"/prov/polycom_ip330/{MAC}-phone.cfg", headers=headers("polycom_ip330")).status_code == 200
    assert "up to date</span> it has had this config since" in ui.get(f"/admin/phones/{MAC}").text
    assert ui.post("/admin/extensions/1001", {"first_name": "Renamed", "in_directory": "1"}).status_code == 303
    assert "drifted</span>" in ui.get(f"/admin/phones/{MAC}").text
    fleet = ui.get("/admin/fleet").text
    assert re.search(r'Config drifted</h2>\s*<p class="stat">1</p>', fleet)
    assert client.get(f"/prov/polycom_ip330/{MAC}-phone.cfg", headers=headers("polycom_ip330")).status_code == 200
    assert "up to date</span>" in ui.get(f"/admin/phones/{MAC}").text


def test_import_of_a_file_with_a_hostile_name_shows_it_as_text(site, ui):
    # (Browsers send a quote or a newline of a file's name as %22 and %0A; Werkzeug's test client does not.)
    name = "fleet <script>alert('x')</script> & Zoë 東京.csv"
    body = "extension,secret,first_name\n3001,pw-3001-a,\"<b>Ann</b> & O'Neil\nZoë\"\n".encode()
    ui.get("/admin/import")
    upload = {"file": (io.BytesIO(body), name), "action": "check", "csrf": ui.token}
    status, page = import_finished(ui, ui.client.post("/admin/import", data=upload, content_type="multipart/form-data"))
    assert status["state"] == "checked" and status["error_count"] == 0
    assert "<script>" not in page.text and "<b>Ann" not in page.text
    assert "fleet &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Zoë 東京.csv" in page.text  # on one line
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; O&#39;Neil\nZoë" in page.text  # the cell as it is, newline and all
    listing = ui.get("/admin/import").text
    assert "fleet &lt;script&gt;" in listing and "<script>alert" not in listing
