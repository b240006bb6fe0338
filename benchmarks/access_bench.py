"""What the access policy costs a cached phone config: the WSGI application called in-process (no sockets, so
the policy's share is not lost in the network's noise), one phone's unchanged config, per policy:

    none         [access] credentials = "none": the network list alone (the default)
    proxy        the same behind a trusted proxy: X-Forwarded-For read and resolved
    basic        credentials = "phone", the phone's own login by Basic (one HMAC per request)
    digest       credentials = "phone", by Digest (MD5s and a nonce check per request)

    .venv/bin/python benchmarks/access_bench.py [--requests 20000] [--rounds 3]

Rounds are interleaved (none, proxy, basic, digest, none, ...) so a busy shared machine weighs on all alike;
it reports each policy's median microseconds per request over the rounds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autoprov.config import Settings  # noqa: E402
from autoprov.plugins import build_plugin_manager  # noqa: E402
from autoprov.provisioning import admin  # noqa: E402
from autoprov.provisioning.admin import ExtensionData  # noqa: E402
from autoprov.site import Site  # noqa: E402
from autoprov.web import create_app  # noqa: E402

MAC = "0004f2aabbcc"
PATH = f"/prov/polycom_ip330/{MAC}-phone.cfg"
UA = "FileTransport PolycomSoundPointIP-SPIP_330-UA/3.3.2.0413 Type/Application"


def make_site(directory: Path, credentials: str, proxies: list[str]) -> Site:
    settings = Settings()
    settings.database.url = f"sqlite:///{directory}/{credentials}-{len(proxies)}.db"
    settings.firmware.root = str(directory / "firmware")
    settings.access.credentials = credentials
    settings.access.trusted_proxies = proxies
    site = Site(settings, build_plugin_manager())
    site.init_database()
    with site.activated(), site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace"))
        admin.add_phone(site, MAC, "polycom_ip330", ["1001"])
    return site


def environ(extra: dict[str, str]) -> dict[str, object]:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": PATH, "QUERY_STRING": "", "SERVER_NAME": "bench",
           "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": UA,
           "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}
    env.update(extra)
    return env


def call(app, env: dict[str, object]) -> str:
    status = []
    body = app(dict(env), lambda s, h, exc_info=None: status.append(s))
    b"".join(body)
    return status[0]


def digest_header(site: Site, user: str, password: str) -> str:
    nonce = site.access._nonce()
    realm = site.settings.access.realm
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # noqa: S324
    ha2 = hashlib.md5(f"GET:{PATH}".encode()).hexdigest()  # noqa: S324
    response = hashlib.md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}".encode()).hexdigest()  # noqa: S324
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{PATH}", qop=auth, '
            f'nc=00000001, cnonce="abc", response="{response}", algorithm=MD5')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cases = {}
        cases["none"] = (make_site(directory, "none", []), {})
        cases["proxy"] = (make_site(directory, "none", ["127.0.0.1/32"]),
                          {"HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.1.2.3"})
        phone = make_site(directory, "phone", [])
        app = create_app(phone)
        assert call(app, environ({})).startswith("200")  # first contact: the login is made and handed over
        with phone.activated(), phone.db.connection_context():
            login = phone.access.phone_login(MAC)
        assert login is not None
        token = base64.b64encode(f"{login.user}:{login.password}".encode()).decode()
        cases["basic"] = (phone, {"HTTP_AUTHORIZATION": f"Basic {token}"})
        with phone.activated(), phone.db.connection_context():
            cases["digest"] = (phone, {"HTTP_AUTHORIZATION": digest_header(phone, login.user, login.password)})
        apps = {name: (create_app(site), environ(extra)) for name, (site, extra) in cases.items()}
        for name, (app, env) in apps.items():  # warm the caches; every policy must answer 200
            status = call(app, env)
            assert status.startswith("200"), (name, status)
        results: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(args.rounds):
            for name, (app, env) in apps.items():
                start = time.perf_counter()
                for _ in range(args.requests):
                    call(app, env)
                results[name].append((time.perf_counter() - start) / args.requests * 1e6)
        for name, times in results.items():
            print(f"{name:7s} median {statistics.median(times):6.1f} us/request "
                  f"(rounds: {', '.join(f'{t:.1f}' for t in times)})")
        for site, _ in cases.values():
            site.close()


if __name__ == "__main__":
    main()
