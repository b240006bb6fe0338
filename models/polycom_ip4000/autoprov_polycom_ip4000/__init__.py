"""autoprov plugin for the Polycom SoundStation IP 4000 (one line, conference phone).

Its last application is SIP 3.1.x, older than the ``device.*`` parameters the other models use to move
to their own path (not confirmed which release added them). So its initial config also lists its phone
and site configs under its path: a phone that ignores the device settings is configured all the same.
"""

from autoprov.devices import ModelPlugin
from autoprov.vendors.polycom import SITE, PolycomModel
from autoprov.vendors.polycom.generations import SIP3


class SoundStationIP4000(PolycomModel):
    def initial_config_files(self) -> list[str]:
        base = self.base_path.lstrip("/")
        return super().initial_config_files() + [f"{base}[PHONE_MAC_ADDRESS]-phone.cfg", base + SITE]


plugin = ModelPlugin(
    SoundStationIP4000,
    name="polycom_ip4000",
    label="Polycom SoundStation IP 4000",
    user_agent_tokens=("SSIP_4000",),
    line_count=1,
    part_number="2201-06642-001",
    package=__name__,
    generations=(SIP3,),
)
