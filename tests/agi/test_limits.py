"""FastAGI limits: how many connections at once, and how long the environment may take to arrive.

Without them an idle connection (a port scanner, a stuck client) holds a thread until session_timeout.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import pytest

from autoprov.agi.server import FastAGIServer
from autoprov.agi.tables import CallerName
from autoprov.agi.testing import fastagi_call
from autoprov.site import Site

Start = Callable[..., FastAGIServer]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server writes until it closes (TimeoutError if it never does)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_a_silent_connection_is_closed_after_the_environment_time_limit(
    agi_site: Site, start_server: Start, caplog: pytest.LogCaptureFixture
) -> None:
    agi_site.settings.agi.environment_timeout = 0.3
    server = start_server(agi_site)
    with socket.create_connection((server.host, server.port)) as idle:
        idle.sendall(b"agi_network: yes\n")  # and then nothing: not the whole environment
        assert read_all(idle) == b"failure\n"  # AGISTATUS=FAILURE if it was an Asterisk after all
    wait_for(lambda: server.live_sessions == 0)
    assert any("environment" in r.getMessage() and "0.3" in r.getMessage() for r in caplog.records)


def test_a_slow_script_is_not_cut_off_by_the_environment_time_limit(agi_site: Site, start_server: Start) -> None:
    agi_site.settings.agi.environment_timeout = 0.2
    server = start_server(agi_site)
    t = fastagi_call(server.host, server.port, "route", exec_delay=0.5, env={"extension": "5550000"},
                     args=("fallback=PJSIP/operator",))
    assert t.status == "SUCCESS" and t.executed == [("Dial", "PJSIP/operator,30")]


def test_connections_beyond_the_limit_are_refused_with_failure(
    agi_site: Site, start_server: Start, caplog: pytest.LogCaptureFixture
) -> None:
    with agi_site.db.connection_context():
        CallerName.create(number="5551234", name="Acme Sales")
    agi_site.settings.agi.max_connections = 2
    server = start_server(agi_site)
    held = [socket.create_connection((server.host, server.port)) for _ in range(2)]
    try:
        wait_for(lambda: server.live_sessions == 2)
        with caplog.at_level(logging.WARNING, logger="autoprov.agi.server"):
            t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5551234"}, timeout=10)
        assert t.status == "FAILURE" and t.commands == []  # at once, not after the held ones end
        assert any("max_connections" in r.getMessage() for r in caplog.records)
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: server.live_sessions == 0)
    t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5551234"}, timeout=10)
    assert t.status == "SUCCESS" and t.variables["CALLERID(name)"] == "Acme Sales"


def test_refused_connections_do_not_hold_the_server(agi_site: Site, start_server: Start) -> None:
    agi_site.settings.agi.max_connections = 1
    server = start_server(agi_site)
    silent: list[socket.socket] = []
    try:
        with socket.create_connection((server.host, server.port)):  # the one live call
            wait_for(lambda: server.live_sessions == 1)
            # Refused peers that send a little, then nothing, and never close: the accept loop goes on.
            for _ in range(3):
                sock = socket.create_connection((server.host, server.port))
                sock.sendall(b"agi_network: yes\n")
                silent.append(sock)
            for sock in silent:
                sock.settimeout(10)
                assert sock.recv(100) == b"failure\n"
        wait_for(lambda: server.live_sessions == 0)
        t = fastagi_call(server.host, server.port, "no-such-script", timeout=10)
        assert t.status == "FAILURE" and not t.error  # answered by a live accept loop, not a timeout
    finally:
        for sock in silent:
            sock.close()
