"""The access policy: who may fetch files holding secrets and who may upload, decided once per request.

Every phone-facing gate asks :meth:`AccessPolicy.decide` (``site.access``): phone configs and other files a
model declares ``secret`` (SIP passwords, a provisioning login, a user's own contacts and overrides), and
uploads (logs, overrides, contacts). The answer is a :class:`Decision`: allowed (and how the client was
admitted: "network", "credentials", "certificate"), or refused with 403 (its network is not admitted) or 401
and a challenge (credentials are required and missing or wrong), with a ``reason`` for sightings and audit.

1. The client address (:func:`client_address`): the peer, unless the peer is one of ``[access]
   trusted_proxies``; then the right-most address of ``X-Forwarded-For`` that is not a trusted proxy (else
   ``X-Real-IP``). A malformed header is ignored, and said in the sighting.
2. The network: ``[access] secrets_allowed_from`` for files holding secrets, ``uploads_allowed_from`` for
   uploads. Outside: 403.
3. Credentials (``[access] credentials`` = "site" or "phone"), for a phone's own secret files: the site-wide
   login, or (mode "phone") the phone's own. A phone that has never authenticated may fetch its config
   without credentials from an admitted network (its first contact: the config hands it its login through its
   model's mechanism, ``DeviceModel.provisioning_credentials``); once it has authenticated, a request
   without credentials gets 401. Basic and Digest (MD5) are parsed by Werkzeug.

Cheap on the hot path (phone configs are served from a cache at thousands per second): an address's
admission is remembered per address and rule (no network is parsed twice); a login is read from the
database once per change of the database (``site.renders``) and checked with one HMAC (``autoprov.credentials``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import peewee
from werkzeug.datastructures import Authorization, WWWAuthenticate
from werkzeug.wrappers import Request

from autoprov import credentials
from autoprov.clientcert import certificate_check
from autoprov.config import PRIVATE_NETWORKS, AccessSettings, Settings, in_networks
from autoprov.credentials import SITE, Login
from autoprov.logthrottle import log_throttled

if TYPE_CHECKING:
    from autoprov.phonepath import Served
    from autoprov.site import Site

log = logging.getLogger(__name__)

NETWORK, CREDENTIALS, CERTIFICATE = "network", "credentials", "certificate"
NONCE_LIFETIME = 300  # seconds a Digest nonce is accepted; then the phone is told stale=true and retries


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one request."""

    allowed: bool
    status: int  # 200 when allowed; 401 or 403 when refused
    reason: str  # one line for the sighting and the audit ("" for a file that needs no decision)
    address: str  # the client's address as the policy sees it (proxies resolved)
    admitted_by: str = ""  # NETWORK, CREDENTIALS or CERTIFICATE; "" when nothing was gated
    headers: tuple[tuple[str, str], ...] = ()  # e.g. WWW-Authenticate challenges of a 401
    problem: str = ""  # noted in the sighting even when allowed (a malformed proxy header)
    login: str = ""  # whose login admitted it: "site" or the phone's MAC


OPEN = Decision(True, 200, "", "")  # a file that holds no secret and is no upload: nothing to decide


# --- The client address ------------------------------------------------------------------------------------


def client_address(request: Request, settings: Settings) -> str:
    """The client's address: the peer, or what a trusted reverse proxy says it forwarded."""
    return _client(request, settings.access)[0]


def _client(request: Request, access: AccessSettings) -> tuple[str, str]:
    """(address, problem): problem names a malformed forwarding header, which is then ignored."""
    peer = request.remote_addr or ""
    if not access.trusted_proxies:
        return peer, ""
    proxies = tuple(access.trusted_proxies)
    if not in_networks(peer, proxies):
        return peer, ""
    environ = request.environ
    forwarded, real = environ.get("HTTP_X_FORWARDED_FOR"), environ.get("HTTP_X_REAL_IP")
    if forwarded:
        found = _forwarded_client(forwarded, proxies)
        if found is not None:
            return found, ""
        return peer, f"malformed X-Forwarded-For {forwarded[:80]!r} from the trusted proxy {peer}: ignored"
    if real:
        found = _address(real.strip())
        if found is not None:
            return found, ""
        return peer, f"malformed X-Real-IP {real[:80]!r} from the trusted proxy {peer}: ignored"
    return peer, ""


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _forwarded_client(header: str, proxies: tuple[str, ...]) -> str | None:
    """The right-most hop that is not a trusted proxy (the left-most if all are); None if any hop is not an
    address. Each proxy appends the address it received from, so only the right end can be believed."""
    hops = [_address(h.strip()) for h in header.split(",")]
    if not hops or any(h is None for h in hops):
        return None
    for hop in reversed(hops):
        assert hop is not None
        if not in_networks(hop, proxies):
            return hop
    return hops[0]


