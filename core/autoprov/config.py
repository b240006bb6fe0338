"""Configuration: one TOML file plus environment overrides.

The file is ``--config PATH``, else ``$AUTOPROV_CONFIG``, else ``/etc/autoprov/autoprov.toml`` if it exists;
with none, the embedded defaults below apply (a SQLite database and firmware under ``./var``).
Environment overrides: ``AUTOPROV_DATABASE_URL``, ``AUTOPROV_PUBLIC_URL``, ``AUTOPROV_FIRMWARE_ROOT``.

Relative paths written in the file (a ``sqlite:///`` database, ``[firmware] root``) are relative to the file's
own directory, so the command line and the service (working directory ``/`` under systemd) agree; the
embedded defaults and the environment overrides are relative to the working directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONFIG_PATH = Path("/etc/autoprov/autoprov.toml")

# RFC 1918, loopback, link-local, carrier-grade NAT, and IPv6 unique-local, link-local and loopback.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
                    "100.64.0.0/10", "fc00::/7", "fe80::/10", "::1/128")


class ConfigError(ValueError):
    """The configuration file or an override is invalid; the message names the setting."""


@dataclass
class DatabaseSettings:
    url: str = "sqlite:///var/autoprov.db"


@dataclass
class HttpSettings:
    # The base URL phones use to reach this server (what DHCP option 66/160 carries).
    public_url: str = "http://127.0.0.1:8080"
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 2
    threads: int = 8
    # `autoprov serve`'s HTTP server: "granian" (a Rust front that reads whole requests before a Python thread
    # sees them: faster, and slow clients hold no thread) or "gunicorn" (gthread workers; the only one that
    # tells a chunked upload cut off half-way from a whole one, see docs/uploads.md).
    server: str = "granian"
    # Seconds a phone is told to wait when the database is down.
    retry_after: int = 30
    # Networks (CIDR) allowed to fetch files holding SIP passwords (<mac>-phone.cfg) and the phones' own
    # overrides and contacts. Safe by default: private, loopback and link-local networks only (a server
    # reachable from the internet does not hand secrets to it); ["0.0.0.0/0", "::/0"] admits anyone, and an
    # empty list no one.
    secrets_allowed_from: list[str] = field(default_factory=lambda: list(PRIVATE_NETWORKS))
    # Seconds between two reads of the database's change counter: a change made anywhere (another process,
    # another server) is served within this bound. 0: read it on every request that uses a cached render.
    change_check_interval: float = 1.0
    # Rendered files and lookups kept per process (a few KB each).
    render_cache_entries: int = 20000
    # Seconds between two writes of buffered sightings (a crash loses at most this much "last seen").
    sighting_flush_interval: float = 2.0
    # Distinct phones a sighting buffer holds between two writes; more are counted and dropped.
    sighting_buffer_limit: int = 10000
    # Sightings of MACs not in the database (and of requests with no MAC) not seen for this many days are
    # pruned; past sightings_max_rows rows the oldest go, unknown MACs' first. 0: no bound.
    sightings_keep_days: int = 30
    sightings_max_rows: int = 200000
    # A line per request on standard output (`autoprov serve`); phones' requests are sightings either way.
    access_log: bool = False
    # Seconds requests in progress get to finish when `autoprov serve` is told to stop (SIGTERM).
    shutdown_timeout: int = 5


@dataclass
class AccessSettings:
    """Who may fetch secrets and upload (README, "Security: access policy"); read by ``autoprov.access``."""

    # Reverse proxies (CIDR) whose X-Forwarded-For / X-Real-IP are believed; from anyone else they are ignored.
    trusted_proxies: list[str] = field(default_factory=list)
    # Networks (CIDR) that may fetch files holding secrets (phone configs, a phone's overrides and contacts).
    # The old name, [http] secrets_allowed_from, is still read; set one of them.
    secrets_allowed_from: list[str] = field(default_factory=lambda: list(PRIVATE_NETWORKS))
    # Networks (CIDR) that may upload: logs, overrides, contacts.
    uploads_allowed_from: list[str] = field(default_factory=lambda: list(PRIVATE_NETWORKS))
    # HTTP credentials on files holding secrets: "none" (the networks alone), "site" (the site-wide login of
    # `autoprov credentials site set`) or "phone" (each phone its own, handed to it by its model).
    credentials: str = "none"
    # Schemes offered in the 401 challenge, in order: "basic" (send it over TLS only), "digest" (MD5).
    auth_schemes: list[str] = field(default_factory=lambda: ["digest", "basic"])
    realm: str = "autoprov"
    # Seconds the previous password stays valid after a rotation (at least the phones' polling period).
    credentials_grace: int = 7 * 86400


@dataclass
class AuditSettings:
    """The audit trail of secret files served and requests refused (see README, "Security")."""

    # Records older than this many days are pruned (by the server, and by `autoprov audit prune`).
    keep_days: int = 90
    # Past this many records the oldest are pruned too. 0: no bound but keep_days.
    max_rows: int = 1000000
    # Seconds between two writes of buffered records (a crash loses at most this much of the trail).
    flush_interval: float = 2.0
    # Records a process holds between two writes; more are counted, dropped and logged.
    buffer_limit: int = 10000


@dataclass
class ThrottleSettings:
    """MAC enumeration: a client asking for many unknown MACs' per-phone files is answered 429."""

    # Distinct MACs not in the database one client address may ask for within `window` seconds; one more
    # blocks it. 0: no throttle.
    unknown_macs: int = 30
    window: float = 60.0
    # Seconds a blocked client is answered 429 (with Retry-After) for every per-phone file.
    block: float = 600.0
    # Seconds between two exchanges of counts and blocks with other processes and servers (the database).
    share_interval: float = 1.0
    # Client addresses or networks never throttled (e.g. a NAT in front of many phones; see README).
    exempt: list[str] = field(default_factory=list)
    # Client addresses tracked at once per process; past it the oldest are forgotten.
    clients_limit: int = 10000


