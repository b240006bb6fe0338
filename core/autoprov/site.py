"""The running site: settings, plugins, device models and the database, built once per process.

Everything here belongs to one Site: its models are built for it, its caches and sighting buffer are its own,
and its database is the one its requests and commands use (``db.activated``). Two Sites in one process stay
independent.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, is_dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import peewee

from autoprov.atrest import Keyring
from autoprov.atrest import bind as bind_keyring
from autoprov.config import Settings, fill, load_settings
from autoprov.db import activated, open_database
from autoprov.devices import DeviceModel, FileRule, Identity
from autoprov.plugins import PluginManager, build_plugin_manager
from autoprov.revision import ChangeWatch, RenderCache
from autoprov.schema import LOCK_WAIT, Migration, is_locked_out, migrate
from autoprov.sightings import SightingBuffer, user_agent_family

if TYPE_CHECKING:
    from autoprov.access import AccessPolicy
    from autoprov.audit import AuditTrail
    from autoprov.phonepath import FileHandler
    from autoprov.throttle import MacThrottle

log = logging.getLogger(__name__)

IDENTIFY_CACHE_LIMIT = 4096  # distinct User-Agents remembered; a fleet has a few dozen
MATCH_CACHE_LIMIT = 50000  # file names remembered (a few per phone)
_MISSING = object()


@dataclass(frozen=True)
class Tie:
    """Two models claim a User-Agent (or a file name) equally well: reported, and the first by name is used."""

    what: str
    models: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.models[:6]) + (f" and {len(self.models) - 6} more" if len(self.models) > 6 else "")
        return f"{self.what}: claimed equally by {shown} (using {self.models[0]})"


@dataclass
class _Claims:
    """File rules by where they are served, each with its model, in model-name order."""

    root: list[tuple[DeviceModel, FileRule]] = field(default_factory=list)
    model: dict[str, list[FileRule]] = field(default_factory=dict)


class Site:
    def __init__(self, settings: Settings | None = None, plugins: PluginManager | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.plugins = plugins if plugins is not None else build_plugin_manager()
        self.db: peewee.Database = open_database(self.settings.database.url)
        self.keyring = Keyring(self.settings.secrets.key_file)  # SIP passwords at rest: this database's keys
        bind_keyring(self.db, self.keyring)
        self.ties: list[Tie] = []
        self.fixed: dict[object, object] = {}  # renders that depend on the settings alone, kept for the process
        self._identified: dict[str, tuple[DeviceModel | None, Identity | None]] = {}
        self._matched: dict[tuple[str, str, str | None, bool], object] = {}
        self._lock = threading.Lock()
        self.plugin_settings = self._plugin_settings()

    # --- Plugins -----------------------------------------------------------------------------------------
    def _plugin_settings(self) -> dict[str, Any]:
        """Each plugin's ``[plugins.<name>]`` section, filled into the dataclass it declares.

        A key the plugin does not declare is refused with its name (ConfigError); a section no installed
        plugin declares is only warned about, so uninstalling a plugin does not stop the server.
        """
        declared: dict[str, Any] = {}
        for impl, cls in self.plugins.each_result("autoprov_plugin_settings"):
            if cls is None:
                continue
            if not (isinstance(cls, type) and is_dataclass(cls)):
                self.plugins.report_broken(impl.plugin_name, "autoprov_plugin_settings",
                                           TypeError(f"{cls!r} is not a dataclass"))
                continue
            instance = cls()
            fill(instance, self.settings.plugins.get(impl.plugin_name, {}), f"plugins.{impl.plugin_name}.")
            declared[impl.plugin_name] = instance
        for name in self.settings.plugins:
            if name not in declared:
                log.warning("[plugins.%s] in %s: no installed plugin declares settings by that name", name,
                            self.settings.source)
        return declared

    @cached_property
    def models(self) -> dict[str, DeviceModel]:
        """Installed device models by name, built for this Site; a duplicate name is reported and the first
        registered kept. A plugin whose hook raises is reported broken, never fatal."""
        found: dict[str, DeviceModel] = {}
        for impl, batch in self.plugins.each_result(
            "autoprov_device_models", settings=self.settings,
            per_plugin=lambda name: {"plugin_settings": self.plugin_settings.get(name)},
        ):
            for model in batch or ():
                if not isinstance(model, DeviceModel):
                    self.plugins.report_broken(impl.plugin_name, "autoprov_device_models",
                                               TypeError(f"{model!r} is not a DeviceModel"))
                elif model.name in found:
                    log.error("device model %s is provided twice; keeping the first", model.name)
                    self.plugins.report_broken(impl.plugin_name, "autoprov_device_models",
                                               ValueError(f"model {model.name} is provided by another plugin"))
                else:
                    found[model.name] = model
        return dict(sorted(found.items()))

    @cached_property
    def file_handlers(self) -> dict[str, FileHandler]:
        handlers: dict[str, FileHandler] = {}
        for impl, batch in self.plugins.each_result("autoprov_file_handlers"):
            for role, handler in (batch or {}).items():
                if role in handlers:
                    log.error("file role %r is answered by two plugins; %s is ignored", role, impl.plugin_name)
                    continue
                handlers[role] = handler
        return handlers

    @cached_property
    def _claims(self) -> _Claims:
        claims = _Claims()
        for model in self.models.values():
            rules = self.files_of(model)
            claims.root += [(model, r) for r in rules if r.where == "root"]
            claims.model[model.name] = [r for r in rules if r.where == "model"]
        # Exact names before patterns: "000000000000-directory.xml" is not the {mac} of "{mac}-directory.xml".
        claims.root.sort(key=lambda mr: mr[1].per_phone)
        for rules in claims.model.values():
            rules.sort(key=lambda r: r.per_phone)
        return claims

    def files_of(self, model: DeviceModel) -> tuple[FileRule, ...]:
        """``model.files()``; a model whose ``files`` raises is reported broken and answers no file."""
        try:
            return tuple(model.files())
        except Exception as exc:
            self.plugins.report_broken(model.name, "files", exc)
            return ()

    # --- Identification ----------------------------------------------------------------------------------
    def identify(self, user_agent: str) -> tuple[DeviceModel | None, Identity | None]:
        """The model whose phone sent ``user_agent``, by the best score of every model (ties: the first by
        name, reported); remembered per User-Agent, so each is scored once."""
        found = self._identified.get(user_agent)
        if found is not None:
            return found
        best: list[tuple[DeviceModel, Identity]] = []
        for model in self.models.values():
            try:
                identity = model.identify(user_agent)
            except Exception as exc:
                self.plugins.report_broken(model.name, "identify", exc)
                continue
            if identity is None or not identity.support:
                continue
            if not best or identity.support > best[0][1].support:
                best = [(model, identity)]
            elif identity.support == best[0][1].support:
                best.append((model, identity))
        if len(best) > 1:
            self._tie(Tie(f"User-Agent {user_agent[:120]!r}", tuple(m.name for m, _ in best)))
        found = best[0] if best else (None, None)
        with self._lock:
            if len(self._identified) >= IDENTIFY_CACHE_LIMIT:
                self._identified.clear()
            self._identified[user_agent] = found
        return found

    def _tie(self, tie: Tie) -> None:
        with self._lock:
            if tie in self.ties:
                return
            self.ties.append(tie)
        log.warning("%s", tie)

    def model_by_oui(self, mac: str) -> DeviceModel | None:
        """The model whose declared OUIs hold ``mac`` (the first by name), for a phone whose User-Agent is unknown."""
        oui = mac[:6].lower()
        return next((m for m in self.models.values() if oui and oui in m.mac_ouis), None)

    # --- Files -------------------------------------------------------------------------------------------
    def match(self, filename: str, where: str, model: DeviceModel | None, per_phone: bool = False
              ) -> tuple[DeviceModel, FileRule, dict[str, str]] | None:
        """The declared file ``filename`` is: ``model``'s (None at the root: any model's, ``per_phone`` names
        only; two vendors claiming it is a tie, reported, and the first by name answers). Remembered: the
        rules never change while the Site lives, and a fleet asks for the same few thousand names."""
        key = (filename, where, model.name if model else None, per_phone)
        found = self._matched.get(key, _MISSING)
        if found is _MISSING:
            found = self._match(filename, where, model, per_phone)
            with self._lock:
                if len(self._matched) >= MATCH_CACHE_LIMIT:
                    self._matched.clear()
                self._matched[key] = found
        return found  # type: ignore[return-value]

    def _match(self, filename: str, where: str, model: DeviceModel | None, per_phone: bool
               ) -> tuple[DeviceModel, FileRule, dict[str, str]] | None:
        if where == "model":
            assert model is not None
            candidates = [(model, r) for r in self._claims.model.get(model.name, ())]
        else:
            candidates = [(m, r) for m, r in self._claims.root
                          if (model is None or m is model) and (r.per_phone or not per_phone)]
        hits = []
        for m, rule in candidates:
            values = rule.match(filename)
            if values is not None:
                values = {k: (v.lower() if k == "mac" else v) for k, v in values.items()}
                if model is not None:
                    return m, rule, values
                hits.append((m, rule, values))
        # Vendors sharing a per-phone name (Polycom's and Yealink's /<mac>.cfg) is no tie when every rule reads
        # the same MAC from it: the phone's stored model decides whose file it is. (Reporting it per file name
        # would also grow the tie list with every MAC an unknown client asks for.)
        differ = len({tuple(sorted(v.items())) for _, _, v in hits}) > 1
        if differ and _vendors_differ(self, [m.name for m, _, _ in hits]):
            self._tie(Tie(f"file name {filename!r} at the root", tuple(sorted({m.name for m, _, _ in hits}))))
        return hits[0] if hits else None

    def malformed(self, filename: str, where: str, model: DeviceModel) -> FileRule | None:
        """The rule of ``model`` whose kind of file ``filename`` is, malformed (answered 400)."""
        rules = self._claims.model.get(model.name, ()) if where == "model" else (
            r for m, r in self._claims.root if m is model)
        return next((r for r in rules if r.is_malformed(filename)), None)

    def file_conflicts(self) -> list[Tie]:
        """Root file names models of different vendors both declare (patterns compared as written). The
        User-Agent decides between them; only a phone whose User-Agent no model knows is answered by the
        model the database gives it, so these are worth an admin's eye, not an error."""
        owners: dict[str, list[str]] = {}
        for model, rule in self._claims.root:
            owners.setdefault(rule.pattern, []).append(model.name)
        return [Tie(f"root file {pattern!r}", tuple(names))
                for pattern, names in sorted(owners.items()) if _vendors_differ(self, names)]

    # --- Database, caches, sightings -----------------------------------------------------------------------
    def activated(self) -> AbstractContextManager[peewee.Database]:
        """This Site's database for every table used in this thread, for the duration."""
        return activated(self.db)

    @cached_property
    def changes(self) -> ChangeWatch:
        return ChangeWatch(self.db, self.settings.http.change_check_interval)

    @cached_property
    def renders(self) -> RenderCache[Any]:
        """Rendered files and database lookups, kept until something they depend on changes."""
        return RenderCache(self.changes, self.settings.http.render_cache_entries)

    @cached_property
    def access(self) -> AccessPolicy:
        """Who may fetch secrets and upload (``autoprov.access``)."""
        from autoprov.access import AccessPolicy

        return AccessPolicy(self)

    @cached_property
    def sightings(self) -> SightingBuffer:
        http = self.settings.http
        return SightingBuffer(self.db, http.sighting_flush_interval, http.sighting_buffer_limit,
                              family_of=self._family, on_flag=self._flagged, keep_days=http.sightings_keep_days,
                              max_rows=http.sightings_max_rows)

    def _family(self, model: str | None, user_agent: str) -> str:
        found = self.models.get(model) if model else None
        return user_agent_family(found.vendor if found is not None else None, user_agent)

    def _flagged(self, mac: str, user_agent: str, address: str | None, why: str) -> None:
        self.audit.record("flagged", mac=mac, client=address, user_agent=user_agent, reason=why)

    @cached_property
    def audit(self) -> AuditTrail:
        """The audit trail of secrets served and requests refused (``autoprov.audit``), buffered."""
        from autoprov.audit import AuditTrail

        a = self.settings.audit
        return AuditTrail(self.db, a.flush_interval, a.buffer_limit, a.keep_days, a.max_rows)

    @cached_property
    def throttle(self) -> MacThrottle:
        """Clients guessing MACs (``autoprov.throttle``): ``miss(client, mac)``, ``blocked(client)``."""
        from autoprov.throttle import MacThrottle

        def blocked(client: str, seconds: float, misses: int) -> None:
            self.audit.record("throttled", client=client, status=429,
                              reason=f"blocked for {seconds:.0f} s: {misses} unknown MACs asked for within "
                                     f"{self.settings.throttle.window:g} s")

        return MacThrottle(self.db, self.settings.throttle, on_block=blocked)

    def migrations(self) -> list[Migration]:
        return [m for m in self.plugins.results("autoprov_migrations") if isinstance(m, Migration)]

    def init_database(self) -> list[Migration]:
        """Create or upgrade the schema; safe to rerun, and from several servers at once."""
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                with self.activated(), self.db.connection_context():
                    return migrate(self.db, self.migrations())
            except peewee.OperationalError as exc:
                if not is_locked_out(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        """Write pending sightings, audit records and throttle counts; close this thread's connection."""
        for writer in ("sightings", "throttle", "audit"):  # sightings and blocks add to the audit
            if writer in self.__dict__:
                self.__dict__[writer].close()
        if not self.db.is_closed():
            self.db.close()


def _vendors_differ(site: Site, names: list[str]) -> bool:
    """Models of one vendor may share a root name (they serve the same answer by User-Agent)."""
    return len({site.models[n].vendor for n in names}) > 1

