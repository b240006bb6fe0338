"""Fixtures for the AGI tests: a session wired to a scripted Asterisk, a SQLite site, a FastAGI server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autoprov.agi.runner import collect_scripts
from autoprov.agi.server import FastAGIServer
from autoprov.agi.session import AGISession
from autoprov.agi.testing import ScriptedAsterisk, Transcript, environment
from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site

# A Wednesday, 10:30 in UTC: inside office hours in Europe/London (10:30) and outside in New York (05:30).
WEDNESDAY_1030_UTC = datetime(2024, 1, 10, 10, 30, tzinfo=UTC)


@contextmanager
def asterisk_session(script: str = "test", *, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                     **knobs: object) -> Iterator[tuple[AGISession, Transcript]]:
    """An AGISession whose other end is a ScriptedAsterisk on a real socket pair; environment already read."""
    ours, theirs = socket.socketpair()
    peer = ScriptedAsterisk(theirs.recv, theirs.sendall, **knobs)  # type: ignore[arg-type]
    done = threading.Event()

    def play() -> None:
        try:
            peer.run(environment(script, args=args, **(env or {})))
        finally:
            theirs.close()
            done.set()

    threading.Thread(target=play, daemon=True).start()
    session = AGISession.from_socket(ours, name="test")
    session.read_environment()
    try:
        yield session, peer.t
    finally:
        session.close()
        ours.close()
        done.wait(10)


@pytest.fixture
def agi_settings(tmp_path: Path) -> Settings:
    """Settings on a SQLite file of this test's own (many concurrent connections: not PostgreSQL's 100)."""
    s = Settings()
    s.database.url = f"sqlite:///{tmp_path}/agi.db"
    s.agi.database_timeout = 2.0
    s.time.time_zone = "Europe/London"
    return s


@pytest.fixture
def agi_site(agi_settings: Settings) -> Iterator[Site]:
    site = Site(agi_settings, build_plugin_manager(load_entry_points=False))
    site.init_database()
    yield site
    site.db.close()


@pytest.fixture
def start_server() -> Iterator[Callable[..., FastAGIServer]]:
    """Start FastAGI servers on free loopback ports; every one is shut down at the end of the test."""
    servers: list[FastAGIServer] = []

    def start(site: Site, scripts: dict | None = None, db: object = None, **kw: object) -> FastAGIServer:
        kw.setdefault("clock", lambda: WEDNESDAY_1030_UTC)
        server = FastAGIServer(
            scripts if scripts is not None else collect_scripts(site.plugins),
            site.settings, db or site.db, host="127.0.0.1", port=0, **kw,  # type: ignore[arg-type]
        )
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown(grace=5)
