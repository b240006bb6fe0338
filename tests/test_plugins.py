"""Adding a model is adding a package; a broken package is reported and skipped, never fatal.

Throwaway distributions are built in a temporary directory and installed for real with pip (``--target``),
then the real ``autoprov`` command line and server run with that directory on PYTHONPATH.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner
from werkzeug.test import Client

from autoprov import hookimpl, hookspecs
from autoprov.cli import build_cli
from autoprov.config import ConfigError
from autoprov.devices import ModelPlugin
from autoprov.plugins import build_plugin_manager
from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from autoprov.schema import Migration
from autoprov.site import Site
from autoprov.vendors.polycom import PolycomModel
from autoprov.web import Route, create_app, plain
from tests.conftest import autoprov, free_port, running_server, write_config
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
}

GOOD = ("autoprov-polycom-vvx999", "autoprov-hello")
BROKEN = ("autoprov-broken-import", "autoprov-misspelled", "autoprov-bad-signature")


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
    client = Client(create_app(site))
    initial = client.get("/000000000000.cfg", headers={"User-Agent": ua})
    assert ET.fromstring(initial.data).get("CONFIG_FILES").startswith("prov/polycom_vvx998/device.cfg")
    r = client.get("/prov/polycom_vvx998/0004f2099998-phone.cfg", headers={"User-Agent": ua})
    assert r.status_code == 200, r.data
    assert ET.fromstring(r.data).find("reg").get("reg.1.auth.password") == "pw-3001"
    assert client.get("/ping").data == b"pong\n"

    result = CliRunner().invoke(build_cli(site.plugins), ["ping"])
    assert result.exit_code == 0 and result.output == "pong\n"

    site.plugins.unregister(name="ping")
    assert Client(create_app(site)).get("/ping").status_code == 404


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
        client = Client(create_app(site))
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
