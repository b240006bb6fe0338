"""Hook specifications: what a plugin (a device model, a call script, a core module) may provide.

Core modules are registered exactly like third-party plugins (see ``plugins.DEFAULT_PLUGINS``), so the
built-ins are the reference for every hook here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from autoprov.checksync import NotifyResult
    from autoprov.config import Settings
    from autoprov.devices import DeviceModel
    from autoprov.phonepath import FileHandler
    from autoprov.schema import Migration
    from autoprov.site import Site
    from autoprov.web import Route

hookspec = pluggy.HookspecMarker("autoprov")


@hookspec
def autoprov_device_models(settings: Settings, plugin_settings: Any) -> list[DeviceModel]:
    """Build this plugin's device models for one Site: ``settings`` are the site's, ``plugin_settings`` this
    plugin's own ``[plugins.<name>]`` section as an instance of its ``autoprov_plugin_settings`` class."""


@hookspec
def autoprov_plugin_settings() -> type | None:
    """A dataclass whose fields are the keys this plugin reads from ``[plugins.<plugin name>]`` (with defaults
    and a comment each); a key it does not declare is refused when the configuration is loaded."""


@hookspec
def autoprov_file_handlers() -> dict[str, FileHandler]:
    """Handlers for the file roles models declare (``FileRule.role``), by role.

    A handler is ``handler(site, request, served: autoprov.phonepath.Served) -> Response``; core's router has
    already identified the phone, matched the file and applied the access rules for secret files.
    """


@hookspec
def autoprov_migrations() -> list[Migration]:
    """Versioned schema migrations of the tables this plugin owns (run by ``autoprov init``)."""


@hookspec
def autoprov_routes() -> list[Route]:
    """HTTP routes this plugin serves (Werkzeug rules with their handlers)."""


@hookspec
def autoprov_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``autoprov`` command line."""


@hookspec
def autoprov_agi_scripts() -> dict[str, Any]:
    """AGI scripts by name, as reached by ``agi://host/<name>`` or ``autoprov agi run <name>``.

    Each value is a callable ``script(session: autoprov.agi.AGISession, ctx: autoprov.agi.ScriptContext)``
    run once per call on its own thread; ``ctx.query(fn)`` runs database work time-limited, and raising
    (or a database failure) ends the AGI with AGISTATUS=FAILURE so the dialplan goes on.
    """


@hookspec
def autoprov_notify_phones(site: Site, macs: list[str], reboot: bool) -> list[NotifyResult] | None:
    """Make these phones re-read their configuration now (``reboot``: restart too), inside a database
    connection; one ``autoprov.checksync.NotifyResult`` per MAC, in order. The first implementation that
    answers is used (``autoprov.checksync.notify_phones``)."""


# -- the admin web UI (autoprov.adminui) ---------------------------------------------------------------------

if TYPE_CHECKING:
    from autoprov.adminui.pages import AdminPage, PhoneSection


@hookspec
def autoprov_admin_pages() -> list[AdminPage]:
    """Pages of the admin web UI under ``/admin/`` (login required; POSTs are CSRF-checked before the handler).

    A page with a ``title`` is listed in the navigation. Templates inherit ``/admin_layout.mako``.
    """


@hookspec
def autoprov_admin_phone_sections() -> list[PhoneSection]:
    """Panels of a phone's admin page, so a feature shows what it holds about a phone without the page's
    owner importing it: each renders to HTML for a MAC."""
