"""The ``autoprov`` command line. Subcommands come from plugins (``autoprov_register_commands``),
core's own included, so ``autoprov --help`` lists what is installed.

Errors are one clear line on stderr and a non-zero exit (click's ``ClickException``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import peewee

from autoprov.atrest import SecretsUnavailable
from autoprov.config import ConfigError, load_settings
from autoprov.db import describe_database, is_schema_missing, is_unavailable
from autoprov.mac import InvalidMac, normalize_mac
from autoprov.plugins import PluginManager, build_plugin_manager
from autoprov.refused import Refused
from autoprov.site import Site

F = TypeVar("F", bound=Callable[..., Any])


def one_line(message: object) -> str:
    """An error message on one line: database drivers (psycopg2) put hints on further lines."""
    return " ".join(str(message).split())


def parse_mac(value: str) -> str:
    """A MAC from the command line, normalised; a malformed one ends the command with one line."""
    try:
        return normalize_mac(value)
    except InvalidMac as exc:
        raise click.ClickException(str(exc)) from None


class LazySite:
    """Holds the --config path; the Site (and so the configuration) is built on first use."""

    def __init__(self, config: str | None, plugins: PluginManager) -> None:
        self.config = config
        self.plugins = plugins
        self._site: Site | None = None

    def get(self) -> Site:
        if self._site is None:
            try:
                settings = load_settings(self.config)
            except ConfigError as exc:
                raise click.ClickException(one_line(exc)) from None
            try:
                self._site = Site(settings, self.plugins)
            except ConfigError as exc:  # a plugin's [plugins.<name>] section, checked against what it declares
                raise click.ClickException(one_line(exc)) from None
            except peewee.OperationalError as exc:
                raise click.ClickException(one_line(f"{exc} ({describe_database(settings.database.url)})")) from None
        return self._site


def pass_site(f: F) -> F:
    """Decorator: call the command with the Site as its first argument, inside a database connection.

    A refused change (Refused) or an unreachable database ends the command with one line on stderr and exit status 1.
    """

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        site = ctx.find_object(LazySite).get()
        try:
            with site.activated(), site.db.connection_context():
                return ctx.invoke(f, site, *args, **kwargs)
        except peewee.PeeweeException as exc:
            if is_schema_missing(exc):
                raise click.ClickException("the database has no autoprov tables yet: run `autoprov init`") from None
            if is_unavailable(exc):
                where = describe_database(site.settings.database.url)
                raise click.ClickException(one_line(f"database unavailable: {exc} ({where})")) from None
            raise
        except (Refused, SecretsUnavailable) as exc:  # a refused change, a key file: the message is the story
            raise click.ClickException(one_line(exc)) from None
        except UnicodeEncodeError:  # bytes that are not UTF-8 in an argument reached a database driver
            raise click.ClickException("an argument is not valid UTF-8") from None

    wrapper.__name__ = f.__name__
    wrapper.__doc__ = f.__doc__
    return wrapper  # type: ignore[return-value]


def reader_gone() -> None:
    """stdout's reader went away (``autoprov phone list | head -1``): end as Unix tools do, killed by SIGPIPE
    (status 141 in the shell), not with a silent status 1 and not with a traceback."""
    try:
        # Later flushes (at exit) must not raise again: stdout now leads nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(128 + signal.SIGPIPE)  # where the signal could not end the process


class Commands(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # click itself would turn it into a silent exit 1
            reader_gone()


def build_cli(plugins: PluginManager) -> click.Group:
    @click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--config",
        "config",
        envvar="AUTOPROV_CONFIG",
        type=click.Path(dir_okay=False),
        help="Configuration file (default: $AUTOPROV_CONFIG, else /etc/autoprov/autoprov.toml if present).",
    )
    @click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
    @click.version_option(package_name="autoprov")
    @click.pass_context
    def cli(ctx: click.Context, config: str | None, verbose: int) -> None:
        """Zero-touch provisioning for Polycom phones, and AGI scripts for Asterisk."""
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        ctx.obj = LazySite(config, plugins)

    from autoprov.sitecommands import SITE_COMMANDS

    for command in SITE_COMMANDS:
        cli.add_command(command)
    # Each plugin on its own: one whose hook raises is reported (`autoprov models`), and the CLI still works.
    for _ in plugins.each_result("autoprov_register_commands", cli=cli):
        pass
    return cli


def main(argv: list[str] | None = None) -> Any:
    plugins = build_plugin_manager()
    return build_cli(plugins).main(args=argv, prog_name="autoprov")
