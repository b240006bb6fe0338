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
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from autoprov.db import is_unavailable
from autoprov.logthrottle import log_throttled
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


class Application:
    def __init__(self, site: Site) -> None:
        self.site = site
        routes: Iterable[Route] = (r for batch in site.plugins.hook.autoprov_routes() for r in batch or ())
        self.url_map = Map(
            [Rule(r.rule, endpoint=r.handler, methods=list(r.methods)) for r in routes],
            merge_slashes=False,  # "//" in a phone's path is a path trick, not a typo to repair
        )

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        # Handlers connect on first query; close after the response, unless the caller had it open.
        was_closed = self.site.db.is_closed()
        try:
            handler, values = adapter.match()
            return handler(self.site, request, **values)
        except HTTPException as exc:
            if exc.response is not None:
                return exc.response
            return plain(exc.code or 500, f"{exc.name}: {exc.description}" if exc.description else exc.name)
        except peewee.PeeweeException as exc:
            if not is_unavailable(exc):
                raise
            log_throttled(log, logging.ERROR, type(exc), "database unavailable (%s %s): %s", request.method,
                          request.path, " ".join(str(exc).split()))
            retry = str(self.site.settings.http.retry_after)
            return plain(503, "database unavailable, try again later", **{"Retry-After": retry})
        finally:
            if was_closed and not self.site.db.is_closed():
                self.site.db.close()

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)


def create_app(site: Site | None = None) -> Application:
    """The WSGI application for a Site (by default: configuration from the file and environment)."""
    return Application(site if site is not None else Site())
