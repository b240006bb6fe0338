"""HTTP routes for what phones read and write below ``/prov/<model>/`` besides their config:

- ``logs/<mac>-<name>.log``: HEAD (stored length) and PUT (whole file, or appending with Content-Range);
- ``overrides/<mac>-phone.cfg``, ``overrides/<mac>-web.cfg``: PUT and GET of the user's local settings;
- ``contacts/<mac>-directory.xml``: PUT of the phone's directory, GET of the merged directory;
- ``000000000000-directory.xml`` and ``<mac>-directory.xml``, in ``contacts/`` and at the model path.

These rules have static segments, so Werkzeug prefers them to core's ``/prov/<model>/<path:filename>``: the
generated ``<mac>-phone.cfg`` and the phone's ``overrides/<mac>-phone.cfg`` never meet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import peewee
from werkzeug.exceptions import abort
from werkzeug.http import parse_content_range_header
from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.db import is_unavailable
from autoprov.devices import DeviceModel
from autoprov.logthrottle import log_throttled
from autoprov.mac import ZERO_MAC, InvalidMac, is_mac, normalize_mac
from autoprov.phonefiles import logquery, logs, storedfiles
from autoprov.phonefiles.directory import classified, directory_for
from autoprov.phonefiles.storedfiles import CONTACTS, OVERRIDES, InvalidXml, Kind
from autoprov.provisioning.routes import config_response, installed_model
from autoprov.provisioning.sightings import record_sighting
from autoprov.provisioning.tables import utcnow
from autoprov.site import Site
from autoprov.web import Route, plain

log = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
LOG_NAME_LIMIT = 64
_LOG_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _split(filename: str) -> tuple[str, str]:
    """``<mac>-<rest>`` -> (normalised MAC, rest); 400 if the MAC part is not a phone's MAC."""
    head, sep, rest = filename.partition("-")
    try:
        if not sep or not is_mac(head):
            raise InvalidMac(f"{filename!r} does not start with a MAC (12 hex digits) and '-'")
        return normalize_mac(head), rest
    except InvalidMac as exc:
        abort(plain(400, f"malformed MAC: {exc}"))


def _refused(site: Site, request: Request, mac: str, what: str) -> Response | None:
    """403, and a sighting saying why, unless the client may fetch the phone's secrets. Overrides can hold a
    SIP password and win over the generated config at the phone (an outsider's PUT could re-point its SIP
    server); contacts are the user's own: both are read and written only where configs may go."""
    if site.settings.may_fetch_secrets(request.remote_addr):
        return None
    record_sighting(site, request, mac, problem=f"refused {request.method} {what}: {request.remote_addr} is not in "
                                                "[http] secrets_allowed_from")
    return plain(403, f"this address may not read or write {what} (see [http] secrets_allowed_from)")


def _source(request: Request) -> str:
    return f"{request.remote_addr or '?'} {request.headers.get('User-Agent') or ''}".strip()


# --- Logs ---------------------------------------------------------------------------------------------

def log_file(site: Site, request: Request, model: str, filename: str) -> Response:
    installed_model(site, request, model)
    mac, rest = _split(filename)
    name = rest.removesuffix(LOG_SUFFIX)
    if not rest.endswith(LOG_SUFFIX) or not name or len(name) > LOG_NAME_LIMIT or not set(name) <= _LOG_NAME_CHARS:
        return plain(400, f"log files are named <mac>-<name>.log (name: up to {LOG_NAME_LIMIT} of A-Z a-z 0-9 _ . -)")
    # Open to any address, unlike overrides: a log is never served back to a phone, so an upload cannot change
    # what a phone does, and a phone outside the allowed networks (one refused its config) is the very one
    # whose log is wanted.
    record_sighting(site, request, mac)
    if request.method == "HEAD":
        length = logs.stored_length(mac, name)
        if length is None:
            return plain(404, f"no {filename} stored yet")
        response = Response(b"", mimetype="text/plain")
        response.headers["Content-Length"] = str(length)
        return response
    return _store_log(site, request, mac, name)


def _store_log(site: Site, request: Request, mac: str, name: str) -> Response:
    limit = site.settings.uploads.max_log_bytes
    start, end = _content_range(request)
    body = logs.read_body(request.stream, limit, request.content_length)
    try:
        # A cut-off body may be shorter than its range, never longer.
        if end is not None and (body.size > end - start or (body.complete and body.size != end - start)):
            return plain(400, f"Content-Range covers {end - start} bytes but the body has {body.size}")
        stored = logs.ingest(site.db, mac, name, body, start if end is not None else None, utcnow())
    except logs.RangeRefused as exc:
        return plain(exc.status, f"{exc}; stored length {exc.stored}", **{"Content-Range": f"bytes */{exc.stored}"})
    finally:
        body.close()
    if not body.complete:
        log.warning("upload of %s-%s.log cut off after %d bytes: kept %d complete line(s)", mac, name, body.size,
                    stored.lines)
        return plain(400, f"upload cut off; stored {stored.lines} complete line(s), stored length {stored.length}")
    response = plain(200, f"stored {stored.lines} line(s); {mac}-{name}.log is {stored.length} bytes")
    response.call_on_close(lambda: _prune_if_due(site))
    return response


