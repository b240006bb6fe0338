"""autoprov plugin for Grandstream GXP phones (GXP21xx and GXP16xx): XML P-value provisioning.

One package, several models: the hook returns one model per phone model, each built for the Site asking.
"""

from __future__ import annotations

from typing import Any

from autoprov import hookimpl
from autoprov.config import Settings
from autoprov.devices import DeviceModel
from autoprov_grandstream_gxp.model import GrandstreamModel

# (model name, label, User-Agent token, SIP accounts): see docs/vendors/grandstream.md for the sources.
MODELS = (
    ("grandstream_gxp1625", "Grandstream GXP1625", "GXP1625", 2),
    ("grandstream_gxp2135", "Grandstream GXP2135", "GXP2135", 4),
    ("grandstream_gxp2160", "Grandstream GXP2160", "GXP2160", 6),
    ("grandstream_gxp2170", "Grandstream GXP2170", "GXP2170", 6),
)


class GrandstreamPlugin:
    @hookimpl
    def autoprov_device_models(self, settings: Settings, plugin_settings: Any) -> list[DeviceModel]:
        return [GrandstreamModel(settings, plugin_settings, name, label, token, lines)
                for name, label, token, lines in MODELS]


plugin = GrandstreamPlugin()
