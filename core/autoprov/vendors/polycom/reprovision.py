"""Moving Polycom phones off an old provisioning server: a device-settings file the old shared config
(``000000000000.cfg``) includes first. The phone stores the ``device.*`` values whose ``.set`` is 1 (with
``device.set="1"``) and reboots onto the new server.

Values by firmware generation (the User-Agent's ``-UA/<version>``):
- SIP 3.x (before UC Software 4): the numbers of the phone's own Server and DHCP menus: serverType 0 FTP,
  1 TFTP, 2 HTTP, 3 HTTPS, and Boot Server 0 Option 66, 1 Custom, 2 Static, 3 Custom+Option 66 (SoundPoint IP /
  SoundStation IP Administrator's Guide, SIP 2.2 and 3.1, "DHCP Menu" and "Server Menu"); the seed's device
  settings moved real IP 330/331/4000 phones on SIP 3.x with serverType "2" and bootSrvUseOpt "2".
- UC Software 4 and later: the names of the UC Software Administrator's Guide's <device/> parameters:
  serverType FTP, TFTP, HTTP, HTTPS and bootSrvUseOpt Default, Custom, Static, CustomAndDefault.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlsplit

from autoprov.xmlsafe import xml_attr

MOVE_FILE = "autoprov-move.cfg"
MASTER = "000000000000.cfg"
_MAJOR = re.compile(r"(\d+)\.")
SIP3 = {"http": "2", "https": "3", "static": "2"}
UC = {"http": "HTTP", "https": "HTTPS", "static": "Static"}


def generation(firmware: str | None) -> dict[str, str]:
    if not firmware or not (m := _MAJOR.match(firmware)):
        raise ValueError("give the firmware version the phones run (their User-Agent's -UA/<version>, e.g. "
                         "3.3.2.0413 or 4.0.15): SIP 3.x and UC Software spell these settings differently")
    return SIP3 if int(m.group(1)) < 4 else UC


def device_settings(target: str, firmware: str | None) -> bytes:
    url = urlsplit(target)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"--to must be an http:// or https:// URL, got {target!r}")
    values = generation(firmware)
    server_name = url.netloc.rpartition("@")[2] + url.path.rstrip("/")
    settings = [("device.set", "1"), ("device.prov.serverType", values[url.scheme]),
                ("device.prov.serverName", server_name), ("device.dhcp.bootSrvUseOpt", values["static"])]
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
