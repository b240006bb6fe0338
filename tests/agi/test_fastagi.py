"""The FastAGI server with the cid-name script, played by scripted Asterisks over real loopback sockets."""

from __future__ import annotations

import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import peewee
import pytest

from autoprov import hookimpl
from autoprov.agi.context import ConnectionPool, DatabaseUnavailable, ScriptContext, SessionDatabase
from autoprov.agi.runner import collect_scripts
from autoprov.agi.server import FastAGIServer
from autoprov.agi.session import AGISession
from autoprov.agi.tables import CallerName
from autoprov.agi.testing import fastagi_call
from autoprov.db import SQLITE_PRAGMAS, database, open_database
from autoprov.site import Site

Start = Callable[..., FastAGIServer]


def add_names(site: Site, **names: str) -> None:
    with site.db.connection_context():
        for number, name in names.items():
            CallerName.create(number=number.lstrip("n"), name=name)


def call(server: FastAGIServer, script: str = "cid-name", **kw: object):  # noqa: ANN201
    return fastagi_call(server.host, server.port, script, **kw)  # type: ignore[arg-type]


def test_cid_name_sets_the_name_from_the_table(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Acme Sales")
    server = start_server(agi_site)
    t = call(server, env={"callerid": "5551234", "calleridname": "WIRELESS CALLER"})
    assert t.commands == [["SET", "VARIABLE", "CALLERID(name)", "Acme Sales"]]
    assert t.variables["CALLERID(name)"] == "Acme Sales"
    assert t.status == "SUCCESS"


def test_cid_name_leaves_the_name_alone_without_an_entry(agi_site: Site, start_server: Start) -> None:
    server = start_server(agi_site)
    assert call(server, env={"callerid": "5550000"}).commands == []
    assert call(server, env={"callerid": "unknown"}).commands == []  # no caller ID: no query at all


def test_caller_id_is_only_ever_a_query_parameter(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Acme Sales")
    server = start_server(agi_site)
    for evil in ["' OR '1'='1", "5551234' --", '5551234"; DROP TABLE caller_name; --']:
        t = call(server, env={"callerid": evil})
        assert t.commands == [] and t.status == "SUCCESS"
    with agi_site.db.connection_context():
        assert CallerName.select().count() == 1


def test_a_name_with_control_characters_cannot_inject_a_command(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Evil\nEXEC System rm")
    server = start_server(agi_site)
    t = call(server, env={"callerid": "555-1234"})  # punctuation in the caller ID is ignored
    assert t.commands == [["SET", "VARIABLE", "CALLERID(name)", "Evil EXEC System rm"]]


def test_hangup_in_the_middle_of_cid_name(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Acme Sales")
    server = start_server(agi_site, scripts={"slow-cid": slow_cid})
    t = call(server, "slow-cid", env={"callerid": "5551234"}, hangup_at=2)
    assert t.commands[1][0] == "STREAM"
    assert len(t.commands) == 2  # the 511 ended the script: nothing more was sent
    assert t.hung_up


def slow_cid(session: AGISession, ctx: ScriptContext) -> None:
    session.answer()
    session.stream_file("please-wait")  # 511 here when the caller is gone
    session.set_callerid_name("never")


def test_unknown_script_ends_with_failure(agi_site: Site, start_server: Start) -> None:
    server = start_server(agi_site)
    t = call(server, "no-such-script")
    assert t.status == "FAILURE" and t.commands == []


def test_a_script_that_raises_fails_only_its_own_call(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Acme Sales")

    def broken(session: AGISession, ctx: ScriptContext) -> None:
        session.verbose("about to fail")
        raise RuntimeError("bug in a plugin")

    server = start_server(agi_site, scripts={**collect_scripts(agi_site.plugins), "broken": broken})
    bad = call(server, "broken")
    good = call(server, env={"callerid": "5551234"})
    assert bad.status == "FAILURE" and bad.commands == [["VERBOSE", "about to fail", "1"]]
    assert good.status == "SUCCESS" and good.variables["CALLERID(name)"] == "Acme Sales"


def test_database_down_leaves_the_name_and_says_failure(tmp_path: Path, agi_site: Site, start_server: Start) -> None:
    (tmp_path / "down.db").mkdir()  # SQLite cannot open a directory: every connect fails
    down = open_database(f"sqlite:///{tmp_path}/down.db")
    server = FastAGIServer(collect_scripts(agi_site.plugins), agi_site.settings, down, host="127.0.0.1", port=0)
    server.start()
    try:
        t = fastagi_call(server.host, server.port, "cid-name", env={"callerid": "5551234"})
    finally:
        server.shutdown(5)
        database.initialize(agi_site.db)
    assert t.commands == [] and t.status == "FAILURE"


class SlowDatabase(peewee.SqliteDatabase):
    """A database stuck on every query about ``slow_number`` (a remote server that stopped answering) until the
    test sets ``answer`` (then the stuck threads finish at once, and the server's shutdown waits for nothing)."""

    slow_number = "5551234"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answer = threading.Event()

    def execute_sql(self, sql, params=None, *args, **kwargs):  # noqa: ANN001, ANN201
        if params and self.slow_number in params:
            self.answer.wait(60)
        return super().execute_sql(sql, params, *args, **kwargs)


def test_slow_database_times_out_without_blocking_other_calls(agi_site: Site) -> None:
    add_names(agi_site, n5551234="Acme Sales", n5559999="Quick Answer")
    slow = SlowDatabase(agi_site.db.database, pragmas=SQLITE_PRAGMAS)
    agi_site.settings.agi.database_timeout = 0.3
    database.initialize(slow)
    server = FastAGIServer(collect_scripts(agi_site.plugins), agi_site.settings, slow, host="127.0.0.1", port=0)
    server.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            stuck = [pool.submit(call, server, env={"callerid": "5551234"}) for _ in range(3)]
            # Meanwhile other calls are answered at once, from the database and without it.
            assert call(server, env={"callerid": "5559999"}).variables["CALLERID(name)"] == "Quick Answer"
            assert call(server, env={"callerid": "unknown"}).status == "SUCCESS"
            results = [f.result(timeout=20) for f in stuck]
        for t in results:
            assert t.commands == [] and t.status == "FAILURE"
    finally:
        slow.answer.set()
        server.shutdown(5)
        database.initialize(agi_site.db)


def test_200_concurrent_sessions(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, **{f"n555{i:04d}": f"Caller {i}" for i in range(0, 200, 2)})
    gate = threading.Barrier(200, timeout=30)
    live: list[int] = []

    def held_cid(session: AGISession, ctx: ScriptContext) -> None:
        gate.wait()  # every call is live at once before any finishes
        live.append(server.live_sessions)
        from autoprov.agi.scripts.cid_name import cid_name

        cid_name(session, ctx)

    server = start_server(agi_site, scripts={"cid-name": held_cid})
    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(lambda i: call(server, env={"callerid": f"555{i:04d}"}), range(200)))
    for i, t in enumerate(results):
        assert t.status == "SUCCESS"
        assert t.variables.get("CALLERID(name)") == (f"Caller {i}" if i % 2 == 0 else None)
    assert max(live) == 200
    assert server.statuses == {"SUCCESS": 200}


def test_session_time_limit_ends_a_call_that_never_finishes(agi_site: Site, start_server: Start) -> None:
    def dial_forever(session: AGISession, ctx: ScriptContext) -> None:
        session.exec("Dial", "PJSIP/1001")

    server = start_server(agi_site, scripts={"dial": dial_forever}, session_timeout=0.5)
    t = call(server, "dial", exec_delay=3.0)
    assert t.executed == [("Dial", "PJSIP/1001")]
    assert t.status == "FAILURE"  # the dialplan goes on, knowing the script did not finish
    assert server.statuses == {"FAILURE": 1}


def test_shutdown_lets_live_calls_finish(agi_site: Site) -> None:
    entered = threading.Event()

    def long_call(session: AGISession, ctx: ScriptContext) -> None:
        entered.set()
        session.exec("Dial", "PJSIP/1001")
        session.set_variable("DONE", "yes")

    server = FastAGIServer({"long": long_call}, agi_site.settings, agi_site.db, host="127.0.0.1", port=0)
    server.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(fastagi_call, server.host, server.port, "long", exec_delay=1.0)
        assert entered.wait(10)
        assert server.shutdown(grace=20) is True
        t = pending.result(10)
    assert t.variables["DONE"] == "yes" and t.status == "SUCCESS"
    with pytest.raises(OSError):  # no longer accepting
        fastagi_call(server.host, server.port, "long", timeout=2)


def test_shutdown_ends_calls_that_outlive_the_grace(agi_site: Site) -> None:
    entered = threading.Event()

    def endless(session: AGISession, ctx: ScriptContext) -> None:
        entered.set()
        session.exec("Dial", "PJSIP/1001")
        session.set_variable("DONE", "yes")

    server = FastAGIServer({"endless": endless}, agi_site.settings, agi_site.db, host="127.0.0.1", port=0)
    server.start()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(fastagi_call, server.host, server.port, "endless", exec_delay=3.0)
        assert entered.wait(10)
        assert server.shutdown(grace=0.2) is False
        t = pending.result(10)
    assert "DONE" not in t.variables
    assert t.status == "FAILURE" and server.statuses == {"FAILURE": 1}


class ExtraScripts:
    """A third-party plugin adding a script through the hook."""

    @hookimpl
    def autoprov_agi_scripts(self) -> dict[str, Callable[[AGISession, ScriptContext], None]]:
        def hello(session: AGISession, ctx: ScriptContext) -> None:
            session.set_variable("GREETING", f"hello {ctx.params.get('who', '')}")

        return {"hello": hello}


def test_a_plugin_adds_a_script(agi_site: Site, start_server: Start) -> None:
    agi_site.plugins.register(ExtraScripts(), name="extra-scripts")
    try:
        server = start_server(agi_site)
        assert set(server.scripts) >= {"cid-name", "route", "hello"}
        t = call(server, "hello?who=world&x=1")
        assert t.variables["GREETING"] == "hello world"
    finally:
        agi_site.plugins.unregister(name="extra-scripts")


def test_cid_name_and_route_on_each_database_backend(site: Site, start_server: Start) -> None:
    """The same calls against SQLite and (in CI) PostgreSQL, through pooled per-session connections."""
    from autoprov.agi.tables import Route

    add_names(site, n5551234="Acme Sales")
    with site.db.connection_context():
        Route.create(pattern="_555XXXX", dest_type="group", destination="1001,1002")
    server = start_server(site)
    for _ in range(3):  # later calls reuse the connections the first ones opened
        assert call(server, env={"callerid": "5551234"}).variables["CALLERID(name)"] == "Acme Sales"
        t = call(server, "route", env={"extension": "5550000"})
        assert t.executed == [("Dial", "PJSIP/1001&PJSIP/1002,30")]


def test_database_connections_are_capped_and_calls_beyond_wait(agi_site: Site, start_server: Start) -> None:
    """40 live calls, 3 connections: every call is answered correctly, never more than 3 connections open."""
    add_names(agi_site, **{f"n555{i:04d}": f"Caller {i}" for i in range(40)})
    agi_site.settings.agi.max_db_connections = 3
    agi_site.settings.agi.database_timeout = 20.0  # this test is about waiting, not giving up
    peak: list[int] = []

    def slow_cid(session: AGISession, ctx: ScriptContext) -> None:
        from autoprov.agi.scripts.cid_name import cid_name

        cid_name(session, ctx)
        peak.append(server.pool._open)  # the pool's own count of open connections
        time.sleep(0.05)  # hold the connection, as a longer script would

    server = start_server(agi_site, scripts={"cid-name": slow_cid})
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(lambda i: call(server, env={"callerid": f"555{i:04d}"}), range(40)))
    assert [t.variables.get("CALLERID(name)") for t in results] == [f"Caller {i}" for i in range(40)]
    assert max(peak) <= 3


def test_call_that_cannot_get_a_connection_goes_on_with_a_default(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Acme Sales")
    agi_site.settings.agi.max_db_connections = 1
    agi_site.settings.agi.database_timeout = 0.3
    server = start_server(agi_site)
    assert server.pool is not None
    busy = server.pool.acquire()  # the only connection, lent to a query still within its time limit
    try:
        t = call(server, env={"callerid": "5551234", "calleridname": "WIRELESS"})
    finally:
        server.pool.release(busy)
    assert t.commands == []  # the name is left alone
    assert t.status == "FAILURE"  # and the dialplan is told the lookup failed
    assert call(server, env={"callerid": "5551234"}).variables["CALLERID(name)"] == "Acme Sales"


def test_shutdown_returns_even_if_a_script_never_does(agi_site: Site, caplog: pytest.LogCaptureFixture) -> None:
    entered, let_go = threading.Event(), threading.Event()

    def stuck(session: AGISession, ctx: ScriptContext) -> None:
        entered.set()
        while not let_go.wait(0.05):  # a loop that never looks at its call (a bug in a plugin)
            pass

    server = FastAGIServer({"stuck": stuck}, agi_site.settings, agi_site.db, host="127.0.0.1", port=0)
    server.start()
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(fastagi_call, server.host, server.port, "stuck")
            assert entered.wait(10)
            stopping = threading.Thread(target=server.shutdown, args=(0.2,), daemon=True)
            stopping.start()
            t = pending.result(10)  # Asterisk is told at the end of the grace, script or no script
            stopping.join(15)
            assert not stopping.is_alive(), "shutdown waited for a script that never returns"
    finally:
        let_go.set()
    assert t.status == "FAILURE"
    assert "did not return after its call ended; abandoning it" in caplog.text


SERVER_WITH_FEW_DESCRIPTORS = """
import logging, os, resource, sys
from autoprov.agi.server import FastAGIServer
from autoprov.config import Settings

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")

def held(session, ctx):
    session.exec("Dial", "PJSIP/1001")

server = FastAGIServer({"held": held}, Settings(), None, host="127.0.0.1", port=0)
server.start()
open_now = len(os.listdir("/proc/self/fd")) - 1  # less listdir's own
limit = max(int(fd) for fd in os.listdir("/proc/self/fd")) + 3
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
# The port, and about how many calls it can accept (one less if the accept loop's selector opens later).
print(server.port, limit - open_now, flush=True)
sys.stdin.read()
server.shutdown(5)
"""


def test_out_of_file_descriptors_the_server_waits_instead_of_spinning() -> None:
    """accept() failing with EMFILE is logged once, not in a tight loop; calls wait and are served later."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER_WITH_FEW_DESCRIPTORS], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout and proc.stderr
    stderr: list[str] = []
    out_of_fds = threading.Event()

    def drain() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            stderr.append(line)
            if "Too many open files" in line:
                out_of_fds.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        port, capacity = map(int, proc.stdout.readline().split())
        hang_up = threading.Event()
        with ThreadPoolExecutor(capacity + 2) as pool:
            calls = [pool.submit(fastagi_call, "127.0.0.1", port, "held", on_exec=lambda *_: hang_up.wait(30))
                     for _ in range(capacity + 2)]  # two more than it has descriptors for
            assert out_of_fds.wait(20), "".join(stderr)
            time.sleep(1.0)  # a while out of descriptors: a spinning loop would log thousands of lines
            hang_up.set()
            results = [c.result(30) for c in calls]
        for t in results:  # the waiting ones were served too
            assert t.status == "SUCCESS" and t.executed == [("Dial", "PJSIP/1001")]
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    failures = [line for line in stderr if "accept failed" in line]
    assert 1 <= len(failures) <= 2, "".join(stderr)


@pytest.mark.parametrize("callerid", ["5551234567\udcff", "\udcff", "555\x001234567", "x" * 20000, "٥٥٥١٢٣٤٥٦٧"])
def test_any_caller_id_that_cannot_be_in_the_table_is_no_match(site: Site, start_server: Start,
                                                                  callerid: str) -> None:
    """A byte that is not UTF-8 (\\xff arrives as \\udcff), a NUL, a huge or non-ASCII number: no query, no crash."""
    add_names(site, n5551234567="Acme Sales")
    server = start_server(site)
    t = call(server, env={"callerid": callerid})
    assert t.commands == [] and t.status == "SUCCESS"
    t = call(server, "cid-name?number=" + quote(callerid, errors="surrogateescape"))
    assert t.commands == [] and t.status == "SUCCESS"


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False): a wait, not a timing assertion."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_a_query_that_never_returns_is_written_off_and_the_pool_recovers(agi_site: Site, start_server: Start) -> None:
    """One connection, stuck for good in a query (a black-holed network): later calls still get one."""
    add_names(agi_site, n5551234="Acme Sales")
    agi_site.settings.agi.max_db_connections = 1
    agi_site.settings.agi.database_timeout = 1.0
    never = threading.Event()
    stuck: list[tuple[threading.Thread, sqlite3.Connection]] = []

    def hang(session: AGISession, ctx: ScriptContext) -> None:
        def query() -> None:
            stuck.append((threading.current_thread(), agi_site.db.connection()))
            never.wait()

        ctx.query(query)

    server = start_server(agi_site, scripts={"hang": hang, **collect_scripts(agi_site.plugins)})
    try:
        assert call(server, "hang").status == "FAILURE"  # the call went on after database_timeout
        for _ in range(3):  # the only connection is still stuck, yet the next calls get one and succeed
            t = call(server, env={"callerid": "5551234"})
            assert t.status == "SUCCESS" and t.variables["CALLERID(name)"] == "Acme Sales"
    finally:
        never.set()
    [(thread, connection)] = stuck
    thread.join(30)  # the query returned at last: its thread ends, closing its connection
    assert not thread.is_alive()
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not lent to another call
        connection.execute("select 1")
    assert server.pool is not None and server.pool._open == 1  # the connection opened meanwhile, idle


def test_pooled_postgresql_connections_are_bounded_on_the_server(site: Site, start_server: Start) -> None:
    """statement_timeout a little past database_timeout (the server ends a query nobody waits for), keepalives."""
    if not isinstance(site.db, peewee.PostgresqlDatabase):
        pytest.skip("PostgreSQL only")
    site.settings.agi.database_timeout = 0.5
    seen: dict[str, object] = {}

    def inspect(session: AGISession, ctx: ScriptContext) -> None:
        def query() -> None:
            seen["statement_timeout"] = site.db.execute_sql("SHOW statement_timeout").fetchone()[0]
            with socket.socket(fileno=os.dup(site.db.connection().fileno())) as sock:
                seen["keepalive"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                seen["idle"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)  # libpq's default: the OS's 2 h

        ctx.query(query)

    def sleep(session: AGISession, ctx: ScriptContext) -> None:
        def query() -> None:
            seen["sleeper"] = threading.current_thread()
            site.db.execute_sql("SELECT pg_sleep(600)")

        ctx.query(query)

    server = start_server(site, scripts={"inspect": inspect, "sleep": sleep})
    assert call(server, "inspect").status == "SUCCESS"
    assert seen == {"statement_timeout": "1500ms", "keepalive": 1, "idle": 5}
    assert call(server, "sleep").status == "FAILURE"  # the call gave up after database_timeout
    sleeper = seen["sleeper"]
    assert isinstance(sleeper, threading.Thread)
    sleeper.join(60)  # PostgreSQL cancelled the statement: the written-off thread ended, not 600 s later
    assert not sleeper.is_alive()


SERVER_SHORT_OF_THREADS = """
import logging, os, resource, sys, threading, time
import autoprov.agi.server
from autoprov.agi.runner import collect_scripts
from autoprov.agi.server import FastAGIServer
from autoprov.agi.tables import CallerName
from autoprov.config import Settings
from autoprov.plugins import build_plugin_manager
from autoprov.site import Site

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
settings = Settings()
settings.database.url = f"sqlite:///{sys.argv[1]}/agi.db"
settings.agi.max_db_connections = 1  # a slot lost for good would fail every later query
settings.agi.database_timeout = 10.0
site = Site(settings, build_plugin_manager(load_entry_points=False))
site.init_database()
CallerName.create(number="5551234", name="Acme Sales")
site.db.close()
autoprov.agi.server.IDLE_THREAD_KEEP = 0  # a thread ends with its call: each call needs a new one
server = FastAGIServer(collect_scripts(site.plugins), settings, site.db, host="127.0.0.1", port=0)
server.start()
while not any(t.name == "fastagi-watchdog" for t in threading.enumerate()):
    time.sleep(0.01)
print(server.port, flush=True)
hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
for line in sys.stdin:  # "threads N": from now on N more threads may start; "unlimited"
    # This user runs nothing but this process: RLIMIT_NPROC counts its threads. Wait for ended calls' threads
    # to be gone from the kernel too.
    while any(t.name.startswith("fastagi-call") for t in threading.enumerate()):
        time.sleep(0.01)
    while len(os.listdir("/proc/self/task")) != threading.active_count():
        time.sleep(0.01)
    more = line.split()[1:]
    soft = len(os.listdir("/proc/self/task")) + int(more[0]) if more else hard
    resource.setrlimit(resource.RLIMIT_NPROC, (soft, hard))
    print("ok", flush=True)
server.shutdown(5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv, to run the server under a real uid of its own")
def test_out_of_threads_a_call_fails_and_the_server_goes_on(tmp_path: Path) -> None:
    """RLIMIT_NPROC reached: no thread for a call, or for its connection; that call fails, nothing leaks.

    The server's real uid is one nothing else uses, so RLIMIT_NPROC counts exactly its own threads; it keeps
    effective uid 0 (to read the interpreter under /root) without the capabilities that lift the limit.
    """
    uid = random.randrange(1_000_000, 2_000_000)
    proc = subprocess.Popen(["setpriv", f"--ruid={uid}", "--bounding-set=-sys_resource,-sys_admin", "--inh-caps=-all",
                             sys.executable, "-c", SERVER_SHORT_OF_THREADS, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout and proc.stderr
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()

    def limit(command: str) -> None:
        proc.stdin.write(command + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        assert proc.stdout.readline() == "ok\n", "".join(stderr)  # type: ignore[union-attr]

    def cid_name() -> object:
        return fastagi_call("127.0.0.1", port, "cid-name", env={"callerid": "5551234"}, timeout=20)

    try:
        port = int(proc.stdout.readline() or 0)
        assert port, "".join(stderr)
        limit("threads 1")  # the call's thread starts, its database connection's does not
        t = cid_name()
        assert t.status == "FAILURE" and t.commands == []  # the name is left alone; the dialplan is told
        limit("threads 0")  # not even a thread for the call
        for _ in range(5):
            t = cid_name()
            assert t.status == "FAILURE" and t.commands == []
        limit("unlimited")
        t = cid_name()  # the server still serves, and the failed connection's slot was given back
        assert t.status == "SUCCESS" and t.variables["CALLERID(name)"] == "Acme Sales", "".join(stderr)
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        drain.join(10)
    log = "".join(stderr)
    assert "database unavailable: no thread for a connection (can't start new thread)" in log
    assert 1 <= log.count("no thread for a new call") <= 2, log  # said once in a while, not once per call


def test_shutdown_lets_a_script_finish_its_query_before_abandoning_it(agi_site: Site,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A query may take database_timeout (and as long waiting for a connection): shutdown waits that long."""
    agi_site.settings.agi.database_timeout = 10.0
    in_query, answer = threading.Event(), threading.Event()
    got: list[int] = []

    def query() -> int:
        in_query.set()
        answer.wait(60)
        return 42

    def lookup(session: AGISession, ctx: ScriptContext) -> None:
        session.verbose("looking up")
        got.append(ctx.query(query))
        session.set_variable("R", "42")  # the call was ended meanwhile: this hangs up, the script returns

    server = FastAGIServer({"lookup": lookup}, agi_site.settings, agi_site.db, host="127.0.0.1", port=0)
    server.start()
    with ThreadPoolExecutor(2) as pool:
        pending = pool.submit(fastagi_call, server.host, server.port, "lookup")
        assert in_query.wait(10)
        stopping = pool.submit(server.shutdown, 0.1)
        assert pending.result(10).status == "FAILURE"  # the call is ended after the grace...
        time.sleep(3)  # ...while its query goes on, within database_timeout (and past the old 2 s)
        answer.set()
        assert stopping.result(60) is False
    assert got == [42]  # the script had its answer before shutdown returned
    assert "abandoning" not in caplog.text


def test_a_closed_pool_opens_no_connection_and_closes_those_given_back(agi_site: Site) -> None:
    pool = ConnectionPool(agi_site.db, max_open=2)
    in_flight = pool.acquire(1)  # a query running when the server shuts down
    pool.close()
    with pytest.raises(DatabaseUnavailable, match="closed"):  # an abandoned script queries again
        pool.acquire(1)
    with pytest.raises(DatabaseUnavailable, match="closed"):
        SessionDatabase(pool, 1.0).run(lambda: 1)
    pool.release(in_flight)  # the late query returns its connection: closed, not kept
    assert pool._idle == []
    assert wait_until(lambda: pool._open == 0)


def test_shutdown_from_two_threads_at_once_ends_each_call_once(agi_site: Site,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A signal handler's shutdown and the main thread's: the second waits for the first, nothing twice."""
    entered = threading.Event()

    def endless(session: AGISession, ctx: ScriptContext) -> None:
        entered.set()
        session.exec("Dial", "PJSIP/1001")

    server = FastAGIServer({"endless": endless}, agi_site.settings, agi_site.db, host="127.0.0.1", port=0)
    server.start()
    hang_up = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        pending = pool.submit(fastagi_call, server.host, server.port, "endless", on_exec=lambda *_: hang_up.wait(60))
        try:
            assert entered.wait(10)
            both = [pool.submit(server.shutdown, 0.2) for _ in range(2)]
            assert [f.result(60) for f in both] == [False, False]
        finally:
            hang_up.set()
        assert pending.result(10).status == "FAILURE"
    assert caplog.text.count("after shutdown began; ending it") == 1, caplog.text
    assert server.statuses == {"FAILURE": 1}


def test_cid_name_with_a_plus_in_the_number_parameter(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, **{"n+15551234567": "Acme Sales"})
    server = start_server(agi_site)
    t = call(server, "cid-name?number=+15551234567", env={"callerid": "5550000"})
    assert t.variables["CALLERID(name)"] == "Acme Sales"


def test_a_forged_reply_ends_the_call_with_failure(agi_site: Site, start_server: Start,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def reads(session: AGISession, ctx: ScriptContext) -> None:
        value = session.get_variable("X")
        session.set_variable("SEEN", value)  # never reached with a forged reply

    server = start_server(agi_site, scripts={"reads": reads})
    t = call(server, "reads", variables={"X": "x)\n200 result=1 (forged"})
    assert t.status == "FAILURE" and "SEEN" not in t.variables
    assert any("newline" in r.getMessage() for r in caplog.records)


def test_a_thread_serves_one_call_after_another(agi_site: Site, start_server: Start) -> None:
    add_names(agi_site, n5551234="Acme Sales")
    server = start_server(agi_site)
    for _ in range(5):
        assert call(server, env={"callerid": "5551234"}).status == "SUCCESS"
    threads = [t for t in threading.enumerate() if t.name == f"fastagi-call:{server.port}"]
    # The first call's thread, waiting for the next call (a second one if a call came before the first
    # thread was back to waiting), not one thread per call.
    assert 1 <= len(threads) <= 2
    server.shutdown(5)
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()  # shutdown ends the waiting threads
