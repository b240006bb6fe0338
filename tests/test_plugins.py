"""Adding a model is adding a package; a broken package is reported and skipped, never fatal.

Throwaway distributions are built in a temporary directory and installed for real with pip (``--target``),
then the real ``autoprov`` command line and server run with that directory on PYTHONPATH.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
import types
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from autoprov import hookimpl, hookspecs
from autoprov.agi.runner import collect_scripts
from autoprov.agi.testing import local_call
from autoprov.checksync import NotifyResult, can_notify, notify_phones
from autoprov.cli import build_cli
from autoprov.config import ConfigError, Settings
from autoprov.devices import GENERATED, PHONE, ROOT, DeviceModel, FileRule, Identity, ModelPlugin, Support
from autoprov.phonefiles.tables import LogLine
from autoprov.plugins import build_plugin_manager
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.schema import Migration, current_versions
from autoprov.site import Site
from autoprov.tables import Phone, Sighting
from autoprov.vendors.polycom import PolycomModel
from autoprov.web import Route, create_app, plain
from tests.conftest import LoopbackClient, PhoneClient, autoprov, free_port, running_server, write_config
from tests.phones import headers

TESTS = Path(__file__).resolve().parent

VVX999_UA = "FileTransport PolycomVVX-VVX_999-UA/5.9.0.1234"
MAC = "0004f2099999"
POLYCOM_MODELS = ("polycom_ip330", "polycom_ip331", "polycom_ip4000")

# name -> {path inside the distribution: text}; [project.entry-points.autoprov] comes from ENTRY_POINTS.
DISTRIBUTIONS: dict[str, dict[str, str]] = {
    "autoprov-polycom-vvx999": {
        "autoprov_polycom_vvx999/__init__.py": '''
            """An imaginary Polycom VVX 999, to show a model is nothing but a package."""

            from autoprov.devices import ModelPlugin
            from autoprov.vendors.polycom import PolycomModel

            plugin = ModelPlugin(
                PolycomModel,
                name="polycom_vvx999",
                label="Polycom VVX 999 (imaginary)",
                user_agent_tokens=("VVX_999",),
                line_count=3,
                part_number="3111-99999-001",
                package=__name__,
            )
        ''',
        # Extends the shared Polycom template: only the block differs.
        "autoprov_polycom_vvx999/templates/phone.cfg.mako": '''
            <%inherit file="/templates/phone.cfg.mako"/>
            <%block name="model_settings">\\
              <vvx999 feature.imaginary.lines="${len(phone.lines)}" feature.imaginary.mac="${phone.mac}"/>
            </%block>
        ''',
    },
    "autoprov-hello": {
        "autoprov_hello/__init__.py": '''
            """A plugin that is not a model: a table (with its migration), a command and a route."""

            import click
            import peewee

            from autoprov import hookimpl
            from autoprov.cli import pass_site
            from autoprov.db import BaseModel
            from autoprov.schema import Migration, create_tables
            from autoprov.web import Route, plain


            class Greeting(BaseModel):
                name = peewee.CharField(max_length=80)


            @click.command()
            @click.argument("name")
            @pass_site
            def hello(site, name):
                """Remember a name to greet."""
                Greeting.create(name=name)
                click.echo(f"greeted {name}")


            def greetings(site, request):
                return plain(200, "\\n".join(f"hello {g.name}" for g in Greeting.select().order_by(Greeting.id)))


            @hookimpl
            def autoprov_migrations():
                return [Migration("hello", 1, "greetings table", create_tables(Greeting))]


            @hookimpl
            def autoprov_register_commands(cli):
                cli.add_command(hello)


            @hookimpl
            def autoprov_routes():
                return [Route("/hello", greetings)]


            def greet(session, ctx):
                session.set_variable("GREETING", ctx.params.get("word", "hello"))


            @hookimpl
            def autoprov_agi_scripts():
                return {"greet": greet}
        ''',
    },
    "autoprov-exploding": {
        "autoprov_exploding/__init__.py": '''
            """Imports fine; every hook it implements raises when called."""

            from autoprov import hookimpl


            @hookimpl
            def autoprov_device_models(settings, plugin_settings):
                raise RuntimeError("autoprov_device_models exploded")


            @hookimpl
            def autoprov_plugin_settings():
                raise RuntimeError("autoprov_plugin_settings exploded")


            @hookimpl
            def autoprov_file_handlers():
                raise RuntimeError("autoprov_file_handlers exploded")


            @hookimpl
            def autoprov_migrations():
                raise RuntimeError("autoprov_migrations exploded")


            @hookimpl
            def autoprov_routes():
                raise RuntimeError("autoprov_routes exploded")


            @hookimpl
            def autoprov_register_commands(cli):
                raise RuntimeError("autoprov_register_commands exploded")


            @hookimpl
            def autoprov_agi_scripts():
                raise RuntimeError("autoprov_agi_scripts exploded")


            @hookimpl
            def autoprov_admin_pages():
                raise RuntimeError("autoprov_admin_pages exploded")


            @hookimpl
            def autoprov_admin_phone_sections():
                raise RuntimeError("autoprov_admin_phone_sections exploded")


            @hookimpl
            def autoprov_notify_phones(site, macs, reboot):
                raise RuntimeError("autoprov_notify_phones exploded")
        ''',
    },
    "autoprov-broken-import": {
        "autoprov_broken_import/__init__.py": '''
            raise RuntimeError("this plugin is broken on purpose")
        ''',
    },
    "autoprov-misspelled": {
        "autoprov_misspelled/__init__.py": '''
            """Implements a hook no spec names; its well-spelled hook must not be used either."""

            from autoprov import hookimpl
            from autoprov.web import Route, plain


            @hookimpl
            def autoprov_device_modles():
                return []


            @hookimpl
            def autoprov_routes():
                return [Route("/misspelled", lambda site, request: plain(200, "misspelled plugin answered"))]
        ''',
    },
    "autoprov-bad-signature": {
        # pluggy registers autoprov_device_models, then refuses the misnamed argument of the next hook.
        "autoprov_bad_signature/__init__.py": '''
            from autoprov import hookimpl
            from autoprov.vendors.polycom import PolycomModel


            @hookimpl
            def autoprov_device_models(settings):
                return [PolycomModel(settings, None, "polycom_badsig", "Bad", ("BADSIG",), 1, "0000-00000-000")]


            @hookimpl
            def autoprov_routes(ua):
                return []
        ''',
    },
}

ENTRY_POINTS = {
    "autoprov-polycom-vvx999": 'polycom_vvx999 = "autoprov_polycom_vvx999:plugin"',
    "autoprov-hello": 'hello = "autoprov_hello"',
    "autoprov-broken-import": 'broken_import = "autoprov_broken_import"',
    "autoprov-misspelled": 'misspelled = "autoprov_misspelled"',
    "autoprov-bad-signature": 'bad_signature = "autoprov_bad_signature"',
    "autoprov-exploding": 'exploding = "autoprov_exploding"',
}

GOOD = ("autoprov-polycom-vvx999", "autoprov-hello")
BROKEN = ("autoprov-broken-import", "autoprov-misspelled", "autoprov-bad-signature", "autoprov-exploding")


def write_distribution(root: Path, name: str) -> Path:
    pkg = name.replace("-", "_")
    directory = root / name
    for path, text in DISTRIBUTIONS[name].items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    # setuptools>=61 reads [project]; the venv's setuptools is what builds it (--no-build-isolation).
    (directory / "pyproject.toml").write_text(
        f"""
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.0.1"
dependencies = ["autoprov"]

