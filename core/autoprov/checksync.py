"""Making phones re-read their configuration now (check-sync), as core sees it: a hook a feature implements
(``autoprov_notify_phones``; autoprov.zerotouch does), called by the provisioning CLI's ``--notify`` and the
admin UI's button, which do not import that feature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoprov.site import Site


@dataclass(frozen=True)
class NotifyResult:
    """One phone: whether it acknowledged, and a line saying what was sent and what came back."""

    mac: str
    ok: bool
    report: str


def can_notify(site: Site) -> bool:
    """Whether an installed plugin implements the hook."""
    return bool(site.plugins.hook.autoprov_notify_phones.get_hookimpls())


def notify_phones(site: Site, macs: list[str], reboot: bool = False) -> list[NotifyResult] | None:
    """The first answer's results (one per MAC, in order), or None when no implementation is installed or
    none answered (a failing plugin is reported broken, as for every hook). As pluggy calls hooks, the plugin
    registered last is asked first: an installed plugin comes before the built-in autoprov.zerotouch."""
    impls = reversed(site.plugins.hook.autoprov_notify_phones.get_hookimpls())
    for _, results in site.plugins.each_result("autoprov_notify_phones", impls, site=site, macs=macs, reboot=reboot):
        if results is not None:
            return list(results)
    return None
