"""The WSGI application: a Werkzeug URL map built from every plugin's routes.

Handlers are ``handler(site, request, **url_values) -> Response``. A database that is down becomes a 503
with Retry-After (phones retry), never a 200 with a partial config.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import peewee
from werkzeug.exceptions import BadHost, HTTPException
from werkzeug.http import generate_etag, parse_etags, quote_etag
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from autoprov.atrest import SecretsUnavailable
from autoprov.db import is_unavailable
from autoprov.logthrottle import log_throttled
from autoprov.site import Site

log = logging.getLogger(__name__)

Handler = Callable[..., Response]
MATCH_CACHE_LIMIT = 50000  # paths whose route is remembered (a few per phone)


@dataclass(frozen=True)
class Route:
    rule: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)  # HEAD is implied by GET


def plain(status: int, text: str, **headers: str) -> Response:
    """A short plain-text answer; phones log the status, people read the text."""
    return Response(text.rstrip("\n") + "\n", status=status, mimetype="text/plain", headers=headers)


@dataclass(frozen=True)
class Rendered:
    """A generated file's bytes with their ETag, computed once and cached with them."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Rendered:
        return cls(body, generate_etag(body))


class BytesResponse:
    """A WSGI response of bytes already in hand: what an unchanged phone costs is little more than sending them.

    A Werkzeug Response builds a header object, formats a date and checks Range on every request; a cached
    file needs none of that (the server adds Date; Range on a few KB of config is not worth honouring).
    """

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def status_code(self) -> int:
        return int(self.status[:3])

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(self.status, self.headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [self.body]


def rendered_response(request: Request, rendered: Rendered, media_type: str) -> BytesResponse:
    """A generated file: byte-stable, so its ETag lets a polling phone get 304 (nothing is rendered for it).
    ``Cache-Control: no-cache``: revalidate every time, the database may change."""
    quoted = quote_etag(rendered.etag)
    validators = [("ETag", quoted), ("Cache-Control", "no-cache")]
    given = request.environ.get("HTTP_IF_NONE_MATCH")
    if given and (given == quoted or parse_etags(given).contains_weak(rendered.etag)):
        return BytesResponse("304 NOT MODIFIED", validators, b"")
    headers = [("Content-Type", media_type), ("Content-Length", str(len(rendered.body))), *validators]
    return BytesResponse("200 OK", headers, rendered.body)


class Application:
    def __init__(self, site: Site) -> None:
        self.site = site
        rules = []
        for impl, route in ((i, r) for i, batch in site.plugins.each_result("autoprov_routes") for r in batch or ()):
            try:
                rules.append(Rule(route.rule, endpoint=route.handler, methods=list(route.methods)))
            except Exception as exc:  # a malformed rule: that plugin's route is left out, the server starts
                site.plugins.report_broken(impl.plugin_name, "autoprov_routes", exc)
        # "//" in a phone's path is a path trick, not a typo to repair.
        self.url_map = Map(rules, merge_slashes=False)
        # No rule depends on the host, so one adapter serves every request (binding per request parses the
        # Host header for nothing); a redirect, which needs the request's host, is matched again, bound to it.
        self._adapter = self.url_map.bind("localhost")
        # The Map's answer per (path, method), since the rules never change: matching costs a third of a cached
        # phone file, and a fleet asks for the same few thousand paths. Bounded: emptied when full.
        self._matched: dict[tuple[str, str], tuple[Handler, dict[str, Any]]] = {}

    def dispatch(self, request: Request) -> Response | BytesResponse:
        # Connections stay open per thread between requests; one the database broke is closed. A thread that
        # served nothing during an outage still holds a connection the server dropped: its first GET after
        # the database is back fails on it, so a GET is tried once more on a fresh connection before a 503.
        # (Not SQLite: its connections do not go stale, and a locked file would be waited for twice.)
        if request.method in ("GET", "HEAD") and not isinstance(self.site.db, peewee.SqliteDatabase):
            try:
                return self._dispatch(request, reraise_unavailable=True)
            except peewee.PeeweeException:
                self._drop_connection()
        return self._dispatch(request)

    def _dispatch(self, request: Request, reraise_unavailable: bool = False) -> Response | BytesResponse:
        try:
            with self.site.activated():
                self.site.changes.revalidate()
                handler, values = self._match(request)
                return handler(self.site, request, **values)
        except BadHost:
            return plain(400, "malformed Host header")
        except SecretsUnavailable as exc:  # the admin's key file: phones retry until it is fixed
            log_throttled(log, logging.ERROR, SecretsUnavailable, "%s %s: %s", request.method, request.path, exc)
            retry = str(self.site.settings.http.retry_after)
            return plain(503, "stored credentials cannot be read now, try again later", **{"Retry-After": retry})
        except HTTPException as exc:
            if exc.response is not None:
                return exc.response
            return plain(exc.code or 500, f"{exc.name}: {exc.description}" if exc.description else exc.name)
        except peewee.PeeweeException as exc:
            if not is_unavailable(exc):
                return self._failed(request, exc)
            if reraise_unavailable:
                raise
            log_throttled(log, logging.ERROR, type(exc), "database unavailable (%s %s): %s", request.method,
                          request.path, " ".join(str(exc).split()))
            self._drop_connection()
            retry = str(self.site.settings.http.retry_after)
            return plain(503, "database unavailable, try again later", **{"Retry-After": retry})
        except Exception as exc:
            return self._failed(request, exc)

    def _match(self, request: Request) -> tuple[Handler, dict[str, Any]]:
        key = (request.path, request.method)
        found = self._matched.get(key)
        if found is not None:
            return found
        try:
            found = self._adapter.match(request.path, request.method)
        except RequestRedirect:  # not remembered: the redirect's URL depends on the request's host
            return self.url_map.bind_to_environ(request.environ).match()  # type: ignore[return-value]
        if len(self._matched) >= MATCH_CACHE_LIMIT:
            self._matched.clear()
        self._matched[key] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def _failed(self, request: Request, exc: Exception) -> Response:
        """A handler (core's or a plugin's) raised: one plain line for the client, never a traceback page; the
        traceback goes to the log, once a minute per cause."""
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log_throttled(log, logging.ERROR, f"handler:{type(exc).__name__}:{where.filename}:{where.lineno}",
                      "%s %s failed: %r\n%s", request.method, request.path, exc, traceback.format_exc())
        return plain(500, "internal error; see the server log")

    def _drop_connection(self) -> None:
        """Close this thread's connection after a failure, so the next request connects afresh."""
        try:
            self.site.db.close()
        except Exception:  # already broken: nothing to close cleanly
            pass

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)


def create_app(site: Site | None = None) -> Application:
    """The WSGI application for a Site (by default: configuration from the file and environment)."""
    return Application(site if site is not None else Site())