[project.entry-points.autoprov]
{ENTRY_POINTS[name]}

[tool.setuptools.packages.find]
include = ["{pkg}*"]

[tool.setuptools.package-data]
"*" = ["templates/*.mako"]
""",
        encoding="utf-8",
    )
    return directory


def pip_install(target: Path, sources: list[Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--no-index", "--target", str(target), *map(str, sources)],
        capture_output=True, text=True, timeout=300,
    )
    if "invalid command 'bdist_wheel'" in result.stderr:
        pytest.fail("the venv's setuptools cannot build a wheel by itself: it needs setuptools>=70.1 (or `wheel`)")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def plugin_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two installed plugin directories, built once per module: "good" (a model and hello) and "broken"."""
    root = tmp_path_factory.mktemp("plugins")
    paths = {}
    for kind, names in (("good", GOOD), ("broken", BROKEN)):
        target = root / f"site-{kind}"
        pip_install(target, [write_distribution(root / "src", name) for name in names])
        paths[kind] = str(target)
    return paths


@pytest.fixture
def config(tmp_path: Path, settings) -> Path:
    return write_config(tmp_path / "autoprov.toml", settings, free_port())


def with_plugins(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Subprocesses started from now on (``autoprov(...)``, servers) see the plugins installed in ``path``."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (path, os.environ.get("PYTHONPATH")) if p))


# --- An installed model package ------------------------------------------------------------------------


def test_installed_model_package_is_listed_added_and_rendered(monkeypatch, plugin_paths, config):
    # Without the package, core knows nothing of the model.
    autoprov("init", config=config)
    refused = autoprov("phone", "add", MAC, "--model", "polycom_vvx999", config=config, check=False)
    assert refused.returncode != 0
    assert "unknown model 'polycom_vvx999'" in refused.stderr

    with_plugins(monkeypatch, plugin_paths["good"])
    listing = autoprov("models", config=config).stdout
    assert "polycom_vvx999: Polycom VVX 999 (imaginary) (Polycom)" in listing
    assert "  user-agent tokens: VVX_999" in listing
    assert "  lines: 3" in listing
    assert "BROKEN" not in listing
    for name in POLYCOM_MODELS:
        assert f"{name}: " in listing

    autoprov("extension", "add", "2001", "--secret", "pw-2001", "--first-name", "Grace", config=config)
    autoprov("extension", "add", "2002", "--secret", "pw-2002", config=config)
    added = autoprov("phone", "add", MAC, "--model", "polycom_vvx999", "--line", "2001", "--line", "2002",
                     config=config)
    assert f"added phone {MAC} (polycom_vvx999) with 2 line(s)" in added.stdout

    rendered = autoprov("render", MAC, config=config).stdout
    phone = ET.fromstring(rendered.encode())
    regs = phone.findall("reg")
    assert [r.get(f"reg.{i}.auth.password") for i, r in enumerate(regs, 1)] == ["pw-2001", "pw-2002"]
    assert regs[0].get("reg.1.displayName") == "Grace"
    # The package's own template was used, and it extended the shared one.
    extra = phone.find("vvx999")
    assert extra is not None, rendered
    assert extra.get("feature.imaginary.lines") == "2"
    assert extra.get("feature.imaginary.mac") == MAC
    assert "Generated by autoprov for the Polycom VVX 999 (imaginary)" in rendered


def test_server_serves_installed_model_package(monkeypatch, plugin_paths, settings, tmp_path):
    with_plugins(monkeypatch, plugin_paths["good"])
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    autoprov("init", config=config)
    autoprov("extension", "add", "2001", "--secret", "pw-2001", config=config)
    autoprov("phone", "add", MAC.upper(), "--model", "polycom_vvx999", "--line", "2001", config=config)
    expected = autoprov("render", MAC, config=config).stdout.encode()

    with running_server(config, port) as url:
        initial = requests.get(f"{url}/000000000000.cfg", headers={"User-Agent": VVX999_UA}, timeout=10)
        device = requests.get(f"{url}/prov/polycom_vvx999/device.cfg", headers={"User-Agent": VVX999_UA}, timeout=10)
        phone = requests.get(f"{url}/prov/polycom_vvx999/{MAC}-phone.cfg", headers={"User-Agent": VVX999_UA},
                             timeout=10)
        ip330 = requests.get(f"{url}/000000000000.cfg", headers=headers("polycom_ip330"), timeout=10)

    assert initial.status_code == 200, initial.text
    files = ET.fromstring(initial.content).get("CONFIG_FILES").split(", ")
    assert files[0] == "prov/polycom_vvx999/device.cfg"
    assert ET.fromstring(device.content).get("device.prov.serverName") == "prov.example.test:8080/prov/polycom_vvx999"
    assert phone.status_code == 200, phone.text
    assert phone.content == expected  # the server and `autoprov render` give the same bytes
    assert b'<vvx999 feature.imaginary.lines="1"' in phone.content
    assert b'reg.1.auth.password="pw-2001"' in phone.content
    assert ip330.status_code == 200  # the installed models are untouched


def test_plugin_adds_migration_command_and_route(monkeypatch, plugin_paths, settings, tmp_path):
    """The hooks autoprov_migrations, autoprov_register_commands and autoprov_routes, from an installed package."""
    with_plugins(monkeypatch, plugin_paths["good"])
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    first = autoprov("init", config=config).stdout
    assert "applied core 1: " in first
    assert "applied hello 1: greetings table" in first
    again = autoprov("init", config=config).stdout
    assert "applied" not in again and "is up to date" in again

    assert "hello" in autoprov("--help", config=config).stdout
    assert autoprov("hello", "Ada", config=config).stdout == "greeted Ada\n"
    autoprov("hello", "Grace", config=config)

    with running_server(config, port) as url:
        r = requests.get(f"{url}/hello", timeout=10)
    assert r.status_code == 200
    assert r.text == "hello Ada\nhello Grace\n"


# --- Registered in-process ------------------------------------------------------------------------------


class Ping:
    """A plugin object with a route, a command and a migration, registered with ``site.plugins.register``."""

    @hookimpl
    def autoprov_routes(self) -> list[Route]:
        return [Route("/ping", lambda site, request: plain(200, "pong"))]

    @hookimpl
    def autoprov_register_commands(self, cli: click.Group) -> None:
        @cli.command()
        def ping() -> None:
            click.echo("pong")

    @hookimpl
    def autoprov_migrations(self) -> list[Migration]:
        def apply(db, migrator) -> None:
            db.execute_sql("CREATE TABLE ping_seen (id INTEGER PRIMARY KEY)")

        return [Migration("ping", 1, "ping table", apply)]


@pytest.fixture
def fresh_site(settings):
    site = Site(settings, build_plugin_manager())
    yield site
    site.db.close()


def test_model_registered_in_process_is_provisioned(fresh_site):
    site = fresh_site
    site.plugins.register(ModelPlugin(PolycomModel, name="polycom_vvx998", label="Polycom VVX 998 (imaginary)",
                                      user_agent_tokens=("VVX_998",), line_count=2, part_number="3111-99998-001"),
                          name="polycom_vvx998")
    site.plugins.register(Ping(), name="ping")
    applied = {(m.component, m.version) for m in site.init_database()}
    assert ("ping", 1) in applied and ("core", 1) in applied
    with site.db.connection_context():
        assert site.db.table_exists("ping_seen")
        admin.add_extension(ExtensionData("3001", "pw-3001"))
        admin.add_phone(site, "00:04:f2:09:99:98", "polycom_vvx998", ["3001"])

    ua = "FileTransport PolycomVVX-VVX_998-UA/5.9.0"
    vvx998 = site.models["polycom_vvx998"]
    assert site.identify(ua)[0] is vvx998
    client = LoopbackClient(create_app(site))
    initial = client.get("/000000000000.cfg", headers={"User-Agent": ua})
    assert ET.fromstring(initial.data).get("CONFIG_FILES").startswith("prov/polycom_vvx998/device.cfg")
    r = client.get("/prov/polycom_vvx998/0004f2099998-phone.cfg", headers={"User-Agent": ua})
    assert r.status_code == 200, r.data
    assert ET.fromstring(r.data).find("reg").get("reg.1.auth.password") == "pw-3001"
    assert client.get("/ping").data == b"pong\n"

    result = CliRunner().invoke(build_cli(site.plugins), ["ping"])
    assert result.exit_code == 0 and result.output == "pong\n"

    site.plugins.unregister(name="ping")
    assert LoopbackClient(create_app(site)).get("/ping").status_code == 404


def test_model_name_provided_twice_is_reported_and_first_kept(fresh_site, caplog):
    site = fresh_site
    installed = build_plugin_manager().get_plugin("polycom_ip330")
    if installed is None:
        pytest.skip("the polycom_ip330 model package is not installed")
    # A later plugin reusing the name, with a User-Agent token of its own.
    impostor = ModelPlugin(PolycomModel, name="polycom_ip330", label="Impostor", user_agent_tokens=("IMPOSTOR_330",),
                           line_count=2, part_number="0000-00000-000")
    site.plugins.register(impostor, name="impostor")
    with caplog.at_level(logging.ERROR, logger="autoprov.site"):
        models = site.models
    assert models["polycom_ip330"].label == "Polycom SoundPoint IP 330"
    assert "device model polycom_ip330 is provided twice; keeping the first" in caplog.text
    # The dropped model claims no phone: its token is not the kept model's.
    assert site.identify("FileTransport PolycomSoundPointIP-IMPOSTOR_330-UA/3.3.2") == (None, None)
    assert site.identify(headers("polycom_ip330")["User-Agent"])[0] is models["polycom_ip330"]


# --- Broken plugins -------------------------------------------------------------------------------------


def test_broken_plugins_are_reported_and_skipped(monkeypatch, plugin_paths, config):
    with_plugins(monkeypatch, plugin_paths["broken"])
    autoprov("init", config=config)
    result = autoprov("models", config=config)
    out = result.stdout
    assert "BROKEN broken_import (autoprov_broken_import): RuntimeError: this plugin is broken on purpose" in out
    assert (
        "BROKEN misspelled (autoprov_misspelled): PluginValidationError: unknown hook(s): autoprov_device_modles"
    ) in out
    assert "BROKEN bad_signature (autoprov_bad_signature): PluginValidationError: " in out
    assert "polycom_badsig" not in out  # its well-formed hook was registered before the bad one: removed too
    for name in POLYCOM_MODELS:
        assert f"{name}: " in out
    # And the log says so, with the traceback for the plugin's author.
    assert "plugin broken_import (autoprov_broken_import) failed to load" in result.stderr

    # The other models still work.
    autoprov("extension", "add", "1001", "--secret", "pw-1001", config=config)
    autoprov("phone", "add", "0004f2aabbcc", "--model", "polycom_ip330", "--line", "1001", config=config)
    rendered = autoprov("render", "0004f2aabbcc", config=config).stdout
    assert 'reg.1.auth.password="pw-1001"' in rendered
    refused = autoprov("phone", "add", "0004f2aabbcd", "--model", "polycom_badsig", config=config, check=False)
    assert refused.returncode != 0 and "unknown model 'polycom_badsig'" in refused.stderr


def test_server_with_broken_plugins_installed_serves_polycom_models(monkeypatch, plugin_paths, settings, tmp_path):
    with_plugins(monkeypatch, plugin_paths["broken"])
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    autoprov("init", config=config)
    with running_server(config, port) as url:
        initial = {m: requests.get(f"{url}/000000000000.cfg", headers=headers(m), timeout=10) for m in POLYCOM_MODELS}
        misspelled = requests.get(f"{url}/misspelled", timeout=10)
        badsig = requests.get(f"{url}/000000000000.cfg", headers={"User-Agent": "PolycomX-BADSIG-UA/1.0"}, timeout=10)
    for model, r in initial.items():
        assert r.status_code == 200, r.text
        assert ET.fromstring(r.content).get("CONFIG_FILES").startswith(f"prov/{model}/device.cfg")
    assert misspelled.status_code == 404 and "misspelled plugin" not in misspelled.text
    assert badsig.status_code == 404


# --- Every hook is tested -------------------------------------------------------------------------------


def hookspec_names() -> list[str]:
    return sorted(
        name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "autoprov_spec")
    )


