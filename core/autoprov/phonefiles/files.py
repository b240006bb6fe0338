"""What phones read and write besides their config: the contact directory, logs, overrides and contacts.

The model declares where these files live and how they are named (``FileRule`` roles DIRECTORY, LOG, OVERRIDES,
CONTACTS); the router has matched the name, taken the MAC from it and applied the access policy
(``autoprov.access``): overrides and contacts are read and written only by clients that may fetch secrets (an
override can re-point a phone's SIP server, and contacts are the user's own), and every upload, logs too, only
by clients in ``[access] uploads_allowed_from``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import partial

import peewee
from werkzeug.exceptions import abort
from werkzeug.http import parse_content_range_header
from werkzeug.wrappers import Request, Response

from autoprov import hookimpl
from autoprov.access import client_address
from autoprov.db import is_unavailable
from autoprov.devices import CONTACTS, DIRECTORY, LOG, OVERRIDES, DeviceModel, LogRecord
from autoprov.logthrottle import log_throttled
from autoprov.phonefiles import logquery, logs, storedfiles
from autoprov.phonefiles.directory import CONTACTS_NAME, classified, directory_for
from autoprov.phonefiles.storedfiles import InvalidXml, Kind
from autoprov.phonepath import FileHandler, Served
from autoprov.site import Site
from autoprov.tables import utcnow
from autoprov.web import Rendered, plain, rendered_response

log = logging.getLogger(__name__)


def _source(site: Site, request: Request) -> str:
    return f"{client_address(request, site.settings) or '?'} {request.headers.get('User-Agent') or ''}".strip()


# --- Logs ---------------------------------------------------------------------------------------------

def log_file(site: Site, request: Request, served: Served) -> Response:
    mac, name = served.mac, served.name
    assert mac is not None and name is not None
    served.sight(site, request)
    if request.method == "HEAD":
        length = logs.stored_length(mac, name)
        if length is None:
            return plain(404, f"no {mac}-{name} log stored yet")
        response = Response(b"", mimetype="text/plain")
        response.headers["Content-Length"] = str(length)
        return response
    return _store_log(site, request, served, mac, name)


def _store_log(site: Site, request: Request, served: Served, mac: str, name: str) -> Response:
    limit = site.settings.uploads.max_log_bytes
    start, end = _content_range(request)
    body = logs.read_body(request.stream, limit, request.content_length)
    try:
        # A cut-off body may be shorter than its range, never longer.
        if end is not None and (body.size > end - start or (body.complete and body.size != end - start)):
            return plain(400, f"Content-Range covers {end - start} bytes but the body has {body.size}")
        stored = logs.ingest(site.db, mac, name, body, start if end is not None else None, utcnow(),
                             line_parser(site, served.model))
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


def line_parser(site: Site, model: DeviceModel) -> logs.LineParser:
    """``model.parse_log_line``; a line it fails on is reported (the model broken) and kept unparsed, so a
    plugin's bug loses nothing of an upload."""

    def parse(text: str, uploaded: dt.datetime) -> LogRecord:
        try:
            return model.parse_log_line(text, uploaded)
        except Exception as exc:
            site.plugins.report_broken(model.name, "parse_log_line", exc)
            return logs.unparsed(text, uploaded)

    return parse


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


# --- Overrides, contacts and the directory -------------------------------------------------------------

def override_file(site: Site, request: Request, served: Served) -> Response:
    return _phone_written(site, request, served, storedfiles.OVERRIDES)


def contacts_file(site: Site, request: Request, served: Served) -> Response:
    """The phone's directory: PUT stores what the phone writes back, GET is what it reads (merged)."""
    if request.method == "PUT":
        return _phone_written(site, request, served, storedfiles.CONTACTS, partial(classified, served.model))
    return directory(site, request, served)


def directory(site: Site, request: Request, served: Served) -> Response:
    """The company directory, or (a per-phone name) one phone's: the company's merged with its own contacts.
    Cached until an extension or an uploaded contacts file changes; a 304 renders nothing."""
    if served.mac is not None:
        served.sight(site, request)
    try:
        body = site.renders.get((DIRECTORY, served.model.name, served.mac),
                                lambda: _rendered(directory_for(served.model, served.mac)))
    except peewee.PeeweeException:
        raise
    except Exception as exc:  # the plugin's render_directory: a clean answer and a sighting, never a traceback
        site.plugins.report_broken(served.model.name, "render_directory", exc)
        served.sight(site, request, problem=f"{served.model.name} failed to render its directory: "
                                            f"{type(exc).__name__}: {exc}")
        return plain(500, f"{served.model.name} cannot render its directory: {type(exc).__name__}: {exc}")
    if body is None:
        return plain(404, f"{served.model.name} has no contact directory")
    return rendered_response(request, body, served.rule.media_type)


def _rendered(body: bytes | None) -> Rendered | None:
    return None if body is None else Rendered.of(body)


def _phone_written(site: Site, request: Request, served: Served, kind: Kind,
                   sort_out: Callable[[bytes], str | None] | None = None) -> Response:
    """GET or PUT of a file the phone writes into ``kind``'s directory, stored with its history (and with what
    ``sort_out`` makes of a PUT's body)."""
    mac = served.mac
    assert mac is not None
    name = served.name or CONTACTS_NAME
    where = f"{kind.directory}/{mac}-{name}"
    served.sight(site, request)
    if request.method != "PUT":
        row = storedfiles.current(mac, kind, name)
        if row is None:
            return plain(404, f"no {where} stored")
        return rendered_response(request, Rendered.of(storedfiles.content_of(row)), served.rule.media_type)
    body = storedfiles.read_limited(request, site.settings.uploads.max_config_bytes)
    try:
        storedfiles.check_xml(body)
    except InvalidXml as exc:
        return plain(400, f"{where}: {exc}")
    changed = storedfiles.store(site.db, mac, kind, name, body, _source(site, request),
                                sort_out(body) if sort_out else None)
    return plain(200, f"stored {where}" if changed else f"{where} unchanged")


@hookimpl
def autoprov_file_handlers() -> dict[str, FileHandler]:
    return {LOG: log_file, OVERRIDES: override_file, CONTACTS: contacts_file, DIRECTORY: directory}