# --- The policy --------------------------------------------------------------------------------------------


@dataclass
class AccessPolicy:
    """The site's policy; ``site.access``. Settings are read per request, so a change made to them (tests,
    a reloaded configuration) applies at once; what is derived from them is cached by value."""

    site: Site
    _nonce_key: bytes | None = field(default=None, repr=False)

    @property
    def settings(self) -> AccessSettings:
        return self.site.settings.access

    def decide(self, request: Request, served: Served) -> Decision:
        rule = served.rule
        upload = request.method == "PUT" or (request.method == "HEAD" and "GET" not in rule.methods)
        # Mutual TLS first: a verified device certificate binds the client to its own phone's files.
        verdict = certificate_check(self.site, request, served)
        if not rule.secret and not upload and (verdict is None or verdict.allowed):
            return OPEN
        access = self.settings
        address, problem = _client(request, access)
        if verdict is not None:
            return Decision(verdict.allowed, 200 if verdict.allowed else verdict.status, verdict.reason, address,
                            CERTIFICATE if verdict.allowed else "", problem=problem)
        settings = self.site.settings
        # A write of a file holding secrets (overrides can re-point the phone's SIP server) must pass both lists.
        gates = []
        if rule.secret:
            networks = settings.secrets_networks
            # Named as the admin wrote it: the old name where only that one is set.
            where = "[http]" if networks is settings.http.secrets_allowed_from else "[access]"
            gates.append((networks, f"{where} secrets_allowed_from", "write secrets" if upload else "fetch secrets"))
        if upload:
            gates.append((access.uploads_allowed_from, "[access] uploads_allowed_from", "upload"))
        for networks, setting, what in gates:
            if not in_networks(address, tuple(networks)):
                return Decision(False, 403, f"{address} may not {what}, since {address} is not in {setting}", address,
                                problem=problem)
        if not rule.secret or access.credentials == "none" or served.mac is None:
            # A file with no MAC (a model's generated file) is what a factory-fresh phone reads first.
            admitted = " and ".join(setting for _, setting, _ in gates)
            return Decision(True, 200, f"{address} is in {admitted}", address, NETWORK, problem=problem)
        return self._credentials(request, served.mac, address, problem)

    def _credentials(self, request: Request, mac: str, address: str, problem: str) -> Decision:
        raw = request.environ.get("HTTP_AUTHORIZATION")
        phone = self.phone_login(mac)
        if not raw:
            if phone is None or not phone.confirmed:
                return Decision(True, 200, f"first contact of {mac} from {address}, admitted by its network "
                                           "(its config hands it its login)", address, NETWORK, problem=problem)
            return self._challenge(address, f"{address} sent no credentials for {mac}, which has its login",
                                   problem)
        candidates = [login for login in (self.site_login(), phone if self.settings.credentials == "phone" else None)
                      if login is not None]
        for login in candidates:  # the header this phone sent last time, already verified: no parsing, no hash
            if login.remembered(raw) and (phone is None or phone.confirmed):
                return Decision(True, 200, f"{address} authenticated as {login.user} (basic)", address, CREDENTIALS,
                                problem=problem, login=login.owner)
        auth = request.authorization  # parsed by Werkzeug; None if malformed
        if auth is None:
            return self._challenge(address, f"{address} sent a malformed Authorization header for {mac}", problem)
        stale = False
        for login in candidates:
            verdict = self._verify(auth, request, login)
            if isinstance(verdict, int) and not isinstance(verdict, bool):
                if auth.type == "basic":
                    login.remember(raw, verdict)
                if phone is not None and not phone.confirmed:
                    self._confirm(mac)
                return Decision(True, 200, f"{address} authenticated as {login.user} ({auth.type})", address,
                                CREDENTIALS, problem=problem, login=login.owner)
            stale = stale or verdict == "stale"
        return self._challenge(address, f"{address} sent wrong {auth.type} credentials for {mac} "
                                        f"(user {(auth.username or '')[:40]!r})", problem, stale)

    def _challenge(self, address: str, reason: str, problem: str, stale: bool = False) -> Decision:
        return Decision(False, 401, reason, address, headers=self.challenges(stale), problem=problem)

    # --- Logins (cached per change of the database) ----------------------------------------------------
    def site_login(self) -> Login | None:
        access = self.settings
        return self.site.renders.get(("access-login", SITE, access.realm, access.credentials_grace),
                                     lambda: credentials.load(SITE, access.realm, access.credentials_grace))

    def phone_login(self, mac: str) -> Login | None:
        """Phone ``mac``'s login when phones get logins (mode site or phone); None until its config was first
        rendered (a request for an unknown MAC creates nothing)."""
        access = self.settings
        if access.credentials == "none":
            return None
        return self.site.renders.get(("access-login", mac, access.realm, access.credentials_grace),
                                     lambda: credentials.load(mac, access.realm, access.credentials_grace))

    def handed_login(self, mac: str) -> tuple[str, str] | None:
        """The (user, password) phone ``mac``'s config hands it: its own (mode phone), the site's (mode site).
        Called when a phone in the database has its config rendered; makes the phone's row on first use (in
        mode site it records only when the phone first authenticated)."""
        access = self.settings
        if access.credentials == "none":
            return None
        own = self.phone_login(mac)
        if own is None:
            own = credentials.phone_login(mac, access.realm, access.credentials_grace)
            self.site.changes.forget()  # this thread's next request sees the new row, not a cached "none"
        login = self.site_login() if access.credentials == "site" else own
        return (login.user, login.password) if login is not None else None

    def _confirm(self, mac: str) -> None:
        try:
            with self.site.db.atomic():
                credentials.confirm(mac)
            self.site.changes.forget()
        except peewee.PeeweeException as exc:  # the phone got its answer; the next request tries again
            log_throttled(log, logging.WARNING, "access-confirm", "could not record %s's first authentication: %s",
                          mac, exc)

    # --- HTTP authentication ---------------------------------------------------------------------------
    def _verify(self, auth: Authorization, request: Request, login: Login) -> int | bool | str:
        """Which password matched (0 current, 1 previous), False, or "stale" (a Digest answer to an expired
        nonce, otherwise right)."""
        if auth.type == "basic" and "basic" in self.settings.auth_schemes:
            which = login.check_password(auth.username or "", auth.password or "")
            return False if which is None else which
        if auth.type != "digest" or "digest" not in self.settings.auth_schemes:
            return False
        given = auth.parameters
        user, nonce, uri, response = (given.get(k) or "" for k in ("username", "nonce", "uri", "response"))
        if not hmac.compare_digest(user.encode(), login.user.encode()) or given.get("realm") != self.settings.realm:
            return False
        # The request-target as sent (a path, with its query if any); request.url is built only if needed.
        if uri != request.path and uri != request.full_path.rstrip("?") and uri != request.url:
            return False
        if given.get("algorithm", "MD5").upper() != "MD5":
            return False
        ha2 = _md5(f"{request.method}:{uri}")
        qop = given.get("qop")
        for which, ha1 in enumerate(login.valid_ha1()):
            if qop == "auth":
                expected = _md5(f"{ha1}:{nonce}:{given.get('nc', '')}:{given.get('cnonce', '')}:auth:{ha2}")
            elif qop is None:
                expected = _md5(f"{ha1}:{nonce}:{ha2}")
            else:
                return False
            if hmac.compare_digest(expected.encode(), response.encode()):
                state = self._nonce_state(nonce)
                return which if state == "fresh" else "stale" if state == "expired" else False
        return False

    def challenges(self, stale: bool = False) -> tuple[tuple[str, str], ...]:
        realm = self.settings.realm
        out = []
        for scheme in self.settings.auth_schemes:
            if scheme == "digest":
                values = {"realm": realm, "qop": "auth", "algorithm": "MD5", "nonce": self._nonce()}
                if stale:
                    values["stale"] = "true"
                out.append(("WWW-Authenticate", WWWAuthenticate("digest", values).to_header()))
            else:
                out.append(("WWW-Authenticate", WWWAuthenticate("basic", {"realm": realm}).to_header()))
        return tuple(out)

    @property
    def nonce_key(self) -> bytes:
        # Shared through the database: a nonce one worker (or server) gave out is accepted by all.
        if self._nonce_key is None:
            self._nonce_key = credentials.nonce_key()
        return self._nonce_key

    def _nonce(self) -> str:
        stamp = str(int(time.time()))
        return f"{stamp}.{hmac.new(self.nonce_key, stamp.encode(), hashlib.sha256).hexdigest()[:32]}"

    def _nonce_state(self, nonce: str) -> str:
        """"fresh", "expired" (signed by a server of this site, too old: the client is told stale=true) or
        "forged"."""
        stamp, _, mac = nonce.partition(".")
        good = hmac.new(self.nonce_key, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not stamp.isdigit() or not hmac.compare_digest(good.encode(), mac.encode()):
            return "forged"
        return "fresh" if 0 <= time.time() - int(stamp) < NONCE_LIFETIME else "expired"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 (Digest's MD5, as phones speak it)


def _networks(networks: list[str], name: str) -> str:
    if not networks:
        return f"no one ({name} is empty)"
    if {"0.0.0.0/0", "::/0"} & set(networks):
        return f"ANY address ({name} admits everyone)"
    if tuple(networks) == PRIVATE_NETWORKS:
        return "private networks only (the default)"
    return ", ".join(networks)


def missing_site_login(site: Site) -> str | None:
    """A warning for ``autoprov serve`` when mode "site" has no site login to hand out (None: fine, or the
    database cannot tell now; the schema warning says why)."""
    if site.settings.access.credentials != "site":
        return None
    try:
        with site.activated(), site.db.connection_context():
            if credentials.load(SITE, site.settings.access.realm, 0) is not None:
                return None
    except peewee.PeeweeException:
        return None
    return ("WARNING: [access] credentials = \"site\" but no site login is set: phones are handed none and "
            "stay admitted by their network alone; run `autoprov credentials site set`")


def describe(settings: Settings) -> list[str]:
    """The whole policy, a line per part, for ``autoprov serve``'s start-up message."""
    access = settings.access
    proxies = ", ".join(access.trusted_proxies) if access.trusted_proxies else "none (the peer's address is used)"
    lines = [
        "phone configs and other files holding secrets: "
        f"{_networks(settings.secrets_networks, 'secrets_allowed_from')}",
        f"uploads (logs, overrides, contacts): {_networks(access.uploads_allowed_from, 'uploads_allowed_from')}",
        f"trusted proxies (X-Forwarded-For, X-Real-IP believed from): {proxies}",
    ]
    schemes = " and ".join(s.capitalize() for s in access.auth_schemes)
    if access.credentials == "none":
        lines.append("HTTP credentials: none required ([access] credentials = \"none\"): the networks alone decide")
    else:
        whose = "the site-wide login" if access.credentials == "site" else "each phone's own login (or the site's)"
        lines.append(f"HTTP credentials: {whose}, by {schemes} (realm {access.realm!r}); a phone's first contact "
                     f"from an admitted network needs none; a rotated password stays valid "
                     f"{access.credentials_grace} s")
        if "basic" in access.auth_schemes and not settings.public_url.startswith("https:"):
            lines.append("WARNING: Basic over plain HTTP shows the password to anyone on the path: serve phones over "
                         "TLS (public_url https://) or use auth_schemes = [\"digest\"]")
    return lines