def test_hookspecs_are_found():
    assert "autoprov_device_models" in hookspec_names()


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hook_has_a_test(hook):
    """Like Datasette's: a new hook without a test (naming it) under tests/ fails here."""
    for path in TESTS.rglob("*.py"):
        if hook in path.read_text(encoding="utf-8"):
            return
    pytest.fail(f"no test under tests/ mentions the hook {hook}")


def test_plugin_whose_hooks_raise_when_called_is_reported_and_skipped(fresh_site, caplog):
    """Importing fine is not enough: a hook that raises at call time must not break every request."""

    class Exploding:
        @hookimpl
        def autoprov_device_models(self):
            raise RuntimeError("no models today")

        @hookimpl
        def autoprov_file_handlers(self):
            raise RuntimeError("cannot answer files")

    site = fresh_site
    site.init_database()
    site.plugins.register(Exploding(), name="exploding")
    with caplog.at_level(logging.ERROR, logger="autoprov.plugins"):
        assert "polycom_ip330" in site.models
        client = LoopbackClient(create_app(site))
        r = client.get("/000000000000.cfg", headers=headers("polycom_ip330"))
    assert r.status_code == 200
    assert b"prov/polycom_ip330/device.cfg" in r.data
    broken = {(b.name, b.value) for b in site.plugins.broken}
    assert {("exploding", "autoprov_device_models"), ("exploding", "autoprov_file_handlers")} <= broken
    assert "no models today" in caplog.text


