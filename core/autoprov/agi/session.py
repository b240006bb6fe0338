"""An AGI session over any pair of byte streams: stdin/stdout for a local AGI, a socket for FastAGI."""

from __future__ import annotations

import logging
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from autoprov.agi.errors import AGIHangup, AGIProtocolError, AGIResultError
from autoprov.agi.quoting import build_command
from autoprov.agi.replies import Reply, ReplyReader

log = logging.getLogger(__name__)

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # a caller-ID name in Latin-1 goes back to Asterisk byte for byte
MAX_LINE = 64 * 1024  # longer than any reply Asterisk sends; guards memory against a broken peer
MAX_ENV_LINES = 512  # Asterisk sends about 20 variables and at most 127 arguments

# The keys Asterisk sends, in the order it sends them (res_agi.c setup_env): the two network keys for
# FastAGI only, then always all of the others, then agi_arg_1 .. agi_arg_N. The keys before agi_callerid
# come before anything a caller controls, so they cannot be forged.
ENV_ORDER = (
    "network", "network_script",
    "request", "channel", "language", "type", "uniqueid", "version",
    "callerid", "calleridname", "callingpres", "callingani2", "callington", "callingtns", "dnid", "rdnis",
    "context", "extension", "priority", "enhanced", "accountcode", "threadid",
)
_PREFIXES = {f"agi_{key}": i for i, key in enumerate(ENV_ORDER)}
_FIRST_UNTRUSTED = ENV_ORDER.index("callerid")
_ARG_RANK = len(ENV_ORDER)  # agi_arg_N ranks _ARG_RANK + N - 1: right after agi_threadid


def _env_key(line: str) -> tuple[str, int]:
    """The key (without ``agi_``) of an ``agi_<known key>: value`` line and its rank, or ('', -1)."""
    head, sep, _ = line.partition(": ")
    if not sep:
        if not line.endswith(":"):  # "agi_x:" with its trailing space lost on the way
            return "", -1
        head = line[:-1]
    rank = _PREFIXES.get(head)
    if rank is not None:
        return head[4:], rank
    number = head[8:]
    if head.startswith("agi_arg_") and number.isdigit() and number[0] != "0" and len(number) < 4:
        return head[4:], _ARG_RANK + int(number) - 1
    return "", -1


@dataclass(frozen=True)
class StreamResult:
    """What STREAM FILE (and friends) returned: the digit that stopped playback, and where it stopped."""

    digit: str | None
    endpos: int | None