@dataclass
class SipSettings:
    # The default SIP server for extensions that do not name their own.
    server: str = "127.0.0.1"
    port: int = 5060
    transport: str = "UDPOnly"
    expires: int = 3600


@dataclass
class TimeSettings:
    sntp_server: str = "pool.ntp.org"
    # An IANA zone name; phones get its standard GMT offset and daylight-saving rules.
    time_zone: str = "UTC"


@dataclass
class PollingSettings:
    enabled: bool = True
    mode: str = "abs"  # abs: daily at `time`; rel: every `period` seconds; random: between time and time_random_end
    period: int = 86400
    time: str = "03:00"
    time_random_end: str = "04:00"


@dataclass
class FirmwareSettings:
    # One directory per model below this root (``<root>/polycom_ip330/sip.ld``), unless a model says otherwise.
    root: str = "var/firmware"
    # Who sends an image's bytes once autoprov has chosen the file: "app" (the WSGI server streams them) or
    # "apache" (under mod_wsgi daemon mode, Apache serves the file itself from an Alias of the root at
    # ``apache_alias``; see deploy/apache/autoprov.conf). Elsewhere "apache" streams as "app" does.
    send_with: str = "app"
    apache_alias: str = "/autoprov-firmware/"


@dataclass
class UploadSettings:
    """What phones write back: logs, local setting overrides, personal contacts."""

    max_log_bytes: int = 16 * 1024 * 1024  # one log upload; larger gets 413
    max_config_bytes: int = 1024 * 1024  # one overrides or contacts file
    log_retention_days: int = 30  # log lines older than this are pruned automatically