# --- Plugin settings ------------------------------------------------------------------------------------


@dataclass
class GreeterSettings:
    greeting: str = "hello"  # what the plugin says
    repeat: int = 1


class Greeter:
    @hookimpl
    def autoprov_plugin_settings(self) -> type:
        return GreeterSettings


def test_hook_autoprov_plugin_settings(settings):
    """[plugins.<name>] keys are declared by the plugin: filled in with their types, a typo refused by name."""
    def site_with(section: dict) -> Site:
        settings.plugins = {"greeter": section}
        pm = build_plugin_manager(load_entry_points=False)
        pm.register(Greeter(), name="greeter")
        return Site(settings, pm)

    assert site_with({"greeting": "bonjour"}).plugin_settings["greeter"] == GreeterSettings("bonjour", 1)
    assert site_with({}).plugin_settings["greeter"] == GreeterSettings()
    with pytest.raises(ConfigError, match=r"^plugins\.greeter\.greetin: unknown setting$"):
        site_with({"greetin": "bonjour"})
    with pytest.raises(ConfigError, match=r"^plugins\.greeter\.repeat: expected int, got 'twice'$"):
        site_with({"repeat": "twice"})


# --- The walk-through of docs/plugins.md, performed from its text ------------------------------------------

DOC = TESTS.parent / "docs" / "plugins.md"
_FILE_BLOCK = re.compile(r"^```[a-z]+ file=(\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)
ACME_UA = "Acme-A100/2.1.0 (00aace001234)"


def doc_files(text: str) -> dict[str, str]:
    """The files the doc writes: fenced blocks whose info string names one (```python file=acme/x.py)."""
    return {m.group(1): m.group(2) for m in _FILE_BLOCK.finditer(text)}


def doc_commands(text: str) -> list[tuple[str, str]]:
    """(command, the output the doc shows for it) for every ``$ `` line of the doc's console blocks."""
    steps: list[tuple[str, list[str]]] = []
    for block in _CONSOLE_BLOCK.finditer(text):
        for line in block.group(1).splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in steps]


def output_matches(shown: str, actual: str) -> bool:
    """Whether ``actual`` is what the doc shows: a line ``...`` stands for any lines, ``...`` in a line for
    any text."""
    parts = []
    for line in shown.splitlines():
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split("...")) + r"\n")
    return re.fullmatch("".join(parts), actual if actual.endswith("\n") or not actual else actual + "\n") is not None


def curl(args: list[str]) -> str:
    """The few curl options the doc uses: -A (User-Agent), -T (upload: PUT), the URL."""
    user_agent, upload, url = None, None, None
    words = iter(args)
    for word in words:
        if word == "-A":
            user_agent = next(words)
        elif word == "-T":
            upload = Path(next(words)).read_bytes()
        elif word.startswith("http://"):
            url = word
        else:
            pytest.fail(f"curl option {word!r} in docs/plugins.md: teach test_walkthrough_in_docs to read it")
    assert url is not None
    headers = {"User-Agent": user_agent} if user_agent else {}
    if upload is not None:
        return requests.put(url, data=upload, headers=headers, timeout=10).text
    return requests.get(url, headers=headers, timeout=10).text


def doc_step(argv: list[str], config: Path) -> str:
    if argv[0] == "autoprov":
        return autoprov(*argv[1:], config=config).stdout
    if argv[0] == "curl":
        return curl(argv[1:])
    pytest.fail(f"docs/plugins.md runs {shlex.join(argv)!r}, which this test does not know how to run")


def build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel --no-deps --no-build-isolation``, as the doc does."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--no-index", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("*.whl")
    return wheel


def test_walkthrough_in_docs(tmp_path, monkeypatch):
    """docs/plugins.md's Acme plugin, extracted from the page, built as a wheel outside the repository,
    installed, and every console step of the page run for real: the output must be what the page shows."""
    port = free_port()
    text = DOC.read_text(encoding="utf-8").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    text = text.replace("port = 8080", f"port = {port}")
    assert "pip wheel --no-deps --no-build-isolation -w dist ." in text  # what build_wheel does
    work = tmp_path / "walk"
    files = doc_files(text)
    assert {"acme/autoprov_acme/__init__.py", "acme/pyproject.toml", "autoprov.toml", "boot.log"} <= set(files)
    for path, body in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(body, encoding="utf-8")

    wheel = build_wheel(work / "acme", tmp_path / "dist")
    assert wheel.name == "autoprov_acme-0.1.0-py3-none-any.whl"  # the name the page installs
    pip_install(tmp_path / "site", [wheel])
    with_plugins(monkeypatch, str(tmp_path / "site"))
    monkeypatch.chdir(work)  # the page's relative paths: sqlite:///acme.db, firmware/
    config = work / "autoprov.toml"

    steps = doc_commands(text)
    assert [c.split()[0] for c, _ in steps].count("curl") >= 4
    with ExitStack() as stack:
        for command, shown in steps:
            argv = shlex.split(command)
            if argv == ["export", "AUTOPROV_CONFIG=$PWD/autoprov.toml"]:
                continue  # autoprov(config=...) sets it
            if argv == ["autoprov", "serve", "&"]:
                stack.enter_context(running_server(config, port))
                continue
            out = doc_step(argv, config)
            # Sightings are written by the server a moment after the request: poll, with a deadline.
            deadline = time.monotonic() + 15
            while argv[:2] == ["autoprov", "sightings"] and not output_matches(shown, out) \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
                out = doc_step(argv, config)
            assert output_matches(shown, out), f"$ {command}\n--- the page shows:\n{shown}\n--- got:\n{out}"

    # The page's examples of refused plugin settings, with the walk-through's configuration.
    refusals = re.findall(r"^Error: plugins\.acme\.(\w+): (.*)$", text, re.MULTILINE)
    assert len(refusals) == 2
    for key, message in refusals:
        value = re.fullmatch(r"expected \w+, got '(.*)'", message)
        typo = work / f"typo-{key}.toml"
        typo.write_text(files["autoprov.toml"] + f'{key} = "{value.group(1) if value else "x"}"\n', encoding="utf-8")
        refused = autoprov("models", config=typo, check=False)
        assert (refused.returncode, refused.stderr) == (1, f"Error: plugins.acme.{key}: {message}\n")


def test_output_matches_is_strict():
    assert output_matches("a\n...\nc", "a\nb\nb2\nc\n")
    assert output_matches("x...z", "xyz\n")
    assert not output_matches("a\nc", "a\nb\nc\n")
    assert not output_matches("a", "ab\n")


