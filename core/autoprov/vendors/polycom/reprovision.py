"""Moving Polycom phones off an old provisioning server: a device-settings file the old shared config
(``000000000000.cfg``) includes first. The phone stores the ``device.*`` values whose ``.set`` is 1 (with
``device.set="1"``) and reboots onto the new server.

Values by firmware generation (the User-Agent's ``-UA/<version>``): SIP 3.x numbers serverType and
bootSrvUseOpt, UC Software 4+ names them; sources in generations.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlsplit

from autoprov.vendors.polycom.generations import GENERATIONS, Generation, generation_of
from autoprov.xmlsafe import xml_attr

MOVE_FILE = "autoprov-move.cfg"
MASTER = "000000000000.cfg"


def generation(firmware: str | None) -> Generation:
    found = generation_of(firmware)
    if found is None:
        raise ValueError("give the firmware version the phones run (their User-Agent's -UA/<version>, e.g. "
                         "3.3.2.0413 or 4.0.15): SIP 3.x and UC Software spell these settings differently")
    return GENERATIONS[found]


def device_settings(target: str, firmware: str | None) -> bytes:
    url = urlsplit(target)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"--to must be an http:// or https:// URL, got {target!r}")
    gen = generation(firmware)
    server_name = url.netloc.rpartition("@")[2] + url.path.rstrip("/")
    settings = [("device.set", "1"), ("device.prov.serverType", gen.server_types[url.scheme]),
                ("device.prov.serverName", server_name), ("device.dhcp.bootSrvUseOpt", gen.static_boot_server)]
    if url.username:
        settings += [("device.prov.user", unquote(url.username)), ("device.prov.password", unquote(url.password or ""))]
    attrs = []
    for name, value in settings:
        if name != "device.set":
            attrs.append(f'{name}.set="1"')
        attrs.append(f'{name}="{xml_attr(value)}"')
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<device {" ".join(attrs)}/>\n'.encode()


def master_including(old_master: bytes | None) -> bytes:
    """The old server's shared config with the device settings first in CONFIG_FILES (else a minimal one)."""
    if old_master is None:
        return ('<?xml version="1.0" standalone="yes"?>\n'
                f'<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="{MOVE_FILE}" MISC_FILES="" '
                'LOG_FILE_DIRECTORY="" OVERRIDES_DIRECTORY="" CONTACTS_DIRECTORY="" LICENSE_DIRECTORY=""/>\n'
                ).encode()
    try:
        root = ET.fromstring(old_master)
    except ET.ParseError as exc:
        raise ValueError(f"the old {MASTER} is not well-formed XML: {exc}") from None
    app = root if root.tag == "APPLICATION" else root.find(".//APPLICATION")
    if app is None:
        raise ValueError(f"the old {MASTER} has no APPLICATION element")
    files = [f.strip() for f in app.get("CONFIG_FILES", "").split(",") if f.strip() and f.strip() != MOVE_FILE]
    app.set("CONFIG_FILES", ", ".join([MOVE_FILE, *files]))
    return ('<?xml version="1.0" standalone="yes"?>\n' + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")


def reprovision_files(target: str, firmware: str | None, old_master: bytes | None) -> dict[str, bytes]:
    return {MOVE_FILE: device_settings(target, firmware), MASTER: master_including(old_master)}