@dataclass
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    # Seconds one FastAGI session may last before it is ended (a call around ``EXEC Dial`` lasts long).
    session_timeout: float = 4 * 3600
    # Seconds a database query from a call script may take before the call goes on with a default.
    database_timeout: float = 2.0
    # Database connections the FastAGI server holds at most (one per live call using the database); a call
    # beyond it waits up to database_timeout, then goes on with a default. Keep below PostgreSQL's
    # max_connections minus what the web workers use.
    max_db_connections: int = 50
    # FastAGI connections served at once (a thread each); one more is refused with AGISTATUS=FAILURE.
    max_connections: int = 1000
    # Seconds a new FastAGI connection has to send its whole environment (Asterisk sends it at once).
    environment_timeout: float = 5.0
    # Where ``autoprov agi run`` (a local AGI) logs besides Asterisk's stderr: "syslog" or a file path.
    log: str = "syslog"


@dataclass
class DhcpSettings:
    """What ``autoprov dhcp`` writes into the DHCP server's configuration."""

    # MAC prefixes (6 hex digits, e.g. "0004f2") of phones to hand the URL to, besides the installed models'.
    extra_ouis: list[str] = field(default_factory=list)
    # Provisioning credentials put into the URL (http://user:password@host/); empty: none.
    user: str = ""
    password: str = ""


@dataclass
class AsteriskSettings:
    """What ``autoprov asterisk pjsip`` writes for each extension (an endpoint, an auth and an aor)."""

    context: str = "default"  # the dialplan context calls from the phones enter
    allow: list[str] = field(default_factory=lambda: ["ulaw", "alaw"])  # codecs, after disallow=all
    transport: str = ""  # a transport section of pjsip.conf; empty: Asterisk picks
    # Templates (defined in pjsip.conf with [name](!)) the sections inherit from; empty: none.
    endpoint_template: str = ""
    auth_template: str = ""
    aor_template: str = ""
    voicemail_context: str = "default"  # mailboxes=<box>@<this> for an extension with a mailbox
    max_contacts: int = 1
    # The Manager Interface `autoprov notify --via ami` logs in to (manager.conf; the user needs write=system).
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = ""
    ami_secret: str = ""
    ami_timeout: float = 5.0
    # How `--notify` after an edit, the admin UI's button and `autoprov notify` (default) reach phones:
    # "direct" (autoprov sends the NOTIFY) or "ami" (Asterisk sends it).
    notify_via: str = "direct"
    # Where a phone's SIP address comes from, before its last sighting: "ami" (PJSIPShowContacts),
    # "ps_contacts" (Asterisk's realtime table in this database), "auto" (ps_contacts when the database has
    # that table, else none), or "none" (sightings only).
    registrations: str = "auto"


@dataclass
class ClientCertificateSettings:
    """Mutual TLS under Apache (deploy/apache/autoprov-mtls.conf): see autoprov.clientcert."""

    # Files holding secrets only for a client whose verified device certificate names a phone (its own
    # per-phone files, or shared ones for a phone in the database); no certificate is a 403 then, wherever
    # the client is. Off: a request without a certificate meets the network rule ([http] secrets_allowed_from).
    required: bool = False


@dataclass
class SecretsSettings:
    """SIP passwords encrypted in the database (optional; README, "Secrets at rest")."""

    # A file of Fernet keys (``autoprov secrets keygen``), outside the database, readable by the service alone;
    # relative to the configuration file. Empty: passwords are stored as given (the default).
    key_file: str = ""