@pytest.fixture(scope="module")
def acme():
    """The Acme plugin module exactly as docs/plugins.md writes it, imported in-process."""
    source = doc_files(DOC.read_text(encoding="utf-8"))["acme/autoprov_acme/__init__.py"]
    module = types.ModuleType("doc_autoprov_acme")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    try:
        exec(compile(source, "docs/plugins.md:autoprov_acme", "exec"), module.__dict__)  # noqa: S102
        yield module
    finally:
        del sys.modules[module.__name__]


def make_site(settings, **plugins) -> Site:
    """A Site with the installed plugins and these, registered before it is built (as entry points are)."""
    pm = build_plugin_manager()
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    site = Site(settings, pm)
    site.init_database()
    return site


@pytest.fixture
def sites():
    made: list[Site] = []
    yield lambda settings, **plugins: made.append(make_site(settings, **plugins)) or made[-1]
    for site in made:
        site.close()


def broken_hooks(site: Site) -> set[tuple[str, str]]:
    return {(b.name, b.value) for b in site.plugins.broken}


def cli_run(site: Site, tmp_path: Path, *args: str) -> str:
    """The real click CLI, in-process, with the Site's plugins and a config file of its settings."""
    config = write_config(tmp_path / "cli.toml", site.settings, free_port())
    result = CliRunner().invoke(build_cli(site.plugins), ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


# --- One test per hook, named for it (Datasette's rule; test_every_hook_has_a_test_named_for_it) ------------


def test_hook_autoprov_device_models(sites, settings, acme):
    """Models are built for the Site that asks, with its settings and the plugin's own; a phone then boots."""
    settings.plugins = {"acme": {"ring_tone": "chirp"}}
    site = sites(settings, acme=acme.plugin)
    model = site.models["acme_a100"]
    assert isinstance(model, acme.AcmeA100)
    assert model.settings is site.settings
    assert model.plugin_settings == acme.AcmeSettings(ring_tone="chirp")
    client = PhoneClient(site)
    r = client.get("/acme.conf", headers={"User-Agent": ACME_UA})
    assert r.status_code == 200 and r.mimetype == "text/plain"
    assert "ring.tone=chirp\n" in r.text and "tz.offset_minutes=0\n" in r.text
    assert site.plugins.broken == []


def test_hookimpl_with_fewer_arguments_than_its_spec(sites, settings, acme):
    """pluggy passes a hookimpl only the arguments it names: taking fewer than the spec is fine."""

    class FewArgs:
        @hookimpl
        def autoprov_device_models(self, settings):
            return [acme.AcmeA100(settings, acme.AcmeSettings(ring_tone="few"))]

        @hookimpl
        def autoprov_register_commands(self):  # takes no `cli`: called, and adds nothing
            FewArgs.called = True

    site = sites(settings, few=FewArgs())
    assert site.models["acme_a100"].plugin_settings.ring_tone == "few"
    build_cli(site.plugins)
    assert FewArgs.called
    assert site.plugins.broken == []


def test_hook_autoprov_file_handlers(sites, settings, acme):
    """A plugin answers a role of its own: a model declares the file, the router matches it, applies the
    access rules, and hands it over."""
    from autoprov.devices import ROOT, FileRule

    class RingingA100(acme.AcmeA100):
        def files(self):
            return (*super().files(), FileRule("ring-{mac}.txt", "ringtone", ROOT, secret=True),
                    FileRule("orphan-{mac}.txt", "nobody-answers", ROOT))

    def ringtone(site, request, served):
        served.sight(site, request)
        return plain(200, f"ring tone {served.model.plugin_settings.ring_tone} for {served.mac}")

    class Ringtones:
        @hookimpl
        def autoprov_file_handlers(self):
            return {"ringtone": ringtone}

    settings.http.secrets_allowed_from = ["127.0.0.0/8"]
    site = sites(settings, acme=ModelPlugin(RingingA100), ringtones=Ringtones())
    client = PhoneClient(site)
    ua = {"User-Agent": ACME_UA}
    r = client.get("/ring-00AACE001234.txt", headers=ua, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert (r.status_code, r.text) == (200, "ring tone classic for 00aace001234\n")
    refused = client.get("/ring-00aace001234.txt", headers=ua, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert refused.status_code == 403  # secret: the access rules ran before the handler
    assert client.put("/ring-00aace001234.txt", headers=ua).status_code == 405
    orphan = client.get("/orphan-00aace001234.txt", headers=ua)
    assert (orphan.status_code, orphan.text) == (404, "nothing installed answers nobody-answers files\n")
    with site.db.connection_context():
        seen = Sighting.get(Sighting.mac == "00aace001234", Sighting.user_agent == ACME_UA)
    assert seen.model == "acme_a100" and seen.firmware == "2.1.0"


def test_hook_autoprov_migrations(sites, settings):
    site = sites(settings, ping=Ping())
    with site.db.connection_context():
        assert site.db.table_exists("ping_seen")
        assert current_versions(site.db)["ping"] == 1
    assert site.init_database() == []  # safe to rerun: nothing pending


def test_hook_autoprov_routes(sites, settings):
    site = sites(settings, ping=Ping())
    client = PhoneClient(site)
    assert (client.get("/ping").status_code, client.get("/ping").text) == (200, "pong\n")
    assert client.post("/ping").status_code == 405  # a Route's methods default to GET (and HEAD)


def test_hook_autoprov_register_commands(sites, settings, tmp_path):
    site = sites(settings, ping=Ping())
    assert cli_run(site, tmp_path, "ping") == "pong\n"
    assert "ping" in cli_run(site, tmp_path, "--help")


class PagerNotifier:
    """Another way to reach phones (a PBX's own API): answers for the MACs it knows, None to pass."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.calls: list[tuple[list[str], bool]] = []

    @hookimpl
    def autoprov_notify_phones(self, site: Site, macs: list[str], reboot: bool) -> list[NotifyResult] | None:
        self.calls.append((macs, reboot))
        if not set(macs) <= self.known:
            return None
        return [NotifyResult(mac, True, f"{mac}: paged{' (reboot)' if reboot else ''}") for mac in macs]


def test_hook_autoprov_notify_phones(sites, settings):
    """The plugin registered last answers first; one that passes (None) leaves it to the next, here the
    built-in autoprov.zerotouch; with no implementation at all, nothing can notify."""
    pager = PagerNotifier({"0004f2000001"})
    site = sites(settings, pager=pager)
    assert can_notify(site)
    with site.db.connection_context():
        assert notify_phones(site, ["0004f2000001"], reboot=True) == [
            NotifyResult("0004f2000001", True, "0004f2000001: paged (reboot)")]
        (fallback,) = notify_phones(site, ["0004f2000002"])
    assert pager.calls == [(["0004f2000001"], True), (["0004f2000002"], False)]
    assert not fallback.ok and "not sent: never seen and not registered" in fallback.report  # zerotouch's answer
    for name in ("pager", "autoprov.zerotouch.reach"):
        site.plugins.unregister(name=name)
    assert not can_notify(site) and notify_phones(site, ["0004f2000001"]) is None


def test_hook_autoprov_agi_scripts(monkeypatch, plugin_paths, config):
    """An installed plugin's call script, run by the real `autoprov agi run` as Asterisk's AGI() runs it."""
    with_plugins(monkeypatch, plugin_paths["good"])
    autoprov("init", config=config)
    argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "greet"]
    transcript, proc = local_call(argv, process_env=dict(os.environ), args=("word=bonjour",))
    assert transcript.commands == [["SET", "VARIABLE", "GREETING", "bonjour"]], proc.stderr
    assert transcript.status == "SUCCESS" and proc.returncode == 0
    pm = build_plugin_manager(load_entry_points=False)
    assert {"cid-name", "route"} <= set(collect_scripts(pm))


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hook_has_a_test_named_for_it(hook):
    """Datasette's rule, strictly: a hook spec without a function test_hook_<hook> in this module fails."""
    assert callable(globals().get(f"test_hook_{hook}")), f"no test named test_hook_{hook} in tests/test_plugins.py"


# --- Broken plugins: each hook, each model method -----------------------------------------------------------


def distribution_module(name: str) -> types.ModuleType:
    """The module of one of DISTRIBUTIONS, imported in-process (the same code the installed tests run)."""
    (path,) = (p for p in DISTRIBUTIONS[name] if p.endswith("__init__.py"))
    module = types.ModuleType(path.split("/")[0])
    exec(compile(textwrap.dedent(DISTRIBUTIONS[name][path]), path, "exec"), module.__dict__)  # noqa: S102
    return module


def test_plugin_raising_in_every_hook_is_reported_and_the_rest_serves(sites, settings, tmp_path, acme, caplog):
    with caplog.at_level(logging.ERROR, logger="autoprov.plugins"):
        # Built: plugin settings, models, migrations.
        site = sites(settings, exploding=distribution_module("autoprov-exploding"), acme=acme.plugin)
        client = PhoneClient(site)  # routes
        polycom = client.get("/000000000000.cfg", headers=headers("polycom_ip330"))  # file handlers
        acme_conf = client.get("/acme.conf", headers={"User-Agent": ACME_UA})
        scripts = collect_scripts(site.plugins)  # AGI scripts
        admin_login = client.get("/admin/login")  # admin pages and phone sections
        with site.db.connection_context():
            notified = notify_phones(site, ["0004f2000330"])  # check-sync: the built-in answers after it
        listing = cli_run(site, tmp_path, "models")  # commands (and a second Site for the CLI)
    assert polycom.status_code == 200 and b"prov/polycom_ip330/device.cfg" in polycom.data
    assert acme_conf.status_code == 200 and "ring.tone=classic" in acme_conf.text
    assert {"cid-name", "route"} <= set(scripts)
    assert admin_login.status_code == 200 and 'name="password"' in admin_login.text
    assert notified is not None and "not sent" in notified[0].report
    every_hook = {("exploding", hook) for hook in hookspec_names()}
    assert broken_hooks(site) == every_hook
    for hook in hookspec_names():
        assert f"BROKEN exploding ({hook}): RuntimeError: {hook} exploded" in listing
        assert f"plugin exploding failed in {hook}: {hook} exploded" in caplog.text
    assert "acme_a100: Acme A100 (Acme)" in listing and "polycom_ip330: " in listing


def test_installed_plugin_raising_in_every_hook(monkeypatch, plugin_paths, settings, tmp_path, capsys):
    """The same through the real CLI, `autoprov serve` and `autoprov agi run`, as an installed distribution."""
    with_plugins(monkeypatch, plugin_paths["broken"])
    port = free_port()
    config = write_config(tmp_path / "autoprov.toml", settings, port)
    init = autoprov("init", config=config)
    assert "plugin exploding failed in autoprov_migrations" in init.stderr
    assert "applied core 1" in init.stdout
    helped = autoprov("--help", config=config)
    assert "  phone " in helped.stdout and "plugin exploding failed in autoprov_register_commands" in helped.stderr
    listing = autoprov("models", config=config).stdout
    for hook in ("autoprov_register_commands", "autoprov_plugin_settings", "autoprov_device_models"):
        assert f"BROKEN exploding ({hook}): RuntimeError: {hook} exploded" in listing
    with running_server(config, port) as url:
        r = requests.get(f"{url}/000000000000.cfg", headers=headers("polycom_ip330"), timeout=10)
        phone = requests.get(f"{url}/0004f2000330.cfg", headers=headers("polycom_ip330"), timeout=10)
    server_log = capsys.readouterr().err
    assert r.status_code == 200 and b"prov/polycom_ip330/device.cfg" in r.content
    assert phone.status_code == 404 and "falls back" in phone.text  # a FALLBACK: file handlers still there
    for hook in ("autoprov_routes", "autoprov_file_handlers"):
        assert f"plugin exploding failed in {hook}" in server_log
    argv = [sys.executable, "-m", "autoprov", "--config", str(config), "agi", "run", "cid-name"]
    transcript, proc = local_call(argv, process_env=dict(os.environ), env={"callerid": "5550000"})
    assert transcript.status == "SUCCESS" and proc.returncode == 0, proc.stderr
    assert b"plugin exploding failed in autoprov_agi_scripts" in proc.stderr


def test_model_methods_that_raise_are_isolated(sites, settings, tmp_path, acme, caplog):
    """A model whose identify, files, render or check_phone raises: reported, that model degrades cleanly,
    the others keep serving."""

    class BadIdentify(acme.AcmeA100):
        name = "acme_bad_identify"
        user_agent_tokens = ("A101",)

        def identify(self, user_agent):
            raise ValueError("identify exploded")

    class BadFiles(acme.AcmeA100):
        name = "acme_bad_files"
        user_agent_tokens = ("A102",)

        def files(self):
            raise ValueError("files exploded")

    class BadRender(acme.AcmeA100):
        name = "acme_bad_render"
        user_agent_tokens = ("A103",)

        def render(self, rule, phone=None):
            raise ValueError("render exploded")

    class BadCheck(acme.AcmeA100):
        name = "acme_bad_check"
        user_agent_tokens = ("A104",)

        def check_phone(self, phone):
            raise ValueError("check_phone exploded")

    site = sites(settings, **{cls.name: ModelPlugin(cls) for cls in (BadIdentify, BadFiles, BadRender, BadCheck)})
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-1001"))
        admin.add_extension(ExtensionData("1002", "pw-1002"))
        admin.add_phone(site, "00aace000103", "acme_bad_render", ["1001"])
        admin.add_phone(site, "00aace000104", "acme_bad_check", ["1002"])  # the refusal check failed: added
        admin.add_phone(site, "0004f2000330", "polycom_ip330", ["1001"])
    client = PhoneClient(site)
    with caplog.at_level(logging.WARNING):
        ip330 = client.get("/prov/polycom_ip330/0004f2000330-phone.cfg", headers=headers("polycom_ip330"))
        unknown = client.get("/acme.conf", headers={"User-Agent": "Acme-A101/1.0"})  # only BadIdentify's token
        no_files = client.get("/acme.conf", headers={"User-Agent": "Acme-A102/1.0"})
        rendered = client.get("/acme-00aace000103.conf", headers={"User-Agent": "Acme-A103/1.0"})
        checked = client.get("/acme-00aace000104.conf", headers={"User-Agent": "Acme-A104/1.0"})
    assert ip330.status_code == 200 and b'reg.1.auth.password="pw-1001"' in ip330.data
    # identify raising: it claims nothing, so the family token of the others decides (a tie of FAMILY)
    assert unknown.status_code == 200 and "ring.tone=classic" in unknown.text
    assert no_files.status_code == 404  # files raising: it answers no file (and no firmware of that name)
    assert rendered.status_code == 500 and rendered.mimetype == "text/plain"
    assert "render exploded" in rendered.text and "Traceback" not in rendered.text
    assert checked.status_code == 200 and "account.1.password=pw-1002" in checked.text
    with site.db.connection_context():
        problem = Sighting.get(Sighting.mac == "00aace000103").problem
    assert "acme_bad_render failed to render it: ValueError: render exploded" in problem
    assert {("acme_bad_identify", "identify"), ("acme_bad_files", "files"),
            ("acme_bad_check", "check_phone")} <= broken_hooks(site)
    listing = cli_run(site, tmp_path, "models")
    assert "BROKEN acme_bad_files (files): ValueError: files exploded" in listing
    assert "acme_bad_files: Acme A100 (Acme)" in listing  # listed, with no files
    config = write_config(tmp_path / "render.toml", site.settings, free_port())
    failed = CliRunner().invoke(build_cli(site.plugins), ["--config", str(config), "render", "00aace000103"])
    assert failed.exit_code == 1
    assert failed.output == ("Error: acme_bad_render failed to render acme-{mac}.conf: "
                             "ValueError: render exploded\n")


def test_check_phone_refuses_what_the_format_cannot_carry(monkeypatch, plugin_paths, config, acme, sites, settings):
    """The doc's check_phone example: one line naming the field."""
    site = sites(settings, acme=acme.plugin)
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1002", "pw", first_name="Two\nLines"))
        with pytest.raises(admin.AdminError, match=r"^phone 00aace001235: Acme A100 cannot take this: "
                                                   r"first_name: an Acme config line cannot hold a line break$"):
            admin.add_phone(site, "00aace001235", "acme_a100", ["1002"])
        assert not Phone.select().where(Phone.mac == "00aace001235").exists()


# --- Identification is decided by the score, not by install order ------------------------------------------


class Greedy(DeviceModel):
    """Claims every User-Agent with ``support``; named to sort (and register) before every other model."""

    name = "aaa_greedy"
    label = "Greedy"
    vendor = "Greedy Inc."
    line_count = 1
    support = Support.GUESS

    def identify(self, user_agent):
        return Identity(self.support)

    def files(self):
        return (FileRule("000000000000.cfg", GENERATED, ROOT), FileRule("{mac}-phone.cfg", PHONE, ROOT))

    def render(self, rule, phone=None):
        return b"greedy\n"


class ExactGreedy(Greedy):
    support = Support.EXACT


def test_a_plugin_guessing_every_user_agent_cannot_take_over(sites, settings, caplog):
    site = sites(settings, aaa_greedy=ModelPlugin(Greedy))
    assert list(site.models)[0] == "aaa_greedy"  # first by name and registered first: order gives it nothing
    client = PhoneClient(site)
    with caplog.at_level(logging.WARNING, logger="autoprov.site"):
        for model in POLYCOM_MODELS:
            r = client.get("/000000000000.cfg", headers=headers(model))
            assert r.status_code == 200 and f"prov/{model}/device.cfg".encode() in r.data
        stranger = client.get("/000000000000.cfg", headers={"User-Agent": "curl/8.0"})
    assert stranger.data == b"greedy\n"  # a User-Agent nobody names: the guess is all there is
    assert site.ties == [] and "claimed equally" not in caplog.text


def test_a_plugin_claiming_every_user_agent_exactly_ties_and_the_tie_is_reported(sites, settings, tmp_path, caplog):
    site = sites(settings, aaa_greedy=ModelPlugin(ExactGreedy))
    client = PhoneClient(site)
    ua = headers("polycom_ip330")["User-Agent"]
    with caplog.at_level(logging.WARNING, logger="autoprov.site"):
        client.get("/000000000000.cfg", headers={"User-Agent": ua})
        client.get("/000000000000.cfg", headers={"User-Agent": ua})
    tie = f"User-Agent {ua!r}: claimed equally by aaa_greedy, polycom_ip330 (using aaa_greedy)"
    assert caplog.text.count(tie) == 1  # in the log, once
    # `autoprov models` is another process: it scores the User-Agents seen (the sightings) again.
    assert f"TIE {tie}" in cli_run(site, tmp_path, "models")


# --- Two vendors claim the same per-phone file name at the root --------------------------------------------


class Bolt(DeviceModel):
    """Another vendor whose phone config is ``<mac>.cfg`` at the root, Polycom's fallback name."""

    name = "bolt_7"
    label = "Bolt 7"
    vendor = "Bolt"
    line_count = 1
    user_agent_tokens = ("BOLT7",)

    def files(self):
        return (FileRule("{mac}.cfg", PHONE, ROOT, secret=True),)

    def render(self, rule, phone=None):
        return "".join(f"bolt.user={line.user_id}\n" for line in phone.lines).encode()


def test_two_vendors_claiming_one_root_file_name(sites, settings, tmp_path):
    site = sites(settings, bolt=ModelPlugin(Bolt))
    listing = cli_run(site, tmp_path, "models")
    tie = next(line for line in listing.splitlines() if line.startswith("TIE root file '{mac}.cfg'"))
    assert "bolt_7" in tie and "polycom_ip330" in tie
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw"))
        admin.add_phone(site, "00b0170000aa", "bolt_7", ["1001"])
        admin.add_phone(site, "0004f2000330", "polycom_ip330", ["1001"])
    client = PhoneClient(site)
    bolt_ua = {"User-Agent": "Bolt BOLT7 fw 1.2"}
    bolt = client.get("/00b0170000aa.cfg", headers=bolt_ua)
    assert (bolt.status_code, bolt.text) == (200, "bolt.user=1001\n")
    polycom = client.get("/0004f2000330.cfg", headers=headers("polycom_ip330"))
    assert polycom.status_code == 404 and "falls back" in polycom.text  # Polycom's own answer to that name
    # An unknown User-Agent: the model stored for the MAC answers.
    assert client.get("/00b0170000aa.cfg", headers={"User-Agent": "curl/8"}).text == "bolt.user=1001\n"
    assert "falls back" in client.get("/0004f2000330.cfg", headers={"User-Agent": "curl/8"}).text


# --- Two Sites in one process -------------------------------------------------------------------------------


def test_two_sites_in_one_process_share_no_models_or_database(settings, tmp_path, sites):
    other = Settings()
    other.database.url = f"sqlite:///{tmp_path}/other.db"
    other.firmware.root = str(tmp_path / "other-firmware")
    other.http.public_url = "http://other.example.test:9090"
    other.http.change_check_interval = 0
    one, two = sites(settings), sites(other)
    for name in POLYCOM_MODELS:
        assert one.models[name] is not two.models[name]
        assert one.models[name].settings is settings and two.models[name].settings is other
    assert one.models["polycom_ip330"].firmware_dir != two.models["polycom_ip330"].firmware_dir
    assert two.models["polycom_ip330"].firmware_dir == tmp_path / "other-firmware" / "polycom_ip330"

    with one.activated(), one.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-one"))
        admin.add_phone(one, "0004f2000330", "polycom_ip330", ["1001"])
    with two.activated(), two.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw-two"))
        admin.add_phone(two, "0004f2000331", "polycom_ip330", ["1001"])
    a, b = PhoneClient(one), PhoneClient(two)
    ua = headers("polycom_ip330")
    # Interleaved, and with the other Site's database active in this thread: each reads its own.
    for _ in range(2):
        with two.activated():
            r1 = a.get("/prov/polycom_ip330/0004f2000330-phone.cfg", headers=ua)
        with one.activated():
            r2 = b.get("/prov/polycom_ip330/0004f2000331-phone.cfg", headers=ua)
        assert b'reg.1.auth.password="pw-one"' in r1.data and b'reg.1.auth.password="pw-two"' in r2.data
        assert a.get("/prov/polycom_ip330/0004f2000331-phone.cfg", headers=ua).status_code == 404
        assert b.get("/prov/polycom_ip330/0004f2000330-phone.cfg", headers=ua).status_code == 404
    device_one = ET.fromstring(a.get("/prov/polycom_ip330/device.cfg", headers=ua).data)
    device_two = ET.fromstring(b.get("/prov/polycom_ip330/device.cfg", headers=ua).data)
    assert device_one.get("device.prov.serverName") == "prov.example.test:8080/prov/polycom_ip330"
    assert device_two.get("device.prov.serverName") == "other.example.test:9090/prov/polycom_ip330"
    # Each Site records what it was asked in its own database: 0004f2000331 is unknown to one, served by two.
    with one.activated(), one.db.connection_context():
        assert Sighting.get(Sighting.mac == "0004f2000331").problem == "not in the database"
        assert Sighting.get(Sighting.mac == "0004f2000330").problem == ""
    with two.activated(), two.db.connection_context():
        assert Sighting.get(Sighting.mac == "0004f2000331").problem == ""
        assert Sighting.get(Sighting.mac == "0004f2000330").problem == "not in the database"


def test_model_upload_and_directory_methods_that_raise_are_isolated(sites, settings, acme):
    """parse_log_line raising: the upload is stored all the same, its lines unparsed; render_directory raising:
    a clean 500 and a sighting, and the other models' directories are served."""

    class BadLogs(acme.AcmeA100):
        def parse_log_line(self, text, uploaded):
            raise ValueError("parse_log_line exploded")

    class BadDirectory(PolycomModel):
        def render_directory(self, entries):
            raise ValueError("render_directory exploded")

    site = sites(settings, acme=ModelPlugin(BadLogs), baddir=ModelPlugin(
        BadDirectory, name="polycom_baddir", label="Bad directory", user_agent_tokens=("BADDIR",), line_count=1,
        part_number="0000-00000-000"))
    with site.db.connection_context():
        admin.add_extension(ExtensionData("1001", "pw", first_name="Ada"))
    client = PhoneClient(site)
    upload = b"12.503 [sip] registered 1001\nplain\n"
    put = client.put("/acme-00aace001234-boot.log", data=upload, headers={"User-Agent": ACME_UA})
    assert (put.status_code, put.text) == (200, f"stored 2 line(s); 00aace001234-boot.log is {len(upload)} bytes\n")
    bad = client.get("/prov/polycom_baddir/000000000000-directory.xml", headers={"User-Agent": "X BADDIR"})
    assert bad.status_code == 500 and bad.mimetype == "text/plain" and "render_directory exploded" in bad.text
    good = client.get("/prov/polycom_ip330/000000000000-directory.xml", headers=headers("polycom_ip330"))
    assert good.status_code == 200 and b"<fn>Ada</fn>" in good.data
    assert {("acme_a100", "parse_log_line"), ("polycom_baddir", "render_directory")} <= broken_hooks(site)
    with site.db.connection_context():
        lines = [(row.parsed, row.message) for row in LogLine.select().order_by(LogLine.id)]
    assert lines == [(False, "12.503 [sip] registered 1001"), (False, "plain")]


def test_plugin_handlers_that_raise_answer_a_clean_500(sites, tmp_path, acme, caplog):
    """A plugin's route or file handler raising at request time: one plain line for the client (no traceback
    page), the traceback in the log, and every other route and model keeps answering."""

    def broken_route(site, request):
        raise RuntimeError("route handler exploded")

    def broken_ringtone(site, request, served):
        raise RuntimeError("file handler exploded")

    class RingingA100(acme.AcmeA100):
        def files(self):
            return (*super().files(), FileRule("ring-{mac}.txt", "ringtone", ROOT))

    class Handlers:
        @hookimpl
        def autoprov_routes(self):
            return [Route("/broken", broken_route)]

        @hookimpl
        def autoprov_file_handlers(self):
            return {"ringtone": broken_ringtone}

    # One backend only: the traceback is logged once a minute per cause, and this test reads it.
    settings = Settings()
    settings.database.url = f"sqlite:///{tmp_path}/handlers.db"
    settings.firmware.root = str(tmp_path / "firmware")
    site = sites(settings, handlers=Handlers(), acme=ModelPlugin(RingingA100))
    client = PhoneClient(site)
    with caplog.at_level(logging.ERROR, logger="autoprov.web"):
        route = client.get("/broken")
        ring = client.get("/ring-00aace001234.txt", headers={"User-Agent": ACME_UA})
    for r in (route, ring):
        assert (r.status_code, r.mimetype) == (500, "text/plain")
        assert r.text == "internal error; see the server log\n"
    assert "route handler exploded" in caplog.text and "file handler exploded" in caplog.text
    assert "Traceback" in caplog.text  # for the plugin's author
    assert client.get("/acme.conf", headers={"User-Agent": ACME_UA}).status_code == 200
    assert client.get("/000000000000.cfg", headers=headers("polycom_ip330")).status_code == 200



# The admin UI's hooks, tested with its helpers in tests/test_admin_ui.py.
from tests import test_admin_ui as _admin_ui  # noqa: E402

test_hook_autoprov_admin_pages = _admin_ui.hook_autoprov_admin_pages
test_hook_autoprov_admin_phone_sections = _admin_ui.hook_autoprov_admin_phone_sections
