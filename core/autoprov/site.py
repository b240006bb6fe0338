"""The running site: settings, plugins, device models and the database, built once per process."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

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
        self._shadowed: list[DeviceModel] = []  # models dropped because an earlier plugin has their name

    @cached_property
    def models(self) -> dict[str, DeviceModel]:
        """Installed device models by name; a duplicate name is reported and the first registered kept."""
        found: dict[str, DeviceModel] = {}
        # pluggy calls the last registered plugin first: reverse, so a later plugin cannot take over a name.
        for batch in reversed(self.plugins.hook.autoprov_device_models()):
            for model in batch or ():
                if model.name in found:
                    log.error("device model %s is provided twice; keeping the first", model.name)
                    self._shadowed.append(model)
                    continue
                model.configure(self.settings)
                found[model.name] = model
        return dict(sorted(found.items()))

    @cached_property
    def _identify_hook(self) -> Any:
        """The User-Agent hook without the models dropped as duplicates (they must not claim phones)."""
        models = self.models
        shadowed = [m for m in self._shadowed if self.plugins.is_registered(m) and m not in models.values()]
        if not shadowed:
            return self.plugins.hook.autoprov_identify_user_agent
        return self.plugins.subset_hook_caller("autoprov_identify_user_agent", shadowed)

    def identify(self, user_agent: str) -> DeviceModel | None:
        """The installed model whose phone sent this User-Agent."""
        name = self._identify_hook(user_agent=user_agent or "")
        return self.models.get(name) if name else None

    def migrations(self) -> list[Migration]:
        return [m for batch in self.plugins.hook.autoprov_migrations() for m in batch or ()]

    def init_database(self) -> list[Migration]:
        """Create or upgrade the schema; safe to rerun."""
        with self.db.connection_context():
            return migrate(self.db, self.migrations())
