"""A Polycom phone's provisioning boot, as far as the files go (SIP 3.x and UC Software): the master config
(``<mac>.cfg``, else ``000000000000.cfg``), the CONFIG_FILES it names in order (the first file to set a
parameter wins), and the ``device.*`` settings it stores in flash when ``device.set`` and the setting's own
``.set`` are 1; a stored setting that changed makes it reboot.

Each generation accepts only its own spelling (SIP 3.x: the menus' numbers; UC Software: names); a value it
does not parse is ignored and kept in ``rejected``, as the phone logs it and keeps its old value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

SIP3 = {"device.prov.serverType": {"0": "ftp", "1": "tftp", "2": "http", "3": "https"},
        "device.dhcp.bootSrvUseOpt": {"0": "option66", "1": "custom", "2": "static", "3": "custom+option66"}}
UC = {"device.prov.serverType": {"FTP": "ftp", "TFTP": "tftp", "HTTP": "http", "HTTPS": "https", "FTPS": "ftps"},
      "device.dhcp.bootSrvUseOpt": {"Default": "option66", "Custom": "custom", "Static": "static",
                                    "CustomAndDefault": "custom+option66"}}
FREE_TEXT = ("device.prov.serverName", "device.prov.user", "device.prov.password")

# fetch(scheme, server name (host[:port][/path]), file path, User-Agent) -> the file's bytes, or None (missing)
Fetch = Callable[[str, str, str, str], bytes | None]


@dataclass
class Phone:
    mac: str
    firmware: str
    user_agent: str
    fetch: Fetch
    # What the flash holds (generation-neutral words for the enumerations).
    stored: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # the configuration of the last boot
    fetched: list[str] = field(default_factory=list)

    @property
    def spelling(self) -> dict[str, dict[str, str]]:
        return SIP3 if int(self.firmware.split(".")[0]) < 4 else UC

    def _get(self, path: str) -> bytes | None:
        scheme, server = self.stored["device.prov.serverType"], self.stored["device.prov.serverName"]
        self.fetched.append(f"{scheme}://{server}/{path}")
        return self.fetch(scheme, server, path, self.user_agent)

    def boot(self) -> bool:
        """One boot; True if it stored new device settings and so reboots."""
        master = self._get(f"{self.mac}.cfg") or self._get("000000000000.cfg")
        assert master is not None, f"no master config at {self.fetched[-1]}"
        root = ET.fromstring(master)
        app = root if root.tag == "APPLICATION" else root.find(".//APPLICATION")
        assert app is not None
        self.params = {}
        for name in (n.strip() for n in app.get("CONFIG_FILES", "").split(",") if n.strip()):
            body = self._get(name.replace("[PHONE_MAC_ADDRESS]", self.mac))
            assert body is not None, f"missing {self.fetched[-1]}"
            for element in ET.fromstring(body).iter():
                for key, value in element.attrib.items():
                    self.params.setdefault(key, value)
        return self._store_device_settings()

    def _store_device_settings(self) -> bool:
        if self.params.get("device.set") != "1":
            return False
        changed = False
        for key, value in self.params.items():
            if not key.startswith("device.") or key.endswith(".set") or self.params.get(f"{key}.set") != "1":
                continue
            if key in FREE_TEXT:
                word = value
            elif key in self.spelling and value in self.spelling[key]:
                word = self.spelling[key][value]
            else:
                self.rejected.append((key, value))
                continue
            if self.stored.get(key) != word:
                self.stored[key] = word
                changed = True
        return changed
