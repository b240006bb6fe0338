"""CSV import jobs of the admin UI over real HTTP, against a real ``autoprov serve`` (gunicorn, 2 workers): the
status URL a page polls, and a second import refused while one runs, whichever worker gets it. The forms'
checks are in test_admin_ui.py, the pages in Chromium in test_admin_ui_browser.py."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
import requests

from autoprov.adminui.users import create_user
from autoprov.provisioning.import_jobs import ImportJob, ImportJobError
from autoprov.tables import Extension, utcnow

PASSWORD = "correct horse battery staple"
HOSTILE = "<script>alert('x')</script>&\"é"


def csrf_of(html: str) -> str:
    return re.findall(r'name="csrf" value="([^"]+)"', html)[-1]


@pytest.fixture
def admin(server, site) -> requests.Session:
    """A logged-in session on the real server."""
    with site.db.connection_context():
        create_user("admin", PASSWORD)
    s = requests.Session()
    page = s.get(server + "/admin/login", timeout=30)
    r = s.post(server + "/admin/login", data={"csrf": csrf_of(page.text), "username": "admin", "password": PASSWORD},
               allow_redirects=False, timeout=30)
    assert r.status_code == 303
    s.token = csrf_of(s.get(server + "/admin/import", timeout=30).text)  # type: ignore[attr-defined]
    return s


def csv_of(rows: int, bad: dict[int, str] | None = None) -> bytes:
    """``rows`` rows below the header; ``bad``: line number -> a MAC that is not one."""
    out = ["extension,secret,first_name,mac,model"]
    for i in range(rows):
        line = i + 2
        mac = (bad or {}).get(line, f"0004f2{i:06x}")
        quoted = mac.replace('"', '""')
        out.append(f'{20000 + i},pw-{i:08d},User {i},"{quoted}",polycom_ip330')
    return ("\n".join(out) + "\n").encode()


def upload(server: str, s: requests.Session, body: bytes, action: str = "check") -> requests.Response:
    return s.post(server + "/admin/import", data={"csrf": s.token, "action": action},  # type: ignore[attr-defined]
                  files={"file": ("fleet.csv", body, "text/csv")}, allow_redirects=False, timeout=60)


def test_status_url_reports_rows_checked_and_each_error_once_as_found(server, admin, site):
    bad = {10: "not-a-mac", 1500: HOSTILE, 2999: "00:04:f2"}
    r = upload(server, admin, csv_of(3000, bad))
    assert r.status_code == 303, r.text
    job = server + r.headers["Location"]
    seen: list[dict] = []
    checked, after = 0, 0
    deadline = time.monotonic() + 120
    while True:
        status = admin.get(f"{job}/status", params={"after": after}, timeout=30)
        assert status.headers["Content-Type"] == "application/json"
        assert status.headers["Cache-Control"] == "no-store"
        body = status.json()
        assert body["rows_total"] in (None, 3000)
        assert checked <= body["rows_checked"] <= 3000  # never goes back, never past the file
        checked = body["rows_checked"]
        seen += body["errors"]
        after = max([after] + [e["id"] for e in body["errors"]])
        if not body["running"]:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["state"] == "checked" and body["rows_checked"] == 3000 and body["error_count"] == 3
    assert sorted(e["line"] for e in seen) == [10, 1500, 2999]  # each error once, with its line
    assert len({e["id"] for e in seen}) == 3
    hostile = next(e for e in seen if e["line"] == 1500)
    # JSON carries the text as it is (the page's script shows it as text): no HTML escaping, no mangling.
    assert "'<script>alert(\\'x\\')</script>&\"é'" in hostile["message"]
    # From the start again: everything; the page of the job lists them (escaped) and offers no import.
    assert len(admin.get(f"{job}/status", timeout=30).json()["errors"]) == 3
    page = admin.get(job, timeout=30)
    assert "3 error(s) in 3,000 row(s)" in page.text and "Import 3000" not in page.text
    assert "&lt;script&gt;alert(" in page.text and "&lt;/script&gt;&amp;&#34;é" in page.text
    assert "<script>alert" not in page.text
    with site.db.connection_context():
        assert not Extension.select().exists()
    # No such job; no session: the login page, not a status.
    assert admin.get(server + "/admin/import/999999/status", timeout=30).status_code == 404
    anonymous = requests.get(f"{job}/status", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 303 and "/admin/login" in anonymous.headers["Location"]


def test_a_10000_row_file_is_checked_then_imported_all_or_nothing(server, admin, site):
    r = upload(server, admin, csv_of(10000), action="import")
    assert r.status_code == 303, r.text
    job = server + r.headers["Location"]
    deadline = time.monotonic() + 300
    while (body := admin.get(f"{job}/status", timeout=30).json())["running"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["state"] == "imported", body
    assert body["result"] == "Imported 10000 extension(s), 10000 phone(s) and 10000 line(s)."
    with site.db.connection_context():
        assert Extension.select().count() == 10000
        assert ImportJob.get_by_id(int(job.rsplit("/", 1)[1])).text == ""  # no copy of the secrets kept


def test_a_second_import_while_one_runs_is_refused_and_a_dead_one_does_not_block(server, admin, site):
    # Another worker's job, running: its row says so (the unique "running" column holds the lock).
    with site.db.connection_context():
        other = ImportJob.create(username="bob", source="fleet <b>&</b>.csv", text="extension\n", state="checking",
                                 running=1, rows_total=10000, rows_checked=1234)
        checked = ImportJob.create(username="admin", source="pasted text", text="extension,secret\n9001,pw-9001-x\n",
                                   state="checked", rows_total=1, rows_checked=1)
    pasted = "extension,secret\n9002,pw-9002-x\n"
    r = admin.post(server + "/admin/import", data={"csrf": admin.token, "action": "check", "text": pasted},
                   allow_redirects=False, timeout=30)
    assert r.status_code == 409
    assert "Another import is running; this one was not started and nothing was saved." in r.text
    assert "bob started it" in r.text and "1,234 of 10,000 rows checked" in r.text
    assert "fleet &lt;b&gt;&amp;&lt;/b&gt;.csv" in r.text
    assert f'href="/admin/import/{other.id}"' in r.text
    assert pasted in r.text  # the form keeps what was typed
    r = admin.post(f"{server}/admin/import/{checked.id}", data={"csrf": admin.token, "action": "import"},
                   allow_redirects=False, timeout=30)
    assert r.status_code == 409 and "Another import is running" in r.text
    with site.db.connection_context():
        assert ImportJob.select().count() == 2 and not Extension.select().exists()
        assert ImportJob.get_by_id(checked.id).state == "checked"
    assert "An import is running" in admin.get(server + "/admin/import", timeout=30).text
    # The worker of that job died: no progress for minutes. The next import marks it failed and runs.
    with site.db.connection_context():
        ImportJob.update(updated=utcnow() - dt.timedelta(minutes=3)).where(ImportJob.id == other.id).execute()
    r = admin.post(f"{server}/admin/import/{checked.id}", data={"csrf": admin.token, "action": "import"},
                   allow_redirects=False, timeout=30)
    assert r.status_code == 303
    deadline = time.monotonic() + 60
    while (body := admin.get(f"{server}/admin/import/{checked.id}/status", timeout=30).json())["running"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["state"] == "imported"
    with site.db.connection_context():
        dead = ImportJob.get_by_id(other.id)
        assert dead.state == "failed" and dead.running is None and "server stopped" in dead.problem
        assert Extension.get(Extension.user_id == "9001")
        assert not ImportJobError.select().exists()
    page = admin.get(f"{server}/admin/import/{other.id}", timeout=30)
    assert "Nothing was imported." in page.text and "The server stopped while this job ran" in page.text
