"""autoprov plugin for the Polycom SoundPoint IP 330 (two lines)."""

from autoprov.devices import ModelPlugin
from autoprov.vendors.polycom import PolycomModel
from autoprov.vendors.polycom.generations import SIP3

plugin = ModelPlugin(
    PolycomModel,
    name="polycom_ip330",
    label="Polycom SoundPoint IP 330",
    user_agent_tokens=("SPIP_330",),
    line_count=2,
    part_number="2345-12200-001",
    package=__name__,
    generations=(SIP3,),  # UC Software 4 does not list the IP 330: its last application is SIP 3.x
)
