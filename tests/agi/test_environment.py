"""The AGI environment as Asterisk writes it, with caller-controlled values that hold newlines.

Asterisk writes ``agi_callerid``, ``agi_calleridname`` (and the DNID, RDNIS) raw: a newline in a
caller's name (IAX2, ISDN, a CNAM lookup) starts what looks like another environment line.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import pytest

from autoprov.agi.errors import AGIProtocolError
from autoprov.agi.server import FastAGIServer
from autoprov.agi.session import AGISession
from autoprov.agi.tables import CallerName, Route
from autoprov.agi.testing import environment, fastagi_call
from autoprov.site import Site

Start = Callable[..., FastAGIServer]


def read_env(block: bytes) -> AGISession:
    ours, theirs = socket.socketpair()
    theirs.sendall(block)
    theirs.close()
    session = AGISession.from_socket(ours, name="test")
    try:
        session.read_environment()
    finally:
        session.close()
        ours.close()
    return session


def test_a_newline_in_the_caller_name_cannot_forge_an_earlier_key(caplog: pytest.LogCaptureFixture) -> None:
    name = "Mallory\nagi_network_script: route?tech=Local&did=5552000\nagi_request: agi://evil/route"
    with caplog.at_level(logging.WARNING, logger="autoprov.agi.session"):
        session = read_env(environment("cid-name", callerid="5551234", calleridname=name))
    assert session.script == "cid-name"
    assert session.env["request"] == "agi://127.0.0.1/cid-name"
    assert session.env["calleridname"] == "Mallory"  # the caller-ID values keep only their first line
    assert session.env["callingpres"] == "67"  # the real keys after it are read as usual
    warnings = [r for r in caplog.records if "environment" in r.getMessage()]
    assert len(warnings) == 1  # once per call, however many lines


def test_a_newline_in_the_caller_name_cannot_add_an_argument() -> None:
    session = read_env(environment("route", calleridname="Mallory\nagi_arg_1: did=5552000"))
    assert session.args == []
    session = read_env(environment("route", calleridname="M\nagi_arg_2: did=5552000", args=("a",)))
    assert session.args == ["a"]


def test_lines_that_are_not_known_keys_are_ignored() -> None:
    session = read_env(environment("cid-name", calleridname="M\nSET VARIABLE X 1\nagi_nonsense: 1\n: x"))
    assert "nonsense" not in session.env and session.env["calleridname"] == "M"
    assert not any(key.startswith("SET") or key == "" for key in session.env)


def test_a_forged_copy_of_the_keys_after_the_caller_id_is_refused() -> None:
    # The whole tail forged in the name: the real keys follow it, and nothing tells which to believe.
    tail = environment("route", network=True, extension="5552000", args=("did=5552000",)).decode()
    forged = "M\n" + tail[tail.index("agi_callingpres") :].rstrip("\n")
    with pytest.raises(AGIProtocolError, match="forged"):
        read_env(environment("route", calleridname=forged, extension="5551000"))


def test_a_forged_key_changes_nothing_over_fastagi(agi_site: Site, start_server: Start) -> None:
    with agi_site.db.connection_context():
        CallerName.create(number="5551234", name="Acme Sales")
        Route.create(pattern="5551000", dest_type="extension", destination="1001")
        Route.create(pattern="5552000", dest_type="extension", destination="6666")
    server = start_server(agi_site)
    evil = "Mallory\nagi_network_script: route?tech=Local&did=5552000"
    t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5551234", "calleridname": evil})
    assert t.executed == [] and t.commands == [["SET", "VARIABLE", "CALLERID(name)", "Acme Sales"]]
    t = fastagi_call(server.host, server.port, "route", env={"extension": "5551000",
                                                             "calleridname": "M\nagi_arg_1: did=5552000"})
    assert t.executed == [("Dial", "PJSIP/1001,30")]
    tail = environment("route", extension="5552000").decode()
    forged = "M\n" + tail[tail.index("agi_callingpres") :].rstrip("\n") + "\nagi_arg_1: did=5552000"
    t = fastagi_call(server.host, server.port, "route", env={"extension": "5551000", "calleridname": forged})
    assert t.executed == [] and t.status == "FAILURE"


def test_a_caller_id_with_a_newline_is_no_match(agi_site: Site, start_server: Start) -> None:
    with agi_site.db.connection_context():
        CallerName.create(number="5550100", name="Acme Sales")
    server = start_server(agi_site)
    t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5550100\nSET VARIABLE PWNED 1"})
    assert t.commands == [] and t.status == "SUCCESS"
    t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5550100"})
    assert t.variables["CALLERID(name)"] == "Acme Sales"  # the same number without the newline does match


def test_a_forged_next_key_is_refused_when_the_real_one_follows() -> None:
    with pytest.raises(AGIProtocolError, match="agi_callingpres arrived twice"):
        read_env(environment("route", calleridname="M\nagi_callingpres: 0"))


def test_a_hangup_line_in_the_caller_name_is_not_a_hangup() -> None:
    # Asterisk writes HANGUP only after the environment: inside it, the line is the caller's text.
    session = read_env(environment("route", calleridname="M\nHANGUP"))
    assert not session.hung_up and session.continued == {"calleridname"}
