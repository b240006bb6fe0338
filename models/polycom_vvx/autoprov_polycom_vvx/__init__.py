"""autoprov plugin for the Polycom VVX 300, 400, 500 and 600 families on UC Software 5.x/6.x.

They boot as the SoundPoint IP models do (the shared Polycom base: 000000000000.cfg, device.cfg, the
part-numbered sip.ld, <mac>-phone.cfg, site.cfg, logs, overrides, contacts); what differs is told here:
their User-Agent tokens (``FileTransport PolycomVVX-VVX_410-UA/5.9.0.9373 Type/Application``), line counts,
part numbers, and UC Software's names for the provisioning protocol. Sources: docs/vendors/polycom-vvx.md.
"""

from __future__ import annotations

from typing import Any

from autoprov import hookimpl
from autoprov.config import Settings
from autoprov.devices import DeviceModel
from autoprov.vendors.polycom import PolycomModel
from autoprov.vendors.polycom.generations import UC

# (model name, label, User-Agent token, lines, part number of its sip.ld)
MODELS = (
    ("polycom_vvx300", "Polycom VVX 300", "VVX_300", 6, "3111-46135-002"),
    ("polycom_vvx301", "Polycom VVX 301", "VVX_301", 6, "3111-48300-001"),
    ("polycom_vvx310", "Polycom VVX 310", "VVX_310", 6, "3111-46161-001"),
    ("polycom_vvx311", "Polycom VVX 311", "VVX_311", 6, "3111-48350-001"),
    ("polycom_vvx400", "Polycom VVX 400", "VVX_400", 12, "3111-46157-002"),
    ("polycom_vvx401", "Polycom VVX 401", "VVX_401", 12, "3111-48400-001"),
    ("polycom_vvx410", "Polycom VVX 410", "VVX_410", 12, "3111-46162-001"),
    ("polycom_vvx411", "Polycom VVX 411", "VVX_411", 12, "3111-48450-001"),
    ("polycom_vvx500", "Polycom VVX 500", "VVX_500", 12, "3111-44500-001"),
    ("polycom_vvx501", "Polycom VVX 501", "VVX_501", 12, "3111-48500-001"),
    ("polycom_vvx600", "Polycom VVX 600", "VVX_600", 16, "3111-44600-001"),
    ("polycom_vvx601", "Polycom VVX 601", "VVX_601", 16, "3111-48600-001"),
)


class PolycomVVXPlugin:
    @hookimpl
    def autoprov_device_models(self, settings: Settings, plugin_settings: Any) -> list[DeviceModel]:
        # UC Software only: its device settings and polling (generations.py), whatever the User-Agent says.
        return [PolycomModel(settings, plugin_settings, name=name, label=label, user_agent_tokens=(token,),
                             line_count=lines, part_number=part, package=__name__, generations=(UC,))
                for name, label, token, lines, part in MODELS]


plugin = PolycomVVXPlugin()
