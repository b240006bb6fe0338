"""The reply parser, on every shape of reply in docs/agi.md, and as properties against a scripted peer."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoprov.agi.errors import (
    AGICommandError,
    AGIDeadChannel,
    AGIHangup,
    AGIInvalidCommand,
    AGIProtocolError,
    AGIUsageError,
)
from autoprov.agi.replies import ReplyReader, parse_result


def reader_of(*lines: str) -> tuple[ReplyReader, list[int]]:
    feed = iter(lines)
    hangups: list[int] = []
    return ReplyReader(lambda: next(feed, None), lambda: hangups.append(1)), hangups


@pytest.mark.parametrize(
    "line, result, data, fields, note",
    [
        ("200 result=1 (5145552255)", "1", "5145552255", {}, ""),
        ("200 result=0 endpos=160", "0", None, {"endpos": "160"}, ""),
        ("200 result= (timeout)", "", "timeout", {}, ""),
        ("200 result=1 ((hello)(world)) endpos=2240", "1", "(hello)(world)", {"endpos": "2240"}, ""),
        (
            '200 result=1 (speech) endpos=0 results=1 score0=969 text0="123456789" grammar0=digits',
            "1", "speech", {"endpos": "0", "results": "1", "score0": "969", "text0": "123456789",
                            "grammar0": "digits"}, "",
        ),
        ('200 result=1 (speech) text0="hi there" score0=5', "1", "speech", {"text0": "hi there", "score0": "5"}, ""),
        ("200 result=-1 endpos=0", "-1", None, {"endpos": "0"}, ""),
        ("200 result=0 Gosub complete", "0", None, {}, "Gosub complete"),
        ("100 result=0 Trying...", "0", None, {}, "Trying..."),
        ("200 result=0 (dtmf) endpos=", "0", "dtmf", {"endpos": ""}, ""),
        ('200 result=1 (a "quoted" value)', "1", 'a "quoted" value', {}, ""),
        ("200 result=1 (a)b)", "1", "a)b", {}, ""),  # an unbalanced value: the last ")" closes it
        ("200 result=1 (a(b)", "1", "a(b", {}, ""),
        ("200 result=6", "6", None, {}, ""),
    ],
)
def test_result_lines(line: str, result: str, data: str | None, fields: dict[str, str], note: str) -> None:
    reply = parse_result(line)
    assert (reply.code, reply.result, reply.data, reply.fields, reply.note) == (
        int(line[:3]), result, data, fields, note)


def test_value_takes_everything_between_the_outer_parentheses() -> None:
    assert parse_result("200 result=1 (x) endpos=5)").value == "x) endpos=5"
    assert parse_result("200 result=1 ()").value == ""
    assert parse_result("200 result=0").value is None


def test_empty_and_negative_results() -> None:
    assert parse_result("200 result= (timeout)").result_int is None
    assert parse_result("200 result=-1 endpos=0").result_int == -1


def test_errors_carry_code_and_text() -> None:
    for line, kind, code in [
        ("510 Invalid or unknown command", AGIInvalidCommand, 510),
        ("511 Command Not Permitted on a dead channel or intercept routine", AGIDeadChannel, 511),
        ("511 Command Not Permitted on a dead channel", AGIDeadChannel, 511),  # older text: code decides
        ("520 Invalid command syntax.  Proper usage not available.", AGIUsageError, 520),
        ("530 Something new", AGICommandError, 530),
    ]:
        reader, _ = reader_of(line)
        with pytest.raises(kind) as err:
            reader.read_reply()
        assert err.value.code == code and err.value.text == line[4:]
    assert issubclass(AGIDeadChannel, AGIHangup)


def test_520_block_new_shape_keeps_reader_in_step() -> None:
    reader, _ = reader_of(
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]",
        "200 result=1 (quoted in the usage text)",
        "",
        "520 End of proper usage.",
        "200 result=1 (next)",
    )
    with pytest.raises(AGIUsageError) as err:
        reader.read_reply()
    assert err.value.usage.splitlines()[1] == "200 result=1 (quoted in the usage text)"
    assert err.value.usage.endswith("\n")  # the blank line of the usage text is kept
    assert reader.read_reply().data == "next"


def test_520_block_old_shape_with_the_end_glued_on() -> None:
    reader, _ = reader_of(
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: SAY NUMBER <number> <escape digits>",
        "  Say a given number.520 End of proper usage.",
        "200 result=0",
    )
    with pytest.raises(AGIUsageError) as err:
        reader.read_reply()
    assert err.value.usage == " Usage: SAY NUMBER <number> <escape digits>\n  Say a given number."
    assert reader.read_reply().result == "0"


def test_hangup_lines_anywhere_are_noted_and_skipped() -> None:
    reader, hangups = reader_of(
        "HANGUP", "100 result=0 Trying...", "HANGUP", "200 result=0 Gosub complete",
        "520-Invalid command syntax.  Proper usage follows:", "HANGUP", " usage", "520 End of proper usage.",
    )
    reply = reader.read_reply()
    assert reply.note == "Gosub complete" and reply.interim[0].note == "Trying..."
    with pytest.raises(AGIUsageError) as err:
        reader.read_reply()
    assert err.value.usage == " usage"
    assert len(hangups) == 3
    with pytest.raises(AGIHangup):  # end of stream
        reader.read_reply()


def test_garbage_is_a_protocol_error() -> None:
    reader, _ = reader_of("Warning: something printed by PHP")
    with pytest.raises(AGIProtocolError):
        reader.read_reply()


# -- properties ----------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=40)
_balanced = st.recursive(
    st.text(st.characters(blacklist_characters='()"\r\n\x00', blacklist_categories=("Cs",)), max_size=8),
    lambda inner: st.builds(lambda a, b: f"{a}({b})", inner, inner),
    max_leaves=6,
)
_key = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
_field_value = st.one_of(
    st.from_regex(r"[A-Za-z0-9.+-]{0,8}", fullmatch=True),
    st.text(st.characters(blacklist_characters='"\r\n\x00', blacklist_categories=("Cs",)), max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    result=st.one_of(st.just(""), st.integers(-2, 9999).map(str)),
    data=st.one_of(st.none(), _balanced),
    fields=st.dictionaries(_key, _field_value, max_size=4),
)
def test_generated_result_lines_parse_back(result: str, data: str | None, fields: dict[str, str]) -> None:
    parts = [f"200 result={result}"]
    if data is not None:
        parts.append(f"({data})")
    for key, value in fields.items():
        bare = value and not any(c.isspace() or c in '"=()' for c in value)
        parts.append(f"{key}={value}" if bare else f'{key}="{value}"')
    reply = parse_result(" ".join(parts))
    assert reply.result == result
    assert reply.data == data
    assert reply.fields == fields


@settings(max_examples=100, deadline=None)
@given(
    replies=st.lists(
        st.one_of(
            st.builds(lambda v: ("value", v), _text),
            st.just(("usage", "new")),
            st.just(("usage", "old")),
            st.just(("gosub", "")),
        ),
        min_size=1,
        max_size=6,
    ),
    hangup_before=st.lists(st.booleans(), min_size=6, max_size=6),
    chunk=st.integers(1, 64),
)
def test_replies_in_arbitrary_pieces_stay_in_step(replies: list[tuple[str, str]], hangup_before: list[bool],
                                                  chunk: int) -> None:
    """However Asterisk's bytes are cut into segments, each reply is read whole and none is skipped."""
    lines: list[str] = []
    for (kind, value), hangup in zip(replies, hangup_before, strict=False):
        if hangup:
            lines.append("HANGUP")
        if kind == "value":
            lines.append(f"200 result=1 ({value})")
        elif kind == "usage" and value == "new":
            lines += ["520-Invalid command syntax.  Proper usage follows:", " Usage: X", "200 result=1",
                      "520 End of proper usage."]
        elif kind == "usage":
            lines += ["520-Invalid command syntax.  Proper usage follows:", " Usage: X520 End of proper usage."]
        else:
            lines += ["100 result=0 Trying...", "200 result=0 Gosub complete"]
    wire = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    ours, theirs = socket.socketpair()

    def send() -> None:
        for i in range(0, len(wire), chunk):
            theirs.sendall(wire[i : i + chunk])
        theirs.close()

    threading.Thread(target=send, daemon=True).start()
    rfile = ours.makefile("rb")
    hangups: list[int] = []
    reader = ReplyReader(
        lambda: (raw.decode("utf-8", "surrogateescape").rstrip("\n") if (raw := rfile.readline()) else None),
        lambda: hangups.append(1),
    )
    try:
        for kind, value in replies:
            if kind == "usage":
                with pytest.raises(AGIUsageError):
                    reader.read_reply()
            elif kind == "gosub":
                assert reader.read_reply().note == "Gosub complete"
            else:
                assert reader.read_reply().value == value
        with pytest.raises(AGIHangup):
            reader.read_reply()
    finally:
        rfile.close()
        ours.close()
    assert len(hangups) == sum(hangup_before[: len(replies)])
