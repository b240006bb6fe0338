"""A scripted Asterisk, for testing AGI scripts without one (and for the benchmark).

It speaks AGI as a real Asterisk does (see docs/agi.md): the environment block in pieces, a 520 usage
block in pieces, ``HANGUP`` at a chosen command, 511 for most commands after hangup, and it records every
command as Asterisk would split it. It also notices a script that sends a second command before reading
the first reply, or a command in two writes: a real Asterisk stalls on both.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Commands Asterisk still runs after hangup (res_agi.c marks them dead-safe); the rest get 511.
DEAD_OK = {
    ("DATABASE", "GET"),
    ("DATABASE", "PUT"),
    ("DATABASE", "DEL"),
    ("DATABASE", "DELTREE"),
    ("EXEC",),
    ("GET", "VARIABLE"),
    ("GET", "FULL", "VARIABLE"),
    ("NOOP",),
    ("SET", "VARIABLE"),
    ("VERBOSE",),
}

USAGE_520 = [
    "520-Invalid command syntax.  Proper usage follows:",
    " Usage: SET VARIABLE <variablename> <value>",
    "        Sets a variable to the given value. Replies look like:",
    "200 result=1",  # usage text may quote replies: only a line beginning "520 " ends the block
    "",
    "520 End of proper usage.",
]
USAGE_520_OLD = [
    "520-Invalid command syntax.  Proper usage follows:",
    " Usage: SET VARIABLE <variablename> <value>",
    "        Sets a variable to the given value.520 End of proper usage.",
]
USAGE_520_NONE = ["520 Invalid command syntax.  Proper usage not available."]
NOT_PERMITTED = "511 Command Not Permitted on a dead channel or intercept routine"

# (words, minimum arguments after the words, maximum)
_ARITY: dict[tuple[str, ...], tuple[int, int]] = {
    ("ANSWER",): (0, 0),
    ("HANGUP",): (0, 1),
    ("VERBOSE",): (1, 2),
    ("NOOP",): (0, 99),
    ("CHANNEL", "STATUS"): (0, 1),
    ("GET", "VARIABLE"): (1, 1),
    ("GET", "FULL", "VARIABLE"): (1, 2),
    ("SET", "VARIABLE"): (2, 2),
    ("SET", "CALLERID"): (1, 1),
    ("EXEC",): (1, 2),
    ("STREAM", "FILE"): (2, 3),
    ("GET", "DATA"): (1, 3),
    ("WAIT", "FOR", "DIGIT"): (0, 1),
    ("SAY", "DIGITS"): (2, 2),
    ("SAY", "NUMBER"): (2, 3),
    ("SAY", "DATETIME"): (2, 4),
    ("DATABASE", "GET"): (2, 2),
    ("DATABASE", "PUT"): (3, 3),
    ("DATABASE", "DEL"): (2, 2),
    ("DATABASE", "DELTREE"): (1, 2),
    ("GOSUB",): (3, 4),
}


def split_args(line: str) -> list[str]:
    """Split a command line exactly as Asterisk's ``parse_args`` does (quotes, backslash escapes)."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:  # an opening quote after whitespace starts a word, even ""
                cur = []
                argv.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            argv.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


def environment(script: str | None = None, *, network: bool = True, args: tuple[str, ...] = (), **env: str) -> bytes:
    """The block Asterisk sends first; ``env`` overrides the defaults (``callerid="5551234"``)."""
    values = {
        "request": f"agi://127.0.0.1/{script}" if network else (script or "agi"),
        "channel": "PJSIP/trunk-00000001",
        "language": "en",
        "type": "PJSIP",
        "uniqueid": "1700000000.1",
        "version": "22.10.1",
        "callerid": "unknown",
        "calleridname": "unknown",
        "callingpres": "67",
        "callingani2": "0",
        "callington": "0",
        "callingtns": "0",
        "dnid": "unknown",
        "rdnis": "unknown",
        "context": "from-trunk",
        "extension": "s",
        "priority": "1",
        "enhanced": "0.0",
        "accountcode": "",
        "threadid": "140000000000000",
    }
    values.update(env)
    lines = []
    if network:
        lines.append("agi_network: yes")
        if script:
            lines.append(f"agi_network_script: {script}")
    lines += [f"agi_{k}: {v}" for k, v in values.items()]
    lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode("utf-8", "surrogateescape")


