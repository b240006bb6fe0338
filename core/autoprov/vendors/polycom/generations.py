"""Polycom firmware generations: how each spells the ``device.*`` settings and which polling it can do.

The User-Agent's ``-UA/<version>`` says which generation a phone runs: before 4 the SIP application (SIP 2.x,
3.x), from 4 on UC Software. Sources:
- device.prov.serverType and device.dhcp.bootSrvUseOpt on SIP 3.x: the numbers of the phone's own Server and
  DHCP menus, serverType 0 FTP, 1 TFTP, 2 HTTP, 3 HTTPS; Boot Server 0 Option 66, 1 Custom, 2 Static,
  3 Custom+Option 66 (SoundPoint IP / SoundStation IP Administrator's Guide, SIP 2.2 and 3.1, "DHCP Menu" and
  "Server Menu"). The seed's device settings moved real IP 330/331/4000 phones on SIP 3.x with
  serverType "2" and bootSrvUseOpt "2".
- The same on UC Software 4+: the names of the <device/> parameters in the UC Software Administrator's Guide
  (serverType FTP, TFTP, HTTP, HTTPS; bootSrvUseOpt Default, Custom, Static, CustomAndDefault).
- Polling: ``prov.polling.mode`` abs, rel or random, ``prov.polling.period`` "integer > 3600" in rel mode,
  ``prov.polling.timeRandomEnd`` the end of the random window (UC Software 5.8.1 Administrator's Guide,
  "Provisional Polling of Polycom Phones"; RealPresence Trio guide, site.cfg prov.polling.*). Random needs UC
  Software 4+ (/work/shared/reference/polycom.md, the project's reference facts): SIP 3.x is not given it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIP3, UC = "sip3", "uc"
_MAJOR = re.compile(r"(\d+)\.")
POLYCOM_MIN_PERIOD = 3600  # rel mode: the period must be greater than this


@dataclass(frozen=True)
class Generation:
    name: str
    label: str  # for messages: "SIP 3.x"
    server_types: dict[str, str]  # URL scheme -> device.prov.serverType
    static_boot_server: str  # device.dhcp.bootSrvUseOpt: use the stored server, not DHCP's option 66
    polling_modes: tuple[str, ...]


GENERATIONS = {
    SIP3: Generation(SIP3, "SIP 3.x (before UC Software 4)", {"http": "2", "https": "3"}, "2", ("abs", "rel")),
    UC: Generation(UC, "UC Software 4+", {"http": "HTTP", "https": "HTTPS"}, "Static", ("abs", "rel", "random")),
}


def generation_of(firmware: str | None) -> str | None:
    """The generation a version belongs to; None if the version says nothing (no leading number)."""
    m = _MAJOR.match(firmware or "")
    if m is None:
        return None
    return SIP3 if int(m.group(1)) < 4 else UC
