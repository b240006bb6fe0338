"""``autoprov serve``: Granian (the default) or gunicorn with several worker processes, or Werkzeug's
development server.

Granian's front is Rust (hyper): it accepts connections and reads each request's head on its own event loop,
and gives a Python thread only a request whose head has arrived, so clients that send their requests' heads
slowly (or nothing) hold no thread; a body, though, is read by the thread as it arrives. It also costs far
less per request than gunicorn's gthread workers (benchmarks/RESULTS.md).
gunicorn stays for ``[http] server = "gunicorn"``: Granian cannot tell the application that a chunked request
body was cut off (its stream just ends), gunicorn can (docs/uploads.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
from collections.abc import Callable
from typing import Any

from autoprov.site import Site
from autoprov.web import create_app

BACKLOG = 4096  # connections the kernel queues before a worker accepts them
CONNECTIONS_PER_WORKER = 8192
HEADER_TIMEOUT_MS = 10_000
OPEN_FILES = 65536

# One line per request: client, time, request line, status, milliseconds.
ACCESS_LOG_FORMAT = '%(addr)s - [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1f ms'


def run(site: Site, host: str, port: int, workers: int, dev: bool = False) -> None:
    if dev:
        from werkzeug.serving import run_simple

        run_simple(host, port, create_app(site), use_reloader=True, threaded=True)
    elif site.settings.http.server == "gunicorn":
        run_gunicorn(site, host, port, workers)
    else:
        run_granian(site, host, port, workers)


def run_granian(site: Site, host: str, port: int, workers: int) -> None:
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    http = site.settings.http
    worker_site: list[Site] = []  # the Site of this worker process, once it has forked and loaded

    def load(_target: str) -> Any:
        # Built in each worker after the fork, so no database connection crosses processes.
        worker_site.append(Site(site.settings, site.plugins))
        return create_app(worker_site[-1])

    _raise_open_files()
    # Workers are forked, as gunicorn's are: they inherit the plugins and settings already loaded and nothing
    # is pickled (Python 3.14 would pick forkserver, which Granian turns into spawn).
    multiprocessing.set_start_method("fork", force=True)
    server = Server(
        "autoprov",  # a name only: ``load`` builds the application
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        # Threads running the application: a phone fetching a firmware image must not hold a whole worker.
        blocking_threads=http.threads,
        websockets=False,
        # Connections a worker holds at once, idle or sending: each costs a few KB in Rust and no thread, so
        # hundreds of slow or idle clients leave room for phones (Granian's default, 512 per worker of 2,
        # let 1,000 idle connections shut every phone out: benchmarks/RESULTS.md).
        backlog=BACKLOG,
        backpressure=CONNECTIONS_PER_WORKER,
        # A client gets this long to send a request's head, then is dropped (Granian's default: 30 s).
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_TIMEOUT_MS),
        # Off by default: every phone's request is a sighting already, and a line per poll of a few thousand
        # phones costs a tenth of a cached request and buries the errors.
        log_access=http.access_log,
        log_access_format=ACCESS_LOG_FORMAT,
        log_level=LogLevels.warning,
        # SIGTERM: requests in progress get this long, then workers are killed (systemd, tests wait on it).
        # 0 is "at once" (Granian's own 0 would wait for ever).
        workers_kill_timeout=http.shutdown_timeout or 0.001,  # type: ignore[arg-type]
    )
    # Granian warns at every start that more threads than 2 x cores "seems quite high": they are for work that
    # waits (firmware sent to slow phones, the database), not for the CPU, and the warning would invite an
    # admin to starve firmware downloads.
    logging.getLogger("_granian").addFilter(lambda record: "Python threads" not in record.getMessage())
    serve_worker: Callable[..., None] = server._spawn_wsgi_worker  # Granian's own worker, wrapped below

    def worker(*args: Any, **kwargs: Any) -> None:
        try:
            serve_worker(*args, **kwargs)
        finally:
            # A stopping worker writes its buffered sightings. A forked worker ends with os._exit, so atexit
            # never runs there: this is the hook that does.
            for built in worker_site:
                built.close()

    server.serve(spawn_target=worker, target_loader=load)


def _raise_open_files() -> None:
    """Every idle or slow client holds a file descriptor: lift the soft limit (1,024 under systemd unless the
    unit says otherwise) towards the hard one, so CONNECTIONS_PER_WORKER is not cut short by it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def run_gunicorn(site: Site, host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    http = site.settings.http
    worker_site: list[Site] = []

    def worker_exit(server: Any, worker: Any) -> None:
        # A stopping worker writes its buffered sightings while logging still works (atexit may come too late).
        for built in worker_site:
            built.close()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")  # threads, as Granian's: for firmware sent to slow phones
            self.cfg.set("threads", http.threads)
            if http.access_log:  # off by default, as Granian's (see there)
                self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", http.shutdown_timeout)  # SIGTERM: then workers are killed
            self.cfg.set("worker_exit", worker_exit)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 24+: one fixed path per user, unused
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            # Built in each worker after the fork, so no database connection crosses processes.
            worker_site.append(Site(site.settings, site.plugins))
            return create_app(worker_site[-1])

    Server().run()
