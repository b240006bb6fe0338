"""``autoprov serve``: gunicorn with several worker processes, or Werkzeug's development server."""

from __future__ import annotations

from typing import Any

from autoprov.site import Site
from autoprov.web import create_app


def run(site: Site, host: str, port: int, workers: int, dev: bool = False) -> None:
    if dev:
        from werkzeug.serving import run_simple

        run_simple(host, port, create_app(site), use_reloader=True, threaded=True)
        return

    from gunicorn.app.base import BaseApplication

    threads = site.settings.http.threads

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", workers)
            # Threads: a phone fetching a firmware image must not hold a whole worker.
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            # Off by default, as gunicorn's own default: every phone's request is a sighting already, and a
            # line per poll of a few thousand phones costs a tenth of a cached request and buries the errors.
            if site.settings.http.access_log:
                self.cfg.set("accesslog", "-")
            # SIGTERM: requests in progress get this long, then workers are killed (systemd, tests wait on it).
            self.cfg.set("graceful_timeout", site.settings.http.shutdown_timeout)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 24+: one fixed path per user, unused
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            # Built in each worker after the fork, so no database connection crosses processes.
            return create_app(Site(site.settings, site.plugins))

    Server().run()