def _content_range(request: Request) -> tuple[int, int | None]:
    """(start, end) of an appending PUT's ``Content-Range: bytes N-M/*``; (0, None) for a whole file."""
    header = request.headers.get("Content-Range")
    if header is None:
        return 0, None
    parsed = parse_content_range_header(header)
    if parsed is None or parsed.units != "bytes" or parsed.start is None or parsed.stop is None:
        abort(plain(400, f"malformed Content-Range {header!r}; expected bytes N-M/* or bytes N-M/TOTAL"))
    return parsed.start, parsed.stop


def _prune_if_due(site: Site) -> None:
    """After the response is sent: the automatic prune by [uploads] log_retention_days."""
    try:
        logquery.prune_if_due(site.db, site.settings.uploads.log_retention_days)
    except peewee.PeeweeException as exc:
        if not is_unavailable(exc):
            raise
        log_throttled(log, logging.WARNING, type(exc), "automatic log pruning failed (tried again later): %s", exc)


# --- Overrides and contacts -----------------------------------------------------------------------------

def override_file(site: Site, request: Request, model: str, filename: str) -> Response:
    installed_model(site, request, model)
    return _phone_written(site, request, OVERRIDES, filename)


def contacts_file(site: Site, request: Request, model: str, filename: str) -> Response:
    path_model = installed_model(site, request, model)
    if request.method == "PUT":
        return _phone_written(site, request, CONTACTS, filename, partial(classified, path_model))
    return _directory(site, request, path_model, filename)


def model_directory(site: Site, request: Request, model: str, mac: str) -> Response:
    """``/prov/<model>/<mac>-directory.xml``: the same file as in the contacts directory."""
    return _directory(site, request, installed_model(site, request, model), f"{mac}-directory.xml")


def _directory(site: Site, request: Request, path_model: DeviceModel, filename: str) -> Response:
    mac: str | None = None
    if filename != f"{ZERO_MAC}-directory.xml":
        mac, rest = _split(filename)
        if rest != "directory.xml":
            return plain(404, f"no {filename} here (the directory is <mac>-directory.xml)")
        if refused := _refused(site, request, mac, f"{CONTACTS.directory}/{filename}"):
            return refused
        record_sighting(site, request, mac)
    body = directory_for(path_model, mac)
    if body is None:
        return plain(404, f"{path_model.name} has no contact directory")
    return config_response(request, body)


def _phone_written(site: Site, request: Request, kind: Kind, filename: str,
                   sort_out: Callable[[bytes], str | None] | None = None) -> Response:
    """GET or PUT of a file the phone writes into ``kind``'s directory, stored with its history (and with what
    ``sort_out`` makes of a PUT's body)."""
    mac, name = _split(filename)
    if name not in kind.names:
        names = ", ".join(f"<mac>-{n}" for n in kind.names)
        return plain(404, f"{kind.directory}/ holds {names} only")
    if refused := _refused(site, request, mac, f"{kind.directory}/{filename}"):
        return refused  # before reading a PUT's body: nothing of it is stored
    record_sighting(site, request, mac)
    if request.method != "PUT":
        row = storedfiles.current(mac, kind, name)
        if row is None:
            return plain(404, f"no {kind.directory}/{filename} stored")
        return config_response(request, storedfiles.content_of(row))
    body = storedfiles.read_limited(request, site.settings.uploads.max_config_bytes)
    try:
        storedfiles.check_xml(body)
    except InvalidXml as exc:
        return plain(400, f"{filename}: {exc}")
    changed = storedfiles.store(site.db, mac, kind, name, body, _source(request),
                                  sort_out(body) if sort_out else None)
    return plain(200, f"stored {kind.directory}/{filename}" if changed else f"{kind.directory}/{filename} unchanged")


@hookimpl
def autoprov_routes() -> list[Route]:
    return [
        Route("/prov/<model>/logs/<filename>", log_file, ("HEAD", "PUT")),
        Route("/prov/<model>/overrides/<filename>", override_file, ("GET", "PUT")),
        Route("/prov/<model>/contacts/<filename>", contacts_file, ("GET", "PUT")),
        Route("/prov/<model>/<mac>-directory.xml", model_directory),
    ]
