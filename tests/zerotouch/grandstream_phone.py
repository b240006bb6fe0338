"""A Grandstream GXP phone's provisioning, as far as the files go: from its config server it asks for
``cfg<mac>``, ``cfg<mac>.xml`` and, if that failed, ``cfg<model>.xml`` then ``cfg.xml`` (Grandstream's
provisioning guide); the first XML found is applied. The config server is DHCP's option 66 while P145
("allow DHCP option 66 to override server") is 1, the factory default, else P212 (1 HTTP, 2 HTTPS, 0 TFTP)
and P237. P-values persist; P145 takes effect at the next boot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

Fetch = Callable[[str, str], bytes | None]  # (URL, User-Agent) -> bytes or None
SCHEMES = {"0": "tftp", "1": "http", "2": "https"}


@dataclass
class Phone:
    mac: str
    model: str  # "gxp2160"
    user_agent: str
    dhcp_url: str
    fetch: Fetch
    stored: dict[str, str] = field(default_factory=lambda: {"P145": "1", "P212": "1", "P237": ""})
    fetched: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        if self.stored["P145"] == "1" and self.dhcp_url:
            return self.dhcp_url.rstrip("/")
        return f"{SCHEMES[self.stored['P212']]}://{self.stored['P237']}"

    def boot(self) -> bool:
        """One boot; True if the config server changed (it provisions from the new one after a reboot)."""
        before = self.server
        applied = None
        for name in (f"cfg{self.mac}", f"cfg{self.mac}.xml", f"cfg{self.model}.xml", "cfg.xml"):
            self.fetched.append(f"{before}/{name}")
            body = self.fetch(f"{before}/{name}", self.user_agent)
            if body is not None and name.endswith(".xml"):
                applied = ET.fromstring(body)
                break
        assert applied is not None, f"no config at {before}"
        mac = applied.findtext("mac")
        assert mac in (None, self.mac), "a config for another phone"
        for element in applied.find("config"):
            self.stored[element.tag] = element.text or ""
        return self.server != before