@dataclass
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    time: TimeSettings = field(default_factory=TimeSettings)
    polling: PollingSettings = field(default_factory=PollingSettings)
    firmware: FirmwareSettings = field(default_factory=FirmwareSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    dhcp: DhcpSettings = field(default_factory=DhcpSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    client_certificate: ClientCertificateSettings = field(default_factory=ClientCertificateSettings)
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    # Site-wide phone parameters every phone gets (``"up.backlight.idleIntensity" = "1"``).
    site_params: dict[str, str] = field(default_factory=dict)
    # Sections a plugin reads itself (``[plugins.my_vendor]``), passed through untouched.
    plugins: dict[str, Any] = field(default_factory=dict)
    source: str = "embedded defaults"

    @property
    def public_url(self) -> str:
        return self.http.public_url.rstrip("/")

    @property
    def secrets_networks(self) -> list[str]:
        """``[access] secrets_allowed_from``, or the old ``[http]`` name where only that one was changed."""
        default = list(PRIVATE_NETWORKS)
        if self.access.secrets_allowed_from == default and self.http.secrets_allowed_from != default:
            return self.http.secrets_allowed_from
        return self.access.secrets_allowed_from

    def may_fetch_secrets(self, address: str | None) -> bool:
        """Whether a client at ``address`` may fetch files that hold SIP passwords."""
        return in_networks(address or "", tuple(self.secrets_networks))


@lru_cache(maxsize=4096)
def in_networks(address: str, networks: tuple[str, ...]) -> bool:
    """Remembered per address and rule: parsing nine networks on every request cost 40 % of a cached one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # an IPv4 client of a server on "::"
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


ENV_OVERRIDES = {
    "AUTOPROV_DATABASE_URL": ("database", "url"),
    "AUTOPROV_PUBLIC_URL": ("http", "public_url"),
    "AUTOPROV_FIRMWARE_ROOT": ("firmware", "root"),
}

_SCALARS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
_PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def fill(obj: Any, data: dict[str, Any], where: str) -> None:
    """Set the dataclass ``obj``'s fields from a TOML table, refusing unknown keys and wrong types by name."""
    known = {f.name: f for f in fields(obj)}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{where}{key}: unknown setting")
        current = getattr(obj, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key}: expected a table")
            fill(current, value, f"{where}{key}.")
        elif isinstance(current, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}{key}: expected a list of strings")
            setattr(obj, key, list(value))
        elif isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key}: expected a table")
            setattr(obj, key, dict(value))
        else:
            # The declared type, not the default's (a float default may be written as an int).
            declared = known[key].type  # a string under `from __future__ import annotations`, else the type
            expected = _SCALARS[declared if isinstance(declared, str) else declared.__name__]
            # bool is an int subclass: `port = true` must be refused.
            ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if not ok:
                raise ConfigError(f"{where}{key}: expected {expected.__name__}, got {value!r}")
            setattr(obj, key, value)


# A host name or an IP address (IPv6 in brackets): what phones are given for SIP and SNTP servers.
HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,253})$|^\[[0-9A-Fa-f:.]+\]$")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+pool", "postgres+pool")

# Settings that must be at least this (and for ports, at most 65535): a value that would reach a phone or
# a server socket nonsensical is refused here, with its name, rather than discovered on a phone.
_MINIMUMS = {
    ("http", "port"): 1, ("http", "workers"): 1, ("http", "threads"): 1, ("http", "retry_after"): 1,
    ("http", "shutdown_timeout"): 0,
    ("sip", "port"): 1, ("sip", "expires"): 1, ("polling", "period"): 1, ("agi", "port"): 1,
    ("agi", "session_timeout"): 1, ("agi", "database_timeout"): 0.01, ("agi", "max_db_connections"): 1,
    ("http", "change_check_interval"): 0, ("http", "render_cache_entries"): 1,
    ("http", "sighting_flush_interval"): 0.01, ("http", "sighting_buffer_limit"): 1,
    ("agi", "max_connections"): 1, ("agi", "environment_timeout"): 0.01,
    ("asterisk", "max_contacts"): 1, ("asterisk", "ami_port"): 1, ("asterisk", "ami_timeout"): 0.01,
    ("access", "credentials_grace"): 0,
    ("http", "sightings_keep_days"): 0, ("http", "sightings_max_rows"): 0,
    ("audit", "keep_days"): 0, ("audit", "max_rows"): 0, ("audit", "flush_interval"): 0.01,
    ("audit", "buffer_limit"): 1, ("throttle", "unknown_macs"): 0, ("throttle", "window"): 1,
    ("throttle", "block"): 1, ("throttle", "share_interval"): 0.01, ("throttle", "clients_limit"): 1,
    ("uploads", "max_log_bytes"): 1, ("uploads", "max_config_bytes"): 1, ("uploads", "log_retention_days"): 0,
}


