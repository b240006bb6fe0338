"""The WSGI application: a Werkzeug URL map built from every plugin's routes.

Handlers are ``handler(site, request, **url_values) -> Response``. A database that is down becomes a 503
with Retry-After (phones retry), never a 200 with a partial config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import peewee
from werkzeug.exceptions import BadHost, HTTPException
from werkzeug.http import generate_etag
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from autoprov.db import is_unavailable
from autoprov.logthrottle import throttled
from autoprov.site import Site

log = logging.getLogger(__name__)

Handler = Callable[..., Response]


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


def rendered_response(request: Request, rendered: Rendered, media_type: str) -> Response:
    """A generated file: byte-stable, so its ETag lets a polling phone get 304 (nothing is rendered for it)."""
    response = Response(rendered.body, content_type=media_type)
    response.headers["Cache-Control"] = "no-cache"  # revalidate every time: the database may change
    response.set_etag(rendered.etag)
    return response.make_conditional(request)


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

    def dispatch(self, request: Request) -> Response:
        # Connections stay open per thread between requests; one the database broke is closed below.
        try:
            with self.site.activated():
                self.site.changes.revalidate()
                adapter = self.url_map.bind_to_environ(request.environ)
                handler, values = adapter.match()
                return handler(self.site, request, **values)
        except BadHost:
            return plain(400, "malformed Host header")
        except HTTPException as exc:
            if exc.response is not None:
                return exc.response
            return plain(exc.code or 500, f"{exc.name}: {exc.description}" if exc.description else exc.name)
        except peewee.PeeweeException as exc:
            if not is_unavailable(exc):
                raise
            throttled(log, f"database-unavailable:{type(exc).__name__}", logging.ERROR,
                      "database unavailable (%s %s): %s", request.method, request.path, exc)
            self._drop_connection()
            retry = str(self.site.settings.http.retry_after)
            return plain(503, "database unavailable, try again later", **{"Retry-After": retry})

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