@dataclass
class Transcript:
    """What happened: the commands as Asterisk split them, the channel's state, and how the AGI ended."""

    commands: list[list[str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    astdb: dict[tuple[str, str], str] = field(default_factory=dict)
    executed: list[tuple[str, str]] = field(default_factory=list)
    status: str = ""  # SUCCESS, FAILURE or HANGUP, as AGISTATUS would say; TIMEOUT: the peer gave up waiting
    hung_up: bool = False
    pipelined: bool = False  # the script wrote a second command before reading a reply
    split_writes: bool = False  # a command arrived in more than one piece
    error: str = ""


class ScriptedAsterisk:
    """Plays Asterisk over ``recv``/``send``. Behaviour knobs:

    - ``hangup_at``: the channel hangs up as command number N (1-based) arrives: ``HANGUP`` is written
      before its reply, and from then on only dead-safe commands succeed.
    - ``hangup_notice``: how the script learns of that hangup instead of the ``HANGUP`` line. Asterisk writes
      the line to a FastAGI peer but signals a local AGI process with SIGHUP (``local_call`` does that).
    - ``chunk``/``chunk_delay``: write everything in pieces of that many bytes, pausing between them.
    - ``usage_shape``: "new", "old" or "none", the 520 reply a command with wrong arguments gets.
    - ``exec_results``: what EXEC of an application returns (default 0); ``exec_delay`` seconds it takes;
      ``on_exec(application, options)`` is called while it runs (a test can hold a Dial there); an int
      it returns is the result.
    - ``digits``: what GET DATA returns ('' means a timeout).
    - ``missing_files``: STREAM FILE of these gives ``result=-1 endpos=0``.
    """

    def __init__(
        self,
        recv: Callable[[int], bytes],
        send: Callable[[bytes], object],
        *,
        hangup_at: int | None = None,
        hangup_notice: Callable[[], object] | None = None,
        chunk: int | None = None,
        chunk_delay: float = 0.0,
        usage_shape: str = "new",
        exec_results: dict[str, int] | None = None,
        exec_delay: float = 0.0,
        on_exec: Callable[[str, str], object] | None = None,
        digits: str = "",
        missing_files: tuple[str, ...] = (),
        variables: dict[str, str] | None = None,
        env_pause: float = 0.002,
    ) -> None:
        self._recv = recv
        self._send_raw = send
        self.hangup_at = hangup_at
        self.hangup_notice = hangup_notice or (lambda: self.send(b"HANGUP\n"))
        self.chunk = chunk
        self.chunk_delay = chunk_delay
        self.usage_shape = usage_shape
        self.exec_results = exec_results or {}
        self.exec_delay = exec_delay
        self.on_exec = on_exec
        self.digits = digits
        self.missing_files = missing_files
        self.t = Transcript(variables=dict(variables or {}))
        self._buf = b""
        self.env_pause = env_pause  # between the two segments of the environment (0 in the benchmark)

    # -- wire --------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if not self.chunk:
            self._send_raw(data)
            return
        for i in range(0, len(data), self.chunk):
            self._send_raw(data[i : i + self.chunk])
            if self.chunk_delay:
                time.sleep(self.chunk_delay)

    def send_lines(self, lines: list[str], pause: float = 0.0) -> None:
        for line in lines:
            self.send((line + "\n").encode("utf-8", "surrogateescape"))
            if pause:
                time.sleep(pause)

    def read_command(self) -> str | None:
        pieces = 0
        while b"\n" not in self._buf:
            data = self._recv(65536)
            if not data:
                return None
            if self._buf:
                pieces += 1
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        if pieces:
            self.t.split_writes = True
        if self._buf:  # Asterisk would leave this second command unprocessed
            self.t.pipelined = True
        return line.decode("utf-8", "surrogateescape").rstrip("\r")

    # -- the session -------------------------------------------------------------------------------

    def run(self, env_block: bytes) -> Transcript:
        # The environment arrives in pieces, as on a real Asterisk (two TCP segments).
        half = max(1, len(env_block) // 2)
        self.send(env_block[:half])
        if self.env_pause:
            time.sleep(self.env_pause)
        self.send(env_block[half:])
        try:
            self._loop()
        except TimeoutError as exc:  # the test's own limit: the script never ended, so no AGISTATUS yet
            self.t.error = str(exc)
            self.t.status = self.t.status or "TIMEOUT"
        except OSError as exc:  # Asterisk takes a broken connection as the script's end, like a close
            self.t.error = str(exc)
            self.t.status = self.t.status or ("HANGUP" if self.t.hung_up else "SUCCESS")
        return self.t

    def _loop(self) -> None:
        n = 0
        while True:
            line = self.read_command()
            if line is None:
                self.t.status = "HANGUP" if self.t.hung_up else "SUCCESS"
                return
            if line.lower().startswith("failure"):
                self.t.status = "FAILURE"
                return
            n += 1
            argv = split_args(line)
            self.t.commands.append(argv)
            if self.hangup_at is not None and n >= self.hangup_at and not self.t.hung_up:
                self.t.hung_up = True
                self.hangup_notice()
            self._answer(argv)

    def _answer(self, argv: list[str]) -> None:
        upper = [a.upper() for a in argv]
        words = next((w for w in sorted(_ARITY, key=len, reverse=True) if tuple(upper[: len(w)]) == w), None)
        if words is None:
            self.send_lines(["510 Invalid or unknown command"])
            return
        args = argv[len(words) :]
        low, high = _ARITY[words]
        if not low <= len(args) <= high:
            shape = {"new": USAGE_520, "old": USAGE_520_OLD, "none": USAGE_520_NONE}[self.usage_shape]
            self.send_lines(shape, pause=0.02)  # a 520 block arrives tens of milliseconds apart
            return
        if self.t.hung_up and words not in DEAD_OK:
            self.send_lines([NOT_PERMITTED])
            return
        self.send_lines(self._reply(words, args))

    def _reply(self, words: tuple[str, ...], args: list[str]) -> list[str]:
        t = self.t
        match words:
            case ("HANGUP",):
                t.hung_up = True
                return ["200 result=1"]
            case ("GET", "VARIABLE"):
                value = t.variables.get(args[0])
                return [f"200 result=1 ({value})"] if value is not None else ["200 result=0"]
            case ("GET", "FULL", "VARIABLE"):
                expanded = re.sub(r"\$\{([^}]*)\}", lambda m: t.variables.get(m.group(1), ""), args[0])
                return [f"200 result=1 ({expanded})"]
            case ("SET", "VARIABLE"):
                t.variables[args[0]] = args[1]
                return ["200 result=1"]
            case ("SET", "CALLERID"):
                t.variables["CALLERID(all)"] = args[0]
                return ["200 result=1"]
            case ("EXEC",):
                t.executed.append((args[0], args[1] if len(args) > 1 else ""))
                result = self.exec_results.get(args[0].lower(), 0)
                if self.on_exec:
                    returned = self.on_exec(*t.executed[-1])
                    if type(returned) is int:  # the application's own result (-1: the channel hung up)
                        result = returned
                if self.exec_delay:
                    time.sleep(self.exec_delay)
                return [f"200 result={result}"]
            case ("STREAM", "FILE"):
                if args[0] in self.missing_files:
                    return ["200 result=-1 endpos=0"]
                return ["200 result=0 endpos=160"]
            case ("GET", "DATA"):
                return [f"200 result={self.digits}"] if self.digits else ["200 result= (timeout)"]
            case ("DATABASE", "GET"):
                value = t.astdb.get((args[0], args[1]))
                return [f"200 result=1 ({value})"] if value is not None else ["200 result=0"]
            case ("DATABASE", "PUT"):
                t.astdb[(args[0], args[1])] = args[2]
                return ["200 result=1"]
            case ("DATABASE", "DEL"):
                return ["200 result=1" if t.astdb.pop((args[0], args[1]), None) is not None else "200 result=0"]
            case ("CHANNEL", "STATUS"):
                return ["200 result=6"]
            case ("GOSUB",):
                return ["100 result=0 Trying...", "200 result=0 Gosub complete"]
            case ("VERBOSE",) | ("NOOP",):
                return ["200 result=1"] if words == ("VERBOSE",) else ["200 result=0"]
            case _:
                return ["200 result=0"]


def fastagi_call(
    host: str, port: int, script: str, *, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
    timeout: float = 30.0, **knobs: object,
) -> Transcript:
    """One FastAGI call to ``agi://host:port/script`` played by a ScriptedAsterisk; returns its transcript."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = ScriptedAsterisk(sock.recv, sock.sendall, **knobs)  # type: ignore[arg-type]
        return peer.run(environment(script, args=args, **(env or {})))


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``proc`` (an ``autoprov agi serve``) accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit status {proc.poll()})") from None
            time.sleep(0.05)


def local_call(
    argv: list[str], *, env: dict[str, str] | None = None, args: tuple[str, ...] = (), timeout: float = 60.0,
    process_env: dict[str, str] | None = None, cwd: str | None = None, **knobs: object,
) -> tuple[Transcript, subprocess.CompletedProcess[bytes]]:
    """Run a local AGI program with its stdin/stdout as the AGI streams, as Asterisk's ``AGI()`` does."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=process_env, cwd=cwd
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout_fd = proc.stdin, proc.stdout.fileno()

    def send(data: bytes) -> None:
        stdin.write(data)
        stdin.flush()

    knobs.setdefault("hangup_notice", lambda: proc.send_signal(signal.SIGHUP))  # as Asterisk tells a local AGI
    peer = ScriptedAsterisk(lambda n: os.read(stdout_fd, n), send, **knobs)  # type: ignore[arg-type]
    stderr: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr.append(proc.stderr.read() if proc.stderr else b""), daemon=True)
    drain.start()
    script = argv[-1]
    try:
        transcript = peer.run(environment(script, network=False, args=args, **(env or {})))
    finally:
        try:
            stdin.close()
        except OSError:
            pass
    code = proc.wait(timeout=timeout)
    drain.join(timeout)
    done = subprocess.CompletedProcess(argv, code, b"", b"".join(stderr))
    return transcript, done


# -- a dialplan, run as Asterisk runs it -------------------------------------------------------------

_LINE_RE = re.compile(r"\s*(exten|same)\s*=>\s*(.*)\Z")
_APP_RE = re.compile(r"(\w+)\((.*)\)\Z", re.S)


@dataclass
class _Priority:
    label: str
    app: str
    data: str


@dataclass
class Channel:
    """What happened to one call in :class:`Dialplan`: the applications run, what was dialled and played."""

    context: str
    exten: str
    variables: dict[str, str]
    ran: list[tuple[str, str]] = field(default_factory=list)  # (application, its data after substitution)
    dialled: list[str] = field(default_factory=list)  # the channels Dial reached (Local/ followed)
    played: list[str] = field(default_factory=list)
    agi: list[Transcript] = field(default_factory=list)
    hung_up: bool = False


class Dialplan:
    """A small part of Asterisk's PBX, enough to run the dialplans of docs/agi.md against a real server.

    It reads ``[context]``, ``exten =>``/``same =>`` lines (labels, ``n``), substitutes ``${VAR}``,
    evaluates ``$[...]`` with ``=``, ``!=``, ``&``, ``|``, and runs NoOp, Set, Goto, GotoIf, Playback,
    Hangup, Dial and AGI. AGI(agi://...) connects to ``fastagi`` (host, port) in place of the URL's
    address and plays Asterisk with a ScriptedAsterisk; AGI(program,...) runs the command line
    ``local(program, args)`` returns, in the environment ``local_env``.
    Dial asks ``answer(channel)`` for each destination's DIALSTATUS; a Local/exten@context destination
    runs that context on a channel of its own. As in Asterisk (Dial without the ``g`` option), an answered
    call ends with the callee: the caller is hung up, the AGI around that Dial ends with
    AGISTATUS=HANGUP, and nothing after it runs. An unreachable FastAGI server is AGISTATUS=FAILURE at once.
    """

    def __init__(
        self, text: str, *, fastagi: tuple[str, int] | None = None,
        local: Callable[[str, list[str]], list[str]] | None = None, local_env: dict[str, str] | None = None,
        answer: Callable[[str], str] = lambda channel: "NOANSWER",
    ) -> None:
        self.contexts: dict[str, dict[str, list[_Priority]]] = {}
        self.fastagi = fastagi
        self.local = local
        self.local_env = local_env  # Asterisk's environment, which a local AGI program inherits
        self.answer = answer
        context, exten = "", ""
        for raw in text.splitlines():
            line = raw.split(";", 1)[0].rstrip()
            if line.startswith("[") and line.endswith("]"):
                context = line[1:-1]
                self.contexts.setdefault(context, {})
                continue
            m = _LINE_RE.match(line)
            if not m:
                continue
            if m.group(1) == "exten":
                exten, _, rest = m.group(2).partition(",")
                self.contexts[context][exten] = []
            else:
                rest = m.group(2)
            priority, _, app = rest.partition(",")
            label = priority[priority.index("(") + 1 : -1] if "(" in priority else ""
            a = _APP_RE.match(app.strip())
            name, data = (a.group(1), a.group(2)) if a else (app.strip(), "")
            self.contexts[context][exten].append(_Priority(label, name, data))

    def _find(self, context: str, number: str) -> str | None:
        from autoprov.agi.routing import pattern_regex, specificity  # the ext_cmp order, as Asterisk sorts

        found = [e for e in self.contexts.get(context, {}) if pattern_regex(e).match(number)]
        return min(found, key=specificity) if found else None

    def call(self, context: str, number: str, *, callerid: str = "5551234", name: str = "") -> Channel:
        """An incoming call to ``number`` in ``context``; returns what happened to it."""
        variables = {"CALLERID(num)": callerid, "CALLERID(name)": name, "EXTEN": number, "CONTEXT": context}
        channel = Channel(context, number, variables)
        self._run(channel)
        return channel

    def _run(self, ch: Channel) -> None:
        exten = self._find(ch.context, ch.exten)
        if exten is None:
            raise ValueError(f"no extension {ch.exten} in [{ch.context}]")
        steps = self.contexts[ch.context][exten]
        i = 0
        while i < len(steps) and not ch.hung_up:
            step = steps[i]
            data = self._substitute(step.data, ch.variables)
            ch.ran.append((step.app, data))
            i += 1
            app = step.app.lower()
            if app == "gotoif":
                condition, _, branches = data.partition("?")
                yes, _, no = branches.partition(":")
                target = yes if condition.strip() not in ("", "0") else no
                if target:
                    i = next(n for n, s in enumerate(steps) if s.label == target.strip())
            elif app == "goto":
                i = next(n for n, s in enumerate(steps) if s.label == data.strip())
            elif app == "set":
                key, _, value = data.partition("=")
                ch.variables[key] = value
            elif app == "playback":
                ch.played.append(data)
            elif app == "hangup":
                ch.hung_up = True
            elif app == "dial":
                ch.hung_up = self._dial(ch, data)
            elif app == "agi":
                self._agi(ch, data)
            elif app != "noop":
                raise ValueError(f"Dialplan cannot run {step.app}")

    @staticmethod
    def _substitute(text: str, variables: dict[str, str]) -> str:
        text = re.sub(r"\$\{([^{}]*)\}", lambda m: variables.get(m.group(1), ""), text)
        return re.sub(r"\$\[(.*?)\]", lambda m: _expression(m.group(1)), text)

    def _dial(self, ch: Channel, data: str) -> bool:
        """Dial's outcome in DIALSTATUS; True when the caller is hung up (an answered call without ``g``)."""
        targets, _, rest = data.partition(",")
        options = rest.partition(",")[2]
        status = "CHANUNAVAIL"
        for target in targets.split("&"):
            if target.startswith("Local/"):
                exten, _, context = target[len("Local/") :].partition("@")
                inner = Channel(context, exten, {"EXTEN": exten, "CONTEXT": context})
                self._run(inner)
                ch.dialled.extend(inner.dialled)
                got = inner.variables.get("DIALSTATUS", "CHANUNAVAIL")
            else:
                ch.dialled.append(target)
                got = self.answer(target)
            if got == "ANSWER" or status != "ANSWER" and got != "CHANUNAVAIL":
                status = got
        ch.variables["DIALSTATUS"] = status
        return status == "ANSWER" and "g" not in options

    def _agi(self, ch: Channel, data: str) -> None:
        program, *args = _split_app_args(data)
        env = {"callerid": ch.variables.get("CALLERID(num)") or "unknown",
               "calleridname": ch.variables.get("CALLERID(name)") or "unknown",
               "extension": ch.exten, "context": ch.context, "dnid": ch.exten}

        def on_exec(application: str, options: str) -> int | None:
            if application.lower() != "dial":
                return None
            hung_up = self._dial(ch, options)
            peer.t.variables["DIALSTATUS"] = ch.variables["DIALSTATUS"]
            if hung_up:  # the callee hung up after the call: so is the caller, and Dial returns -1
                peer.t.hung_up = True
                peer.hangup_notice()
                return -1
            return None

        if program.startswith("agi://"):
            if self.fastagi is None:
                raise ValueError("no FastAGI server given")
            script = program.split("/", 3)[3]
            try:
                sock = socket.create_connection(self.fastagi, timeout=30)
            except ConnectionRefusedError:  # Asterisk gives up at once: AGISTATUS=FAILURE, the dialplan goes on
                ch.variables["AGISTATUS"] = "FAILURE"
                return
            with sock:
                peer = ScriptedAsterisk(sock.recv, sock.sendall, variables=ch.variables, on_exec=on_exec)
                t = peer.run(environment(script, args=tuple(args), **env))
        else:
            if self.local is None:
                raise ValueError("no local AGI runner given")
            argv = self.local(program, args)
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.local_env)
            assert proc.stdin is not None and proc.stdout is not None
            stdin, fd = proc.stdin, proc.stdout.fileno()

            def send(data: bytes) -> None:
                stdin.write(data)
                stdin.flush()

            peer = ScriptedAsterisk(lambda n: os.read(fd, n), send, variables=ch.variables, on_exec=on_exec,
                                    hangup_notice=lambda: proc.send_signal(signal.SIGHUP))
            t = peer.run(environment(program, network=False, args=tuple(args), **env))
            stdin.close()
            proc.wait(60)
        ch.agi.append(t)
        ch.variables.update(t.variables)
        ch.variables["AGISTATUS"] = t.status
        ch.hung_up = ch.hung_up or t.hung_up


def _expression(text: str) -> str:
    """``$[...]`` with ``=``, ``!=`` between (quoted) strings, joined by ``&`` and ``|``: "1" or "0"."""
    tokens = re.findall(r'"[^"]*"|!=|=|&|\||[^\s"=!&|]+', text)

    def value(token: str) -> str:
        return token[1:-1] if token.startswith('"') else token

    def comparison(part: list[str]) -> bool:
        if len(part) == 3 and part[1] in ("=", "!="):
            return (value(part[0]) == value(part[2])) == (part[1] == "=")
        if len(part) == 1:
            return value(part[0]) not in ("", "0")
        raise ValueError(f"Dialplan cannot evaluate $[{text}]")

    def split(items: list[str], op: str) -> list[list[str]]:
        groups: list[list[str]] = [[]]
        for item in items:
            if item == op:
                groups.append([])
            else:
                groups[-1].append(item)
        return groups

    either = any(all(comparison(c) for c in split(group, "&")) for group in split(tokens, "|"))
    return "1" if either else "0"


def _split_app_args(data: str) -> list[str]:
    """An application's arguments, split on the commas outside quotes, as Asterisk does."""
    args, current, quoted = [], [], False
    for ch in data:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            args.append("".join(current))
            current = []
            continue
        current.append(ch)
    args.append("".join(current))
    return [a.strip('"') for a in args]