def validate(s: Settings) -> None:
    scheme = urlsplit(s.database.url).scheme
    if scheme not in DATABASE_SCHEMES:
        raise ConfigError(
            f"database.url: use sqlite:///path or postgresql://user:password@host/name, got {scheme or 'no'} scheme"
        )
    for (section, key), low in _MINIMUMS.items():
        value = getattr(getattr(s, section), key)
        high = 65535 if key == "port" else None
        if value < low or (high is not None and value > high):
            raise ConfigError(f"{section}.{key}: must be {low} or more{f' and at most {high}' if high else ''}")
    for name, value in (("sip.server", s.sip.server), ("time.sntp_server", s.time.sntp_server)):
        if not HOST.fullmatch(value):
            raise ConfigError(f"{name}: {value!r} is not a host name or address")
    url = urlsplit(s.http.public_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"http.public_url: must be an http:// or https:// URL, got {s.http.public_url!r}")
    for name, nets in (("http.secrets_allowed_from", s.http.secrets_allowed_from),
                       ("access.secrets_allowed_from", s.access.secrets_allowed_from),
                       ("access.uploads_allowed_from", s.access.uploads_allowed_from),
                       ("access.trusted_proxies", s.access.trusted_proxies)):
        for net in nets:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ConfigError(f"{name}: {net!r} is not a network (e.g. 10.0.0.0/8)") from None
    private = list(PRIVATE_NETWORKS)
    if private != s.http.secrets_allowed_from != s.access.secrets_allowed_from != private:
        raise ConfigError("access.secrets_allowed_from and its old name http.secrets_allowed_from differ: keep one")
    if s.access.credentials not in ("none", "site", "phone"):
        raise ConfigError("access.credentials: must be none, site or phone")
    unknown = set(s.access.auth_schemes) - {"basic", "digest"}
    if unknown or not s.access.auth_schemes:
        raise ConfigError(f"access.auth_schemes: a list of basic and/or digest, got {s.access.auth_schemes!r}")
    if not s.access.realm or any(c in s.access.realm for c in '"\\\r\n'):
        raise ConfigError("access.realm: must be non-empty, without quotes, backslashes or line breaks")
    for net in s.throttle.exempt:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"throttle.exempt: {net!r} is not an address or network") from None
    if s.http.server not in ("granian", "gunicorn"):
        raise ConfigError(f"http.server: must be granian or gunicorn, got {s.http.server!r}")
    if s.polling.mode not in ("abs", "rel", "random"):
        raise ConfigError("polling.mode: must be abs, rel or random")
    for key in ("time", "time_random_end"):
        if not _HHMM.match(getattr(s.polling, key)):
            raise ConfigError(f"polling.{key}: must be HH:MM")
    for oui in s.dhcp.extra_ouis:
        if not re.fullmatch(r"[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){2}", oui):
            raise ConfigError(f"dhcp.extra_ouis: {oui!r} is not a MAC prefix of 6 hex digits (e.g. 0004f2)")
    if s.asterisk.notify_via not in ("direct", "ami"):
        raise ConfigError("asterisk.notify_via: must be direct or ami")
    if s.asterisk.registrations not in ("auto", "ami", "ps_contacts", "none"):
        raise ConfigError("asterisk.registrations: must be auto, ami, ps_contacts or none")
    if s.firmware.send_with not in ("app", "apache"):
        raise ConfigError("firmware.send_with: must be app or apache")
    if not re.fullmatch(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/", s.firmware.apache_alias):
        raise ConfigError(f"firmware.apache_alias: must be a URL path such as /autoprov-firmware/, got "
                          f"{s.firmware.apache_alias!r}")
    if s.sip.transport not in ("UDPOnly", "TCPOnly", "TLS", "DNSnaptr"):
        raise ConfigError("sip.transport: must be UDPOnly, TCPOnly, TLS or DNSnaptr")
    from autoprov.timezones import zone_rule

    try:
        zone_rule(s.time.time_zone)
    except ValueError as exc:
        raise ConfigError(f"time.time_zone: {exc}") from None
    for key, value in s.site_params.items():
        if isinstance(value, dict):  # TOML reads an unquoted a.b = 1 as the table a holding b
            dotted = _first_leaf(key, value)
            raise ConfigError(f'site_params: {dotted} was read as nested tables: quote the name: "{dotted}" = ...')
        if not _PARAM_NAME.match(key):
            raise ConfigError(f"site_params: {key!r} is not a phone parameter name")
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"site_params.{key}: must be a string or number")


