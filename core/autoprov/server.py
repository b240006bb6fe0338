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
    worker_site: list[Site] = []  # the Site of this worker process, once it has forked and loaded

    def worker_exit(server: Any, worker: Any) -> None:
        # A stopping worker writes its buffered sightings while logging still works (atexit may come too late).
        for built in worker_site:
            built.close()

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
            self.cfg.set("worker_exit", worker_exit)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 24+: one fixed path per user, unused
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            # Built in each worker after the fork, so no database connection crosses processes.
            worker_site.append(Site(site.settings, site.plugins))
            return create_app(worker_site[-1])

    Server().run()
