"""A Yealink T4x phone's provisioning, as far as the files go: at boot it asks the provisioning server for
``<mac>.boot`` and ``y000000000000.boot`` (404: fine), then the model's common file ``y0000000000NN.cfg`` and
its own ``<mac>.cfg``, the later file winning. The server is DHCP's option 66/160 while
``static.auto_provision.dhcp_option.enable`` is 1 (the factory default), else the stored
``static.auto_provision.server.url``. ``static.*`` values are kept across boots (flash)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# fetch(URL of the file, User-Agent) -> the file's bytes, or None (missing)
Fetch = Callable[[str, str], bytes | None]


def parse(body: bytes) -> dict[str, str]:
    lines = body.decode("utf-8").splitlines()
    assert lines and lines[0] == "#!version:1.0.0.1", "a Yealink config file starts with its version line"
    values = {}
    for line in lines[1:]:
        if line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


@dataclass
class Phone:
    mac: str
    common: str  # y0000000000NN.cfg
    user_agent: str
    dhcp_url: str  # what DHCP option 66 hands out
    fetch: Fetch
    stored: dict[str, str] = field(default_factory=lambda: {"static.auto_provision.dhcp_option.enable": "1",
                                                             "static.auto_provision.pnp_enable": "1"})
    params: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        if self.stored.get("static.auto_provision.dhcp_option.enable") == "1" and self.dhcp_url:
            return self.dhcp_url
        return self.stored["static.auto_provision.server.url"]

    def boot(self) -> bool:
        """One boot's provisioning; True if the provisioning server changed (the next boot goes elsewhere)."""
        before = self.server
        base = before.rstrip("/") + "/"
        self.params = {}
        for name in (f"{self.mac}.boot", "y000000000000.boot", self.common, f"{self.mac}.cfg"):
            self.fetched.append(base + name)
            body = self.fetch(base + name, self.user_agent)
            if body is not None and name.endswith(".cfg"):
                self.params.update(parse(body))
        self.stored.update({k: v for k, v in self.params.items() if k.startswith("static.")})
        return self.server != before
