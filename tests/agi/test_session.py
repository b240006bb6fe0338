"""AGISession against a scripted Asterisk on a real socket pair: realistic sessions, hangups, errors."""

from __future__ import annotations

import logging
import socket

import pytest

from autoprov.agi.errors import (
    AGIDeadChannel,
    AGIHangup,
    AGIInvalidCommand,
    AGIProtocolError,
    AGIResultError,
    AGIUsageError,
)
from autoprov.agi.session import AGISession, StreamResult
from autoprov.agi.testing import environment

from .conftest import asterisk_session


def test_environment_arrives_in_pieces_and_is_split_on_the_first_colon_space() -> None:
    env = {"callerid": "5551234", "calleridname": "Acme: Sales", "accountcode": ""}
    with asterisk_session("cid-name?x=1", env=env, args=("first", "", "a: b"), chunk=5) as (session, _):
        assert session.env["network"] == "yes"
        assert session.script == "cid-name?x=1"
        assert session.env["request"] == "agi://127.0.0.1/cid-name?x=1"
        assert session.env["calleridname"] == "Acme: Sales"
        assert session.env["accountcode"] == ""
        assert session.env["dnid"] == "unknown"
        assert "arg_1" not in session.env
        assert session.args == ["first", "", "a: b"]


def test_a_realistic_call() -> None:
    with asterisk_session(digits="1234", missing_files=("nosuch",)) as (session, t):
        session.answer()
        session.verbose("caller 5551234 in", 2)
        assert session.channel_status() == 6
        assert session.stream_file("welcome", "#") == StreamResult(None, 160)
        assert session.get_data("enter-number", 5000, 4) == "1234"
        session.say_digits("1234")
        session.say_number(42)
        session.say_datetime(1700000000, "", "IMp", "Europe/London")
        session.database_put("cidname", "5551234", "Acme Sales")
        assert session.database_get("cidname", "5551234") == "Acme Sales"
        assert session.database_del("cidname", "5551234") is True
        assert session.database_get("cidname", "5551234") is None
        assert session.exec("Playback", "beep", "noanswer") == 0
        session.set_callerid_name('Acme "Sales"')
        assert session.get_full_variable("${CALLERID(name)}") == 'Acme "Sales"'
        with pytest.raises(AGIResultError):  # a missing file gives -1 on a live channel: not a hangup
            session.stream_file("nosuch")
        session.noop("done")
        session.hangup()
    assert t.commands[0] == ["ANSWER"]
    assert ["SAY", "DATETIME", "1700000000", "", "IMp", "Europe/London"] in t.commands
    assert t.executed == [("Playback", "beep,noanswer")]
    assert t.variables["CALLERID(name)"] == 'Acme "Sales"'
    assert not t.pipelined and not t.split_writes
    assert t.status == "HANGUP"


def test_get_data_timeout_is_an_empty_result() -> None:
    with asterisk_session(digits="") as (session, _):
        assert session.get_data("enter-number", 3000, 4) == ""


def test_hangup_in_the_middle_of_a_command() -> None:
    """HANGUP arrives before the reply to the third command: dead-safe commands still work, others 511."""
    with asterisk_session(hangup_at=3, variables={"X": "1"}) as (session, t):
        session.answer()
        session.noop()
        with pytest.raises(AGIDeadChannel) as err:
            session.stream_file("welcome")
        assert err.value.code == 511
        assert session.hung_up
        assert session.get_variable("X") == "1"  # still permitted after hangup
        session.set_variable("ROUTE_STATUS", "HANGUP")
        session.verbose("bye")
        with pytest.raises(AGIHangup):
            session.answer()
    assert t.variables["ROUTE_STATUS"] == "HANGUP"
    assert t.status == "HANGUP"


def test_511_after_hangup_is_a_hangup() -> None:
    with asterisk_session(hangup_at=1) as (session, _):
        with pytest.raises(AGIHangup):
            session.channel_status()
        assert session.hung_up


@pytest.mark.parametrize("shape, usage", [("new", True), ("old", True), ("none", False)])
def test_520_usage_block_then_the_session_goes_on(shape: str, usage: bool) -> None:
    with asterisk_session(usage_shape=shape, variables={"X": "after"}) as (session, _):
        with pytest.raises(AGIUsageError) as err:
            session.execute("SET VARIABLE", "only-one-argument")
        assert err.value.code == 520
        assert ("Usage: SET VARIABLE" in err.value.usage) is usage
        assert session.get_variable("X") == "after"  # the next reply is its own, not a line of the block


def test_unknown_command_is_510() -> None:
    with asterisk_session() as (session, _):
        with pytest.raises(AGIInvalidCommand) as err:
            session.execute("FROB NICATE", "x")
        assert err.value.code == 510 and "unknown" in err.value.text


def test_gosub_waits_past_100_trying() -> None:
    with asterisk_session() as (session, t):
        reply = session.gosub("sub-ctx", "s", 1, "a", "b")
        assert reply.note == "Gosub complete"
        assert [r.note for r in reply.interim] == ["Trying..."]
    assert t.commands == [["GOSUB", "sub-ctx", "s", "1", "a,b"]]


def test_asterisk_closing_the_connection_is_a_hangup() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(environment("x"))
    session = AGISession.from_socket(ours)
    session.read_environment()
    theirs.close()
    with pytest.raises(AGIHangup):
        session.answer()
    ours.close()


def test_connection_closed_before_environment_ends() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(b"agi_network: yes\nagi_request: agi://x/y\n")
    theirs.close()
    with pytest.raises(AGIHangup):
        AGISession.from_socket(ours).read_environment()
    ours.close()


def test_every_line_is_logged_at_debug_never_printed(caplog: pytest.LogCaptureFixture,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG, logger="autoprov.agi.session")
    with asterisk_session(variables={"X": "v"}) as (session, _):
        session.get_variable("X")
    messages = [r.getMessage() for r in caplog.records]
    assert 'test >> GET VARIABLE "X"' in messages
    assert "test << 200 result=1 (v)" in messages
    assert "test << agi_network: yes" in messages
    assert capsys.readouterr().out == ""


def test_commands_go_out_whole_one_at_a_time() -> None:
    """Even with replies cut into 3-byte pieces, each command is one write sent after the last reply."""
    with asterisk_session(chunk=3) as (session, t):
        for i in range(20):
            session.set_variable(f"V{i}", i)
    assert len(t.commands) == 20 and not t.pipelined and not t.split_writes


def test_a_511_marks_the_session_hung_up_without_a_hangup_line() -> None:
    with asterisk_session(hangup_at=1, hangup_notice=lambda: None) as (session, t):
        with pytest.raises(AGIDeadChannel):
            session.answer()
        assert session.hung_up
        assert t.commands == [["ANSWER"]]


def test_a_variable_with_a_newline_cannot_forge_the_next_reply() -> None:
    # Asterisk writes the value raw: "200 result=1 (x)" then "200 result=1 (forged)" on the wire.
    forged = {"X": "x)\n200 result=1 (forged", "Y": "fine"}
    with asterisk_session(variables=forged) as (session, t):
        assert session.get_variable("Y") == "fine"
        with pytest.raises(AGIProtocolError, match="newline"):
            session.get_variable("X")
    with asterisk_session(variables={"X": "x)\n200 result=0"}) as (session, t):
        with pytest.raises(AGIProtocolError):
            session.get_full_variable("${X}")
    with asterisk_session(variables={}) as (session, t):
        t.astdb[("fam", "k")] = "v)\n200 result=1 (forged"  # written by other means: AGI refuses a newline
        with pytest.raises(AGIProtocolError):
            session.database_get("fam", "k")
