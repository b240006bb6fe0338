"""Quoting: whatever the value, Asterisk splits the line back into exactly the arguments sent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoprov.agi.quoting import MAX_COMMAND_BYTES, build_command, printable, quote
from autoprov.agi.testing import split_args

from .conftest import asterisk_session

_arg = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=60)


@settings(max_examples=500, deadline=None)
@given(st.lists(_arg, max_size=6))
def test_asterisk_splits_back_the_arguments(args: list[str]) -> None:
    assert split_args(build_command("SET VARIABLE", *args)) == ["SET", "VARIABLE", *args]


@settings(max_examples=100, deadline=None)
@given(name=st.from_regex(r"[A-Z_]{1,12}", fullmatch=True), value=_arg)
def test_set_then_get_variable_round_trips_through_the_peer(name: str, value: str) -> None:
    with asterisk_session() as (session, transcript):
        session.set_variable(name, value)
        assert session.get_variable(name) == value
    assert transcript.commands[:2] == [["SET", "VARIABLE", name, value], ["GET", "VARIABLE", name]]
    assert transcript.commands[2][:3] == ["GET", "FULL", "VARIABLE"]  # the marker: still in step
    assert not transcript.pipelined and not transcript.split_writes


@pytest.mark.parametrize("evil", ["x\nHANGUP", "x\r\nEXEC System rm", "nul\x00byte", "\n"])
def test_a_line_break_can_never_reach_the_wire(evil: str) -> None:
    with pytest.raises(ValueError):
        quote(evil)
    with asterisk_session() as (session, transcript):
        with pytest.raises(ValueError):
            session.set_variable("CALLERID(name)", evil)
        session.noop()
    assert transcript.commands == [["NOOP"]]  # nothing of the refused command was sent


def test_quote_examples() -> None:
    assert quote('a "quoted" value') == r'"a \"quoted\" value"'
    assert quote("back\\slash") == r'"back\\slash"'
    assert quote("") == '""'
    assert quote(42) == '"42"'
    assert split_args('SET VARIABLE X ""') == ["SET", "VARIABLE", "X", ""]


def test_commands_longer_than_asterisks_buffer_are_refused() -> None:
    build_command("VERBOSE", "x" * (MAX_COMMAND_BYTES - 20))
    with pytest.raises(ValueError):
        build_command("VERBOSE", "x" * MAX_COMMAND_BYTES)
    with pytest.raises(ValueError):
        build_command("SET VARIABLE\nEXEC", "x")


def test_printable_flattens_control_characters() -> None:
    assert printable("Evil\nCorp\tInc\x00") == "Evil Corp Inc"
