"""The plugin manager: core modules, then every distribution registered in the ``autoprov`` entry-point group.

Entry points are loaded one at a time, so one broken plugin is reported (log and ``autoprov models``)
and skipped instead of taking the whole server down.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy
from pluggy import HookImpl

from autoprov import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "autoprov"

# Core modules implement hooks like any plugin; add a module here to plug it in.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "autoprov.tables",
    "autoprov.audit",
    "autoprov.throttle",
    "autoprov.phonepath",
    "autoprov.provisioning.files",
    "autoprov.provisioning.cli",
    "autoprov.phonefiles.tables",
    "autoprov.phonefiles.files",
    "autoprov.phonefiles.cli",
    "autoprov.agi.tables",
    "autoprov.agi.scripts",
    "autoprov.agi.cli",
    "autoprov.adminui.tables",
    "autoprov.adminui.app",
    "autoprov.adminui.cli",
    "autoprov.provisioning.pages",
    "autoprov.phonefiles.pages",
    "autoprov.agi.pages",
    "autoprov.zerotouch.cli",
    "autoprov.credentials",
    "autoprov.credentials_cli",
    "autoprov.security.cli",
    "autoprov.security.pages",
    "autoprov.atrest.cli",
)


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    name: str
    value: str
    error: str


class PluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__("autoprov")
        self.add_hookspecs(hookspecs)
        self.broken: list[BrokenPlugin] = []

    def load_defaults(self) -> None:
        for name in DEFAULT_PLUGINS:
            if self.get_plugin(name) is None:
                self.register(importlib.import_module(name), name=name)

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
            try:
                self.register_checked(ep.load(), ep.name)
            except Exception as exc:  # a third party's bug must not stop the server
                log.error("plugin %s (%s) failed to load: %s", ep.name, ep.value, exc, exc_info=True)
                self.broken.append(BrokenPlugin(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))

    def report_broken(self, name: str, hook: str, exc: Exception) -> None:
        """Record a plugin whose hook raised (once per plugin and hook), logging the traceback."""
        if any(b.name == name and b.value == hook for b in self.broken):
            return
        log.error("plugin %s failed in %s: %s", name, hook, exc, exc_info=exc)
        self.broken.append(BrokenPlugin(name, hook, f"{type(exc).__name__}: {exc}"))

    def each_result(
        self,
        hook: str,
        impls: Iterable[HookImpl] | None = None,
        per_plugin: Callable[[str], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Iterator[tuple[HookImpl, Any]]:
        """Call the implementations of ``hook`` one by one (default: all, in registration order) and yield
        (impl, result) for each that returns; one that raises is reported broken and skipped, so a bad
        plugin cannot take the others down.

        Arguments are passed as pluggy passes them: each implementation gets only the arguments it names
        (a hookimpl may take fewer than its spec). ``per_plugin(name)`` adds arguments of that plugin's own.
        """
        if impls is None:
            impls = getattr(self.hook, hook).get_hookimpls()
        for impl in impls:
            given = {**kwargs, **per_plugin(impl.plugin_name)} if per_plugin else kwargs
            try:
                result = impl.function(*[given[name] for name in impl.argnames])
            except Exception as exc:
                self.report_broken(impl.plugin_name, hook, exc)
                continue
            yield impl, result

    def results(self, hook: str, **kwargs: Any) -> list[Any]:
        """Every plugin's answer to ``hook`` (lists flattened), skipping and reporting plugins that raise."""
        found: list[Any] = []
        for _, result in self.each_result(hook, **kwargs):
            if isinstance(result, (list, tuple)):
                found.extend(result)
            elif result is not None:
                found.append(result)
        return found

    def register_checked(self, plugin: Any, name: str) -> None:
        """Register a plugin, refusing one that implements a hook no spec names (a misspelling).

        A refused plugin leaves nothing behind: pluggy's ``register`` keeps the hooks it added before one
        that fails validation (a wrong argument name), so those are removed here.
        """
        try:
            self.register(plugin, name=name)
            unknown = [h.name for h in self.get_hookcallers(plugin) or () if h.spec is None]
            if unknown:
                raise pluggy.PluginValidationError(plugin, f"unknown hook(s): {', '.join(sorted(unknown))}")
        except Exception:
            if self.get_plugin(name) is plugin:
                self.unregister(name=name)
            raise


def build_plugin_manager(load_entry_points: bool = True) -> PluginManager:
    """The plugin manager with the core modules and (by default) every installed plugin."""
    pm = PluginManager()
    pm.load_defaults()
    if load_entry_points:
        pm.load_entry_points()
    return pm
