"""The access policy against a real ``autoprov serve``: client addresses through proxies, the two network
allowlists, 401/403 and their headers, Basic and Digest as phones send them, per-phone logins handed to each
vendor's phones, and rotation.

Loopback has many addresses: the server listens on 127.0.0.1 and a test connects from 127.0.0.1 or 127.0.0.2,
so one server sees a client inside and one outside its allowlists.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.datastructures import WWWAuthenticate

from autoprov import credentials
from autoprov.config import ConfigError, load_settings
from autoprov.credentials import AccessCredential
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.tables import Sighting
from tests.conftest import cli, free_port, running_server, write_config
from tests.phones import user_agent
from tests.test_grandstream import pvalues
from tests.test_grandstream import user_agent as gxp_user_agent
from tests.test_yealink import parse_cfg
from tests.test_yealink import user_agent as yealink_user_agent

POLYCOM = "0004f2aabbcc"
OTHER_POLYCOM = "0004f2aabbdd"
YEALINK = "001565aabb01"
GRANDSTREAM = "000b82aabbcc"
IP330 = {"User-Agent": user_agent("polycom_ip330", kind="Application")}
PHONE_CFG = f"/prov/polycom_ip330/{POLYCOM}-phone.cfg"
# What every vendor's format must carry as written: quotes, markup, a comment sign, spaces, non-ASCII, a colon.
HOSTILE = "p\"'<&>#=; x:%NULL%é\\"
INSIDE, OUTSIDE = "127.0.0.1", "127.0.0.2"


@contextmanager
def serving(tmp_path: Path, site, access: str) -> Iterator[tuple[str, Callable[[], str]]]:
    """A real ``autoprov serve`` whose configuration has ``access`` as its [access] section; yields its URL and
    a function reading what it has printed so far."""
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", site.settings, port)
    config.write_text(config.read_text() + f"[access]\n{access}\n", encoding="utf-8")
    log = tempfile.TemporaryFile()

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    with running_server(config, port, log=log) as url:
        yield url, output


def fetch(url: str, path: str, headers: dict[str, str], source: str = INSIDE, method: str = "GET",
          body: bytes | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request over a real connection from the loopback address ``source``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def digest_fetch(url: str, path: str, user: str, password: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A GET answered with a Digest challenge and retried as a client library does (urllib's handler)."""
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, user, password)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(manager))
    try:
        with opener.open(urllib.request.Request(url + path, headers=headers), timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def login_params(body: bytes) -> dict[str, str]:
    """The <device .../> element of a Polycom phone config: the login it hands the phone."""
    device = ET.fromstring(body).find("device")
    assert device is not None, body
    return dict(device.attrib)


def challenges(headers: http.client.HTTPMessage) -> dict[str, WWWAuthenticate]:
    found = [WWWAuthenticate.from_header(h) for h in headers.get_all("WWW-Authenticate") or []]
    return {c.type: c for c in found if c is not None}


@pytest.fixture
def phones(site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace"))
    admin.add_extension(ExtensionData("1002", "pw-1002", "Bob", "Byte"))
    admin.add_extension(ExtensionData("1003", "pw-1003", "Cy", "Cell"))
    admin.add_extension(ExtensionData("1004", "pw-1004", "Di", "Dial"))
    admin.add_phone(site, POLYCOM, "polycom_ip330", ["1001"])
    admin.add_phone(site, OTHER_POLYCOM, "polycom_ip330", ["1002"])
    admin.add_phone(site, YEALINK, "yealink_t46s", ["1003"])
    admin.add_phone(site, GRANDSTREAM, "grandstream_gxp2160", ["1004"])


def sighting(agent: str) -> Sighting:
    """The server's sighting of ``agent`` once its buffer has written it (polled, with a deadline)."""
    deadline = time.monotonic() + 10
    while True:
        found = Sighting.get_or_none(Sighting.user_agent == agent)
        if found is not None or time.monotonic() > deadline:
            assert found is not None, f"no sighting of {agent!r}"
            return found
        time.sleep(0.05)


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(tmp_path, site, phones):
    access = f'trusted_proxies = ["{INSIDE}/32"]\nsecrets_allowed_from = ["10.0.0.0/8"]'
    with serving(tmp_path, site, access) as (url, output):
        # From the trusted proxy: the right-most hop that is not a proxy is the client.
        assert fetch(url, PHONE_CFG, IP330 | {"X-Forwarded-For": "10.1.2.3"})[0] == 200
        assert fetch(url, PHONE_CFG, IP330 | {"X-Forwarded-For": "203.0.113.5, 10.1.2.3"})[0] == 200
        assert fetch(url, PHONE_CFG, IP330 | {"X-Forwarded-For": "10.1.2.3, 127.0.0.1"})[0] == 200
        # A client that puts an inside address first is still the outsider the proxy saw.
        status, _, body = fetch(url, PHONE_CFG, IP330 | {"X-Forwarded-For": "10.1.2.3, 203.0.113.5"})
        assert status == 403 and b"pw-1001" not in body
        assert fetch(url, PHONE_CFG, IP330 | {"X-Real-IP": "10.9.9.9"})[0] == 200
        assert fetch(url, PHONE_CFG, IP330 | {"X-Real-IP": "203.0.113.9"})[0] == 403
        # Not from a trusted proxy: the headers are not believed.
        assert fetch(url, PHONE_CFG, IP330 | {"X-Forwarded-For": "10.1.2.3"}, source=OUTSIDE)[0] == 403
        assert fetch(url, PHONE_CFG, IP330 | {"X-Real-IP": "10.1.2.3"}, source=OUTSIDE)[0] == 403
        # Malformed: ignored (the peer, outside, is refused), said in the sighting, never a 500.
        for bad in ("10.1.2.3, not-an-address", "10.1.2.3:5060", ",", "10.1.2.3\t, ::ffff:zz"):
            status, headers, body = fetch(url, PHONE_CFG, IP330 | {"X-Forwarded-For": bad})
            assert status == 403 and b"pw-1001" not in body, bad
            assert headers["Content-Type"].startswith("text/plain")
        assert fetch(url, PHONE_CFG, IP330 | {"X-Real-IP": "10.1.2"})[0] == 403
        # The sighting records the client the proxy forwarded, not the proxy.
        another = {"User-Agent": user_agent("polycom_ip330", version="4.0.1.1")}
        assert fetch(url, PHONE_CFG, another | {"X-Forwarded-For": "10.1.2.3"})[0] == 200
        seen = sighting(another["User-Agent"])
        assert (seen.ip, seen.problem) == ("10.1.2.3", "")
        problems = output()
    assert "malformed X-Forwarded-For '10.1.2.3, not-an-address' from the trusted proxy 127.0.0.1: ignored" in problems
    assert "malformed X-Real-IP '10.1.2' from the trusted proxy 127.0.0.1" in problems


def test_secrets_and_uploads_have_their_own_allowlists(tmp_path, site, phones):
    access = f'secrets_allowed_from = ["{INSIDE}/32"]\nuploads_allowed_from = ["{OUTSIDE}/32"]'
    log = f"/prov/polycom_ip330/logs/{POLYCOM}-app.log"
    line = b"1015152006|sip  |3|00|hello\n"
    with serving(tmp_path, site, access) as (url, output):
        assert fetch(url, PHONE_CFG, IP330)[0] == 200
        status, headers, body = fetch(url, PHONE_CFG, IP330, source=OUTSIDE)
        assert status == 403 and b"pw-1001" not in body and "WWW-Authenticate" not in headers
        assert b"secrets_allowed_from" in body
        # Log uploads follow uploads_allowed_from alone: the outside address may, the inside one may not.
        status, _, body = fetch(url, log, IP330, method="PUT", body=line)
        assert status == 403 and b"uploads_allowed_from" in body
        assert fetch(url, log, IP330, source=OUTSIDE, method="PUT", body=line)[0] == 200
        assert fetch(url, log, IP330, source=OUTSIDE, method="HEAD")[0] == 200
        # An override is an upload holding secrets: it must pass both lists, which no address does here.
        override = f"/prov/polycom_ip330/overrides/{POLYCOM}-phone.cfg"
        evil = b'<PHONE_CONFIG><OVERRIDES voIpProt.server.1.address="evil.example"/></PHONE_CONFIG>'
        for source in (INSIDE, OUTSIDE):
            assert fetch(url, override, IP330, source=source, method="PUT", body=evil)[0] == 403
        # Files holding nothing secret are anyone's.
        assert fetch(url, "/prov/polycom_ip330/site.cfg", IP330, source=OUTSIDE)[0] == 200
        printed = output()
    assert f"{OUTSIDE} may not fetch secrets, since {OUTSIDE} is not in [access] secrets_allowed_from" in printed
    assert f"{INSIDE} may not upload, since {INSIDE} is not in [access] uploads_allowed_from" in printed
    assert f"access: phone configs and other files holding secrets: {INSIDE}/32" in printed
    assert f"access: uploads (logs, overrides, contacts): {OUTSIDE}/32" in printed
    assert "access: trusted proxies (X-Forwarded-For, X-Real-IP believed from): none" in printed
    assert 'access: HTTP credentials: none required ([access] credentials = "none")' in printed


def test_per_phone_logins_basic_digest_and_rotation(tmp_path, site, phones):
    access = (f'secrets_allowed_from = ["{INSIDE}/32"]\ncredentials = "phone"\ncredentials_grace = 3600\n'
              'auth_schemes = ["digest", "basic"]\nrealm = "phones"')
    with serving(tmp_path, site, access) as (url, output):
        # First contact, from the phones' network: no credentials needed, and the config hands over the login.
        status, _, body = fetch(url, PHONE_CFG, IP330)
        assert status == 200 and b"pw-1001" in body
        login = login_params(body)
        assert login["device.set"] == login["device.prov.user.set"] == login["device.prov.password.set"] == "1"
        user, password = login["device.prov.user"], login["device.prov.password"]
        assert user == POLYCOM and len(password) >= 20
        # The phone sends it (Basic, a real phone's User-Agent): admitted, and from now on it must.
        assert fetch(url, PHONE_CFG, IP330 | basic(user, password))[0] == 200
        status, headers, body = fetch(url, PHONE_CFG, IP330)
        assert status == 401 and b"pw-1001" not in body
        offered = challenges(headers)
        assert set(offered) == {"digest", "basic"}
        assert offered["digest"]["realm"] == offered["basic"]["realm"] == "phones"
        assert offered["digest"]["qop"] == "auth" and offered["digest"]["algorithm"] == "MD5"
        assert offered["digest"]["nonce"]
        assert [h.split()[0] for h in headers.get_all("WWW-Authenticate")] == ["Digest", "Basic"]
        # Wrong password, another phone's login, a malformed header: 401, nothing leaked.
        assert fetch(url, PHONE_CFG, IP330 | basic(user, password + "x"))[0] == 401
        other = login_params(fetch(url, f"/prov/polycom_ip330/{OTHER_POLYCOM}-phone.cfg", IP330)[2])
        other_login = other["device.prov.user"], other["device.prov.password"]
        assert fetch(url, PHONE_CFG, IP330 | basic(*other_login))[0] == 401
        for bad in ("Basic !!!", "Basic", "Digest", "Bearer x", "Digest username=\"x"):
            status, _, body = fetch(url, PHONE_CFG, IP330 | {"Authorization": bad})
            assert status == 401 and b"pw-1001" not in body, bad
        # Right credentials from a network not admitted: 403, no challenge.
        status, headers, _ = fetch(url, PHONE_CFG, IP330 | basic(user, password), source=OUTSIDE)
        assert status == 403 and "WWW-Authenticate" not in headers
        # Digest, as a client library answers the challenge.
        status, body = digest_fetch(url, PHONE_CFG, user, password, IP330)
        assert status == 200 and b"pw-1001" in body
        assert digest_fetch(url, PHONE_CFG, user, "wrong", IP330)[0] == 401

        # Rotation: old and new both valid during the grace period...
        assert cli("credentials", "rotate", POLYCOM, config=tmp_path / "autoprov.toml").returncode == 0
        status, _, body = fetch(url, PHONE_CFG, IP330 | basic(user, password))
        assert status == 200
        new = login_params(body)["device.prov.password"]
        assert new != password
        assert fetch(url, PHONE_CFG, IP330 | basic(user, new))[0] == 200
        assert digest_fetch(url, PHONE_CFG, user, password, IP330)[0] == 200
        # ... then only the new one (the rotation moved back past the grace period).
        with site.db.atomic():
            (AccessCredential.update(rotated=credentials.utcnow() - dt.timedelta(seconds=3601))
             .where(AccessCredential.owner == POLYCOM).execute())
        assert fetch(url, PHONE_CFG, IP330 | basic(user, password))[0] == 401
        assert digest_fetch(url, PHONE_CFG, user, password, IP330)[0] == 401
        assert fetch(url, PHONE_CFG, IP330 | basic(user, new))[0] == 200

        # The site-wide login opens every phone's files too.
        cli("credentials", "site", "set", "--user", "prov", "--password", "site secret",
            config=tmp_path / "autoprov.toml")
        assert fetch(url, PHONE_CFG, IP330 | basic("prov", "site secret"))[0] == 200
        printed = output()
    assert "access: HTTP credentials: each phone's own login (or the site's), by Digest and Basic" in printed
    assert "WARNING: Basic over plain HTTP" in printed
    assert f"(401): {INSIDE} sent no credentials for {POLYCOM}" in printed
    assert f"(401): {INSIDE} sent wrong basic credentials for {POLYCOM} (user '{POLYCOM}')" in printed


def test_each_vendor_is_handed_its_login_quoted_as_its_format_needs(tmp_path, site, phones):
    access = 'credentials = "phone"'
    with site.db.atomic():
        for mac in (POLYCOM, YEALINK, GRANDSTREAM):
            credentials.rotate(mac, password=HOSTILE, user=mac)
    yealink = {"User-Agent": yealink_user_agent("yealink_t46s", YEALINK)}
    gxp = {"User-Agent": gxp_user_agent(mac=GRANDSTREAM)}
    with serving(tmp_path, site, access) as (url, _):
        status, _, body = fetch(url, PHONE_CFG, IP330 | basic(POLYCOM, HOSTILE))
        assert status == 200
        login = login_params(body)
        assert (login["device.prov.user"], login["device.prov.password"]) == (POLYCOM, HOSTILE)
        status, _, body = fetch(url, f"/{YEALINK}.cfg", yealink | basic(YEALINK, HOSTILE))
        assert status == 200
        cfg = parse_cfg(body)
        assert cfg["static.auto_provision.server.username"] == YEALINK
        assert cfg["static.auto_provision.server.password"] == HOSTILE
        status, _, body = fetch(url, f"/cfg{GRANDSTREAM}.xml", gxp | basic(GRANDSTREAM, HOSTILE))
        assert status == 200
        _, values = pvalues(body)
        assert (values[1360], values[1361]) == (GRANDSTREAM, HOSTILE)


def test_a_model_without_a_mechanism_hands_nothing(site):
    from autoprov.devices import DeviceModel

    assert DeviceModel.provisioning_credentials(None, "u", "p") is None  # type: ignore[arg-type]
    assert site.models["polycom_ip330"].provisioning_credentials("u", "p")["device.prov.user"] == "u"


def test_the_old_name_of_the_secrets_allowlist_still_reads(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text('[http]\nsecrets_allowed_from = ["10.0.0.0/8"]\n')
    settings = load_settings(old, environ={})
    assert settings.secrets_networks == ["10.0.0.0/8"] and settings.may_fetch_secrets("10.1.1.1")
    new = tmp_path / "new.toml"
    new.write_text('[access]\nsecrets_allowed_from = ["10.0.0.0/8"]\n')
    assert load_settings(new, environ={}).secrets_networks == ["10.0.0.0/8"]
    both = tmp_path / "both.toml"
    both.write_text('[http]\nsecrets_allowed_from = ["10.0.0.0/8"]\n[access]\nsecrets_allowed_from = ["10.9.0.0/16"]\n')
    with pytest.raises(ConfigError, match="keep one"):
        load_settings(both, environ={})
    for bad, message in (('trusted_proxies = ["proxy"]', "access.trusted_proxies"),
                         ('credentials = "maybe"', "access.credentials"),
                         ('auth_schemes = ["ntlm"]', "access.auth_schemes"),
                         ('realm = "a\\"b"', "access.realm")):
        path = tmp_path / "bad.toml"
        path.write_text(f"[access]\n{bad}\n")
        with pytest.raises(ConfigError, match=message):
            load_settings(path, environ={})


def digest_header(user: str, password: str, realm: str, nonce: str, path: str) -> dict[str, str]:
    """A Digest answer (qop=auth, MD5) computed as a phone computes it, for a nonce the test chose."""
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # noqa: S324
    ha2 = hashlib.md5(f"GET:{path}".encode()).hexdigest()  # noqa: S324
    answer = hashlib.md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}".encode()).hexdigest()  # noqa: S324
    return {"Authorization": f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{path}", '
                             f'qop=auth, nc=00000001, cnonce="c0ffee", response="{answer}", algorithm=MD5'}


def test_site_login_is_handed_to_phones_and_an_old_nonce_is_stale(tmp_path, site, phones):
    config_path = tmp_path / "autoprov.toml"
    with serving(tmp_path, site, 'credentials = "site"') as (url, output):
        assert "no site login is set: phones are handed none" in output()
        out = cli("credentials", "site", "set", "--user", "prov", config=config_path).stdout
        assert "site login: user prov password " in out and "all 4 phone(s) get it" in out
        password = out.split("password ")[1].split(";")[0]
        status, _, body = fetch(url, PHONE_CFG, IP330)  # first contact: handed the site login
        login = login_params(body)
        assert status == 200 and (login["device.prov.user"], login["device.prov.password"]) == ("prov", password)
        assert fetch(url, PHONE_CFG, IP330 | basic("prov", password))[0] == 200
        assert fetch(url, PHONE_CFG, IP330)[0] == 401
        # Mode "site": a phone's own login is not accepted, only the site's.
        own = AccessCredential.get(AccessCredential.owner == POLYCOM)
        assert fetch(url, PHONE_CFG, IP330 | basic(own.user, own.password))[0] == 401
        # A Digest answer to a nonce the server signed 400 s ago: right, but stale.
        key = AccessCredential.get(AccessCredential.owner == credentials.NONCE_KEY).user.encode()
        stamp = str(int(time.time()) - 400)
        old = f"{stamp}.{hmac.new(key, stamp.encode(), hashlib.sha256).hexdigest()[:32]}"
        status, headers, _ = fetch(url, PHONE_CFG, IP330 | digest_header("prov", password, "autoprov", old, PHONE_CFG))
        assert status == 401 and challenges(headers)["digest"].get("stale") == "true"
        fresh = challenges(headers)["digest"]["nonce"]
        auth = digest_header("prov", password, "autoprov", fresh, PHONE_CFG)
        assert fetch(url, PHONE_CFG, IP330 | auth)[0] == 200
        # A nonce the server never signed is refused, not stale.
        forged = digest_header("prov", password, "autoprov", f"{int(time.time())}.{'0' * 32}", PHONE_CFG)
        status, headers, _ = fetch(url, PHONE_CFG, IP330 | forged)
        assert status == 401 and challenges(headers)["digest"].get("stale") is None


def test_credentials_commands(tmp_path, site, phones):
    config = write_config(tmp_path / "autoprov.toml", site.settings, free_port())
    config.write_text(config.read_text() + '[access]\ncredentials = "phone"\n', encoding="utf-8")
    with site.db.atomic():
        credentials.phone_login(POLYCOM, "autoprov", 60)
    shown = cli("credentials", "show", config=config).stdout
    assert f"{POLYCOM}: user {POLYCOM} password ***; rotated" in shown and "not yet authenticated" in shown
    password = AccessCredential.get(AccessCredential.owner == POLYCOM).password
    assert password not in shown and password in cli("credentials", "show", POLYCOM, "--reveal", config=config).stdout
    out = cli("credentials", "rotate", "--all", config=config).stdout
    assert f"rotated 1 phone login(s): {POLYCOM}; the old passwords stay valid 604800 s" in out
    assert "previous password valid until" in cli("credentials", "show", config=config).stdout
    assert cli("credentials", "rotate", "0004f2000000", config=config, check=False).returncode == 1
    assert cli("credentials", "rotate", config=config, check=False).returncode == 2
    for bad in ("a\nb", " lead", "", "fernet:gAAAA-looks-sealed"):
        refused = cli("credentials", "site", "set", "--password", bad, config=config, check=False)
        assert refused.returncode == 1 and "the password" in refused.stderr, bad
    refused = cli("credentials", "site", "set", "--user", "a:b", config=config, check=False)
    assert refused.returncode == 1 and "colon" in refused.stderr
    assert not AccessCredential.select().where(AccessCredential.owner == credentials.SITE).exists()


def test_render_and_the_admin_view_show_what_the_phone_is_handed(tmp_path, site, phones):
    """`autoprov render` and the admin page render the config with the phone's login, as it is served: the
    admin page's drift check compares the two, and masks the login's password like a SIP password."""
    from autoprov.provisioning.rendered import MASK, rendered_files
    from autoprov.tables import Phone

    config = write_config(tmp_path / "autoprov.toml", site.settings, free_port())
    config.write_text(config.read_text() + '[access]\ncredentials = "phone"\n', encoding="utf-8")
    printed = cli("render", POLYCOM, config=config).stdout
    password = AccessCredential.get(AccessCredential.owner == POLYCOM).password
    assert login_params(printed.encode())["device.prov.password"] == password
    site.settings.access.credentials = "phone"
    (own,) = [f for f in rendered_files(site, Phone.get(Phone.mac == POLYCOM)) if f.per_phone]
    assert login_params(own.body.encode())["device.prov.password"] == password
    assert password in own.secrets and MASK not in own.body
