"""The built-in call scripts, registered like any plugin's."""

from __future__ import annotations

from autoprov import hookimpl
from autoprov.agi.runner import Script
from autoprov.agi.scripts.cid_name import cid_name
from autoprov.agi.scripts.route import route


@hookimpl
def autoprov_agi_scripts() -> dict[str, Script]:
    return {"cid-name": cid_name, "route": route}
