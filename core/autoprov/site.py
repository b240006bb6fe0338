"""The running site: settings, plugins, device models and the database, built once per process."""

from __future__ import annotations

import logging
from functools import cached_property

import peewee

from autoprov.config import Settings, load_settings
from autoprov.db import open_database
from autoprov.devices import DeviceModel
from autoprov.plugins import PluginManager, build_plugin_manager
from autoprov.schema import Migration, migrate

log = logging.getLogger(__name__)


class Site:
    def __init__(self, settings: Settings | None = None, plugins: PluginManager | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.plugins = plugins if plugins is not None else build_plugin_manager()
        self.db: peewee.Database = open_database(self.settings.database.url)
        self._shadowed: list[object] = []  # plugins whose model names an earlier plugin already has

    @cached_property
    def models(self) -> dict[str, DeviceModel]:
        """Installed device models by name; a duplicate name is reported and the first registered kept.

        Each plugin is asked on its own, so one whose hook raises is reported as broken, not fatal.
        """
        found: dict[str, DeviceModel] = {}
        impls = self.plugins.hook.autoprov_device_models.get_hookimpls()  # registration order
        for impl, batch in self.plugins.each_result("autoprov_device_models", impls):
            for model in batch or ():
                if model.name in found:
                    log.error("device model %s is provided twice; keeping the first", model.name)
                    self._shadowed.append(impl.plugin)
                    continue
                model.configure(self.settings)
                found[model.name] = model
        return dict(sorted(found.items()))

    def identify(self, user_agent: str) -> DeviceModel | None:
        """The installed model whose phone sent this User-Agent (the first plugin to claim it wins)."""
        models = self.models
        # pluggy's calling order (last registered first), skipping duplicates and plugins that raise.
        impls = [i for i in reversed(self.plugins.hook.autoprov_identify_user_agent.get_hookimpls())
                 if i.plugin not in self._shadowed]
        for _, name in self.plugins.each_result("autoprov_identify_user_agent", impls, user_agent=user_agent or ""):
            if name is not None:
                return models.get(name)
        return None

    def migrations(self) -> list[Migration]:
        return [m for batch in self.plugins.hook.autoprov_migrations() for m in batch or ()]

    def init_database(self) -> list[Migration]:
        """Create or upgrade the schema; safe to rerun."""
        with self.db.connection_context():
            return migrate(self.db, self.migrations())