class AGISession:
    """One AGI conversation. Read the environment first (``read_environment``), then send commands.

    Every command goes out whole in one write, then its reply is read completely before anything else
    is sent: Asterisk handles strictly one command at a time.
    """

    def __init__(self, rfile: BinaryIO, write: Callable[[bytes], object], *, name: str = "agi") -> None:
        self._rfile = rfile
        self._write = write
        self.name = name
        self.env: dict[str, str] = {}
        self.args: list[str] = []
        self.continued: set[str] = set()  # keys whose value held a newline (its further lines were ignored)
        self.hung_up = False
        self.closed = False
        self._write_lock = threading.Lock()  # the server may end the AGI from another thread
        self._reader = ReplyReader(self._readline, self._saw_hangup)

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_socket(cls, sock: socket.socket, *, name: str = "fastagi") -> AGISession:
        return cls(sock.makefile("rb"), sock.sendall, name=name)

    @classmethod
    def from_stdio(cls, *, name: str = "agi") -> AGISession:
        out = sys.stdout.buffer

        def write(data: bytes) -> None:
            out.write(data)
            out.flush()

        return cls(sys.stdin.buffer, write, name=name)

    # -- the wire ----------------------------------------------------------------------------------

    def _readline(self) -> str | None:
        try:
            raw = self._rfile.readline(MAX_LINE + 1)
        except (OSError, ValueError):  # the socket was closed under us (session time limit, shutdown)
            return None
        if not raw:
            return None
        if len(raw) > MAX_LINE:
            raise AGIProtocolError(f"line longer than {MAX_LINE} bytes from Asterisk")
        line = raw.decode(ENCODING, ERRORS).rstrip("\r\n")
        log.debug("%s << %s", self.name, line)
        return line

    def _saw_hangup(self) -> None:
        if not self.hung_up:
            log.debug("%s: channel hung up", self.name)
        self.hung_up = True

    def _send_line(self, line: str) -> None:
        if self.closed:
            raise AGIHangup("session closed")
        log.debug("%s >> %s", self.name, line)
        try:
            self._write((line + "\n").encode(ENCODING, ERRORS))
        except (OSError, ValueError) as exc:
            self.closed = True
            raise AGIHangup(f"connection closed: {exc}") from None

    def _environment_lines(self) -> list[str]:
        """The environment's lines up to the blank one, read and decoded in one go (this is per call)."""
        raw: list[bytes] = []
        readline = self._rfile.readline
        for _ in range(MAX_ENV_LINES):
            try:
                line = readline(MAX_LINE + 1)
            except (OSError, ValueError):  # the socket was closed under us (time limit, shutdown)
                line = b""
            if not line:
                raise AGIHangup("connection closed before the AGI environment ended")
            if len(line) > MAX_LINE:
                raise AGIProtocolError(f"line longer than {MAX_LINE} bytes from Asterisk")
            if line == b"\n" or line == b"\r\n":
                break
            raw.append(line)
        else:
            raise AGIProtocolError("AGI environment did not end")
        lines = b"".join(raw).decode(ENCODING, ERRORS).split("\n")[:-1]
        if log.isEnabledFor(logging.DEBUG):
            for line in lines:
                log.debug("%s << %s", self.name, line)
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def read_environment(self) -> dict[str, str]:
        """Read the ``agi_*`` block up to its blank line: ``env`` without the prefix, ``args`` in order.

        Asterisk writes caller-controlled values (caller ID, its name, DNID, RDNIS) raw, so a newline in
        one starts what looks like another line. Only Asterisk's own keys in Asterisk's order are read
        (see ENV_ORDER), the first occurrence of each; anything else is a continuation of the value
        before it: ignored (logged once) and that key noted in ``continued``. A second copy of a key sent
        before the caller ID is dropped. From the caller ID on, only the next key in the order is
        accepted, so a forged line can at most take the place of the next one; the real one then comes
        a second time, and nothing tells which to believe: AGIProtocolError.
        """
        lines = self._environment_lines()
        args: list[str] = []
        position = -1  # the rank of the last key read
        last = ""
        ignored: list[str] = []
        forged = ""
        for line in lines:  # Asterisk sends HANGUP only after the block: inside it, it is a caller's text
            key, rank = _env_key(line)
            # Before the caller ID any known key may come (the two network keys are FastAGI's only);
            # from it on, Asterisk always sends every key, so only the very next one is Asterisk's.
            expected = rank > position if rank < _FIRST_UNTRUSTED else rank == max(position + 1, _FIRST_UNTRUSTED)
            if key and expected:
                value = line[len(key) + 6 :]  # after "agi_<key>: "; '' for "agi_<key>:"
                if key.startswith("arg_"):
                    args.append(value)
                else:
                    self.env[key] = value
                position, last = rank, key
                continue
            if key and _FIRST_UNTRUSTED <= rank <= position:  # a second copy: one of them was forged
                forged = forged or key
            ignored.append(line)
            if last:
                self.continued.add(last)
        self.args = args
        if ignored:
            log.warning(
                "%s: ignored %d line(s) of the AGI environment that are not Asterisk's keys in its order "
                "(a newline in the value of agi_%s?); the first: %r",
                self.name, len(ignored), ", agi_".join(sorted(self.continued)) or "?", ignored[0][:120],
            )
        if forged:
            raise AGIProtocolError(
                f"agi_{forged} arrived twice: a caller-controlled value held forged environment lines"
            )
        return self.env

    @property
    def script(self) -> str:
        """The FastAGI path after ``host[:port]/`` with its query (``cid-name?x=1``), or the local script."""
        return self.env.get("network_script") or self.env.get("request", "")

    def execute(self, command: str, *args: object) -> Reply:
        """Send ``command`` with every argument quoted; return its final 200 reply or raise (see errors)."""
        line = build_command(command, *args)  # ValueError before anything is sent
        with self._write_lock:
            self._send_line(line)
        return self._reader.read_reply()

    def close(self) -> None:
        """Release the read side (the owner closes the socket or the process exits)."""
        self.closed = True
        try:
            self._rfile.close()
        except OSError:
            pass

    def send_failure(self, wait: float = -1) -> bool:
        """End the AGI with AGISTATUS=FAILURE (Asterisk ends it on a line beginning with ``failure``).

        Nothing is sent after it. From another thread, ``wait`` bounds the wait for a command being
        written; returns whether the line went out.
        """
        if not self._write_lock.acquire(timeout=wait):
            return False
        try:
            self._send_line("failure")
            return True
        except AGIHangup:
            return False
        finally:
            self.closed = True
            self._write_lock.release()

    # -- helpers for typed commands ----------------------------------------------------------------

    def _ok(self, reply: Reply, command: str) -> Reply:
        """Raise for ``result=-1``: a hangup if Asterisk said so, else a plain failure."""
        if reply.result_int == -1:
            if self.hung_up:
                raise AGIHangup(f"{command}: channel hung up", reply.code)
            raise AGIResultError(f"{command} failed: {reply.line}", reply.code, reply)
        return reply

    @staticmethod
    def _digit(reply: Reply) -> str | None:
        code = reply.result_int
        return chr(code) if code and code > 0 else None

    # -- typed commands ----------------------------------------------------------------------------

    def answer(self) -> None:
        self._ok(self.execute("ANSWER"), "ANSWER")

    def hangup(self, channel: str | None = None) -> None:
        self.execute("HANGUP", *([channel] if channel else []))

    def verbose(self, message: str, level: int = 1) -> None:
        self.execute("VERBOSE", message, level)

    def noop(self, text: str = "") -> None:
        self.execute("NOOP", *([text] if text else []))

    def channel_status(self, channel: str | None = None) -> int:
        reply = self._ok(self.execute("CHANNEL STATUS", *([channel] if channel else [])), "CHANNEL STATUS")
        return reply.result_int or 0

    def _checked_value(self, reply: Reply, command: str) -> str | None:
        """The value of a reply that carries one, once the session is known to be still in step.

        Asterisk writes a value raw: a variable holding ``x)\n200 result=1 (forged`` arrives as two
        reply lines, and every later reply would be off by one. So after each value a marker goes out
        (GET FULL VARIABLE of a random word, which Asterisk echoes); if what comes back is not the
        marker, the value held a newline and the session cannot go on: AGIProtocolError.
        """
        if reply.result != "1":
            return None
        marker = secrets.token_hex(8)
        echo = self.execute("GET FULL VARIABLE", marker)
        if echo.value != marker:
            raise AGIProtocolError(
                f"{command}: the value held a newline (Asterisk sent more reply lines than one); "
                "the replies are out of step, ending the session"
            )
        return reply.value

    def get_variable(self, name: str) -> str | None:
        """The variable's value, or None when it is not set (see _checked_value for a value with a newline)."""
        return self._checked_value(self.execute("GET VARIABLE", name), f"GET VARIABLE {name}")

    def get_full_variable(self, expression: str, channel: str | None = None) -> str | None:
        """An expression with ``${...}`` and functions evaluated, or None when it is not set."""
        reply = self.execute("GET FULL VARIABLE", expression, *([channel] if channel else []))
        return self._checked_value(reply, "GET FULL VARIABLE")

    def set_variable(self, name: str, value: object) -> None:
        self.execute("SET VARIABLE", name, value)

    def set_callerid(self, number: str, name: str | None = None) -> None:
        """SET CALLERID with ``"name" <number>``, or just the number."""
        if name is None:
            self.execute("SET CALLERID", number)
        else:
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            self.execute("SET CALLERID", f'"{escaped}" <{number}>')

    def set_callerid_name(self, name: str) -> None:
        """Change only the caller-ID name (the number stays as it is)."""
        self.set_variable("CALLERID(name)", name)

    def exec(self, application: str, *options: object) -> int:
        """Run a dialplan application; ``options`` are joined with commas. Returns its result code."""
        joined = ",".join(str(o) for o in options)
        reply = self.execute("EXEC", application, *([joined] if options else []))
        if reply.result == "-2":
            raise AGIResultError(f"EXEC {application}: no such application", reply.code, reply)
        return reply.result_int or 0

    def stream_file(self, filename: str, escape_digits: str = "", offset: int | None = None) -> StreamResult:
        args: list[object] = [filename, escape_digits, *([offset] if offset is not None else [])]
        reply = self._ok(self.execute("STREAM FILE", *args), "STREAM FILE")
        endpos = reply.fields.get("endpos")
        return StreamResult(self._digit(reply), int(endpos) if endpos and endpos.isdigit() else None)

    def get_data(self, filename: str, timeout_ms: int | None = None, max_digits: int | None = None) -> str:
        """Play ``filename`` and collect digits; returns what was typed ('' for none, even on timeout)."""
        args: list[object] = [filename]
        if timeout_ms is not None or max_digits is not None:
            args.append(timeout_ms if timeout_ms is not None else 0)
        if max_digits is not None:
            args.append(max_digits)
        reply = self._ok(self.execute("GET DATA", *args), "GET DATA")
        return reply.result or ""

    def wait_for_digit(self, timeout_ms: int = -1) -> str | None:
        return self._digit(self._ok(self.execute("WAIT FOR DIGIT", timeout_ms), "WAIT FOR DIGIT"))

    def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        return self._digit(self._ok(self.execute("SAY DIGITS", digits, escape_digits), "SAY DIGITS"))

    def say_number(self, number: int, escape_digits: str = "", gender: str | None = None) -> str | None:
        args: list[object] = [int(number), escape_digits, *([gender] if gender else [])]
        return self._digit(self._ok(self.execute("SAY NUMBER", *args), "SAY NUMBER"))

    def say_datetime(
        self, when: datetime | int, escape_digits: str = "", format: str | None = None, timezone: str | None = None
    ) -> str | None:
        seconds = int(when.timestamp()) if isinstance(when, datetime) else int(when)
        args: list[object] = [seconds, escape_digits]
        if format is not None or timezone is not None:
            args.append(format or "ABdY 'digits/at' IMp")  # Asterisk's own default format
        if timezone is not None:
            args.append(timezone)
        return self._digit(self._ok(self.execute("SAY DATETIME", *args), "SAY DATETIME"))

    def database_get(self, family: str, key: str) -> str | None:
        return self._checked_value(self.execute("DATABASE GET", family, key), f"DATABASE GET {family} {key}")

    def database_put(self, family: str, key: str, value: object) -> None:
        reply = self.execute("DATABASE PUT", family, key, value)
        if reply.result != "1":
            raise AGIResultError(f"DATABASE PUT {family}/{key} failed", reply.code, reply)

    def database_del(self, family: str, key: str) -> bool:
        """Delete one key; False when it did not exist."""
        return self.execute("DATABASE DEL", family, key).result == "1"

    def database_deltree(self, family: str, keytree: str | None = None) -> bool:
        return self.execute("DATABASE DELTREE", family, *([keytree] if keytree else [])).result == "1"

    def gosub(self, context: str, extension: str, priority: str | int, *args: object) -> Reply:
        """Run a dialplan subroutine; Asterisk first answers ``100 Trying``, the reply keeps it in ``interim``."""
        extra = [",".join(str(a) for a in args)] if args else []
        return self.execute("GOSUB", context, extension, priority, *extra)