def _first_leaf(prefix: str, table: dict[str, Any]) -> str:
    """``up`` + ``{"backlight": {"idleIntensity": 1}}`` -> ``up.backlight.idleIntensity``."""
    for key, value in table.items():
        return _first_leaf(f"{prefix}.{key}", value) if isinstance(value, dict) else f"{prefix}.{key}"
    return prefix


SQLITE_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> str | None:
    """The file named by a ``sqlite:///`` URL (relative or absolute), None for other URLs and ``:memory:``."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX):].partition("?")[0]
    return None if path in ("", ":memory:") else path


def _resolve_against(base: Path, data: dict[str, Any], settings: Settings) -> None:
    """Make the relative paths the file itself set relative to ``base`` (the file's directory)."""
    url = data.get("database", {}).get("url") if isinstance(data.get("database"), dict) else None
    path = sqlite_file(settings.database.url) if url is not None else None
    if path is not None and not Path(path).is_absolute():
        rest = settings.database.url[len(SQLITE_PREFIX) + len(path):]
        settings.database.url = f"{SQLITE_PREFIX}{base / path}{rest}"
    firmware = data.get("firmware")
    if isinstance(firmware, dict) and "root" in firmware and not Path(settings.firmware.root).is_absolute():
        settings.firmware.root = str(base / settings.firmware.root)
    secrets = data.get("secrets")
    if isinstance(secrets, dict) and secrets.get("key_file") and not Path(settings.secrets.key_file).is_absolute():
        settings.secrets.key_file = str(base / settings.secrets.key_file)


def load_settings(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the configuration file (see module docstring for where) and apply environment overrides."""
    env = os.environ if environ is None else environ
    settings = Settings()
    chosen = path or env.get("AUTOPROV_CONFIG")
    if chosen is None and DEFAULT_CONFIG_PATH.exists():
        chosen = DEFAULT_CONFIG_PATH
    if chosen is not None:
        try:
            with open(chosen, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {chosen} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{chosen}: {exc}") from None
        fill(settings, data, "")
        _resolve_against(Path(os.path.abspath(chosen)).parent, data, settings)
        settings.source = os.path.abspath(chosen)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            setattr(getattr(settings, section), key, env[var])
    validate(settings)
    return settings


# A setting whose name says it holds a secret (site_params ``reg.1.auth.password``, a plugin's ``api_token``).
_SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|credential|api_?key|private", re.IGNORECASE)
MASK = "***"


def _masked(name: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(name, v) for v in value]
    if _SECRET_NAME.search(name):
        return MASK
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password is not None:  # a login in a URL: http://user:password@host/, postgresql://...
            return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)).geturl()
    return value


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings as sections of name -> value, secrets replaced by ``***`` (for display)."""
    out: dict[str, Any] = {}
    for f in fields(settings):
        if f.name == "source":
            continue
        value = getattr(settings, f.name)
        table = {g.name: getattr(value, g.name) for g in fields(value)} if is_dataclass(value) else value
        out[f.name] = _masked(f.name, table)
    return out
