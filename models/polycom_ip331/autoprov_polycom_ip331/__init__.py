"""autoprov plugin for the Polycom SoundPoint IP 331 (two lines)."""

from autoprov.devices import ModelPlugin
from autoprov.vendors.polycom import PolycomModel

plugin = ModelPlugin(
    PolycomModel,
    name="polycom_ip331",
    label="Polycom SoundPoint IP 331",
    user_agent_tokens=("SPIP_331",),
    line_count=2,
    part_number="2345-12365-001",
    package=__name__,
)
