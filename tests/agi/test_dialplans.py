"""The dialplans and the plugin example of docs/agi.md, run verbatim against a real FastAGI server.

``Dialplan`` plays Asterisk's part (see its docstring); every dialplan in the document is run here.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from autoprov.agi.server import FastAGIServer
from autoprov.agi.tables import CallerName, Route
from autoprov.agi.testing import Dialplan, fastagi_call, wait_listening
from autoprov.db import open_database
from autoprov.site import Site

Start = Callable[..., FastAGIServer]
DOC = (Path(__file__).parents[2] / "docs" / "agi.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", DOC, re.S)
DIALPLANS = [text for _, text in BLOCKS if "exten =>" in text]


def test_every_dialplan_of_the_document_is_run_here() -> None:
    # FASTAGI (from-trunk, outbound), INTERNAL (from-internal), LOCAL (from-trunk by local AGI)
    assert len(DIALPLANS) == 3, "a dialplan was added to docs/agi.md: run it in a test here"


FASTAGI, INTERNAL, LOCAL = DIALPLANS


def setup(site: Site, **routes: str) -> None:
    with site.db.connection_context():
        CallerName.create(number="5551234", name="Acme Sales")
        for pattern, destination in routes.items():
            kind, _, dest = destination.partition(":")
            Route.create(pattern=pattern.lstrip("n"), dest_type=kind, destination=dest)


def answering(*who: str) -> Callable[[str], str]:
    return lambda channel: "ANSWER" if channel in who else "NOANSWER"


def apps(channel: object) -> list[str]:
    return [app for app, _ in channel.ran]  # type: ignore[attr-defined]


def test_an_answered_call_ends_the_dialplan_with_hangup(agi_site: Site, start_server: Start) -> None:
    setup(agi_site, n5551000="extension:1001")
    server = start_server(agi_site)
    plan = Dialplan(FASTAGI, fastagi=(server.host, server.port), answer=answering("PJSIP/1001"))
    ch = plan.call("from-trunk", "5551000")
    assert ch.variables["CALLERID(name)"] == "Acme Sales"
    assert ch.dialled == ["PJSIP/1001"]
    assert ch.variables["AGISTATUS"] == "HANGUP" and ch.hung_up
    assert apps(ch) == ["NoOp", "AGI", "AGI"]  # nothing after the AGI around the answered Dial


def test_nobody_answers_the_operator_is_dialled_once(agi_site: Site, start_server: Start) -> None:
    setup(agi_site, n5551000="extension:1001")
    server = start_server(agi_site)
    plan = Dialplan(FASTAGI, fastagi=(server.host, server.port))
    ch = plan.call("from-trunk", "5551000")
    assert ch.dialled == ["PJSIP/1001"]  # the route has no fallback of its own; ?fallback= is for no route
    assert ch.variables["ROUTE_STATUS"] == "ROUTED" and ch.variables["ROUTE_DIALSTATUS"] == "NOANSWER"
    assert apps(ch)[-1] == "Hangup" and ch.played == []
    ch = plan.call("from-trunk", "5559999")  # no route: the script dials the fallback, and that is all
    assert ch.dialled == ["PJSIP/operator"] and ch.played == []
    assert ch.variables["ROUTE_STATUS"] == "NOROUTE" and ch.variables["AGISTATUS"] == "SUCCESS"


def test_an_external_number_goes_through_the_outbound_context(agi_site: Site, start_server: Start) -> None:
    setup(agi_site, n5551000="external:+15550100")
    server = start_server(agi_site)
    plan = Dialplan(FASTAGI, fastagi=(server.host, server.port), answer=answering("PJSIP/+15550100@my-trunk"))
    ch = plan.call("from-trunk", "5551000")
    assert ch.dialled == ["PJSIP/+15550100@my-trunk"] and ch.variables["AGISTATUS"] == "HANGUP"


def test_database_down_the_operator_is_dialled_once(tmp_path: Path, agi_site: Site, start_server: Start) -> None:
    (tmp_path / "down.db").mkdir()
    server = start_server(agi_site, db=open_database(f"sqlite:///{tmp_path}/down.db"))
    ch = Dialplan(FASTAGI, fastagi=(server.host, server.port)).call("from-trunk", "5551000")
    assert ch.dialled == ["PJSIP/operator"]  # by the script's fallback; the dialplan does not dial again
    assert ch.variables["ROUTE_STATUS"] == "UNAVAILABLE" and ch.variables["AGISTATUS"] == "FAILURE"


def test_server_not_running_the_dialplan_dials_the_operator() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = unused.getsockname()  # bound, not listening: a connection is refused
        ch = Dialplan(FASTAGI, fastagi=address).call("from-trunk", "5551000")
    assert ch.variables["AGISTATUS"] == "FAILURE" and "ROUTE_STATUS" not in ch.variables
    assert ch.dialled == ["PJSIP/operator"]


def test_from_internal(agi_site: Site, start_server: Start) -> None:
    setup(agi_site)
    server = start_server(agi_site)
    ch = Dialplan(INTERNAL, fastagi=(server.host, server.port)).call("from-internal", "1002")
    assert ch.variables["CALLERID(name)"] == "Acme Sales" and ch.dialled == ["PJSIP/1002"]


def test_the_local_agi_dialplan(tmp_path: Path, agi_site: Site) -> None:
    setup(agi_site, n5551000="extension:1001")
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{agi_site.settings.database.url}"\n[agi]\nlog = "{tmp_path}/agi.log"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    env["AUTOPROV_CONFIG"] = str(config)

    def local(program: str, args: list[str]) -> list[str]:
        assert program == "autoprov"
        return [sys.executable, "-m", "autoprov", *args]

    ch = Dialplan(LOCAL, local=local, local_env=env).call("from-trunk", "5559999")
    assert ch.variables["CALLERID(name)"] == "Acme Sales"
    assert ch.dialled == ["PJSIP/operator"] and ch.variables["ROUTE_STATUS"] == "NOROUTE"
    assert apps(ch)[-1] == "Hangup"


# -- the plugin example ------------------------------------------------------------------------------


def test_the_plugin_example_registers_through_its_entry_point(tmp_path: Path, agi_site: Site) -> None:
    code = next(text for lang, text in BLOCKS if lang == "python" and "autoprov_agi_scripts" in text)
    toml = next(text for lang, text in BLOCKS if lang == "toml" and "entry-points.autoprov" in text)
    entry = re.search(r'\[project\.entry-points\.autoprov\]\n(\w+) = "([\w.]+)"', toml)
    assert entry and code.startswith(f"# {entry.group(2)}/__init__.py")
    package = tmp_path / "site" / entry.group(2)
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(code)
    # What `pip install` of that pyproject.toml leaves: the dist-info with the entry point.
    dist = tmp_path / "site" / "my_calls-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-calls\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[autoprov]\n{entry.group(1)} = {entry.group(2)}\n")
    setup(agi_site)
    config = tmp_path / "autoprov.toml"
    config.write_text(f'[database]\nurl = "{agi_site.settings.database.url}"\n')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPROV_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    server = subprocess.Popen([sys.executable, "-m", "autoprov", "--config", str(config), "agi", "serve",
                               "--port", str(port)], env=env, stderr=subprocess.PIPE)
    try:
        wait_listening(port, server)
        t = fastagi_call("127.0.0.1", port, "greet", env={"callerid": "5551234"})
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    assert t.status == "SUCCESS", err.decode(errors="replace")
    assert t.commands[:2] == [["ANSWER"], ["STREAM", "FILE", "hello-world", ""]]
    assert t.variables["VIP"] == "yes"
