"""Moving Grandstream phones off an old provisioning server: ``cfg.xml``, the file a phone reads when the old
server has no ``cfg<mac>.xml`` for it, points its config server at this one.

P-values (Grandstream's annotated configuration templates; docs/vendors/grandstream.md): P212 config upgrade
via (1 HTTP, 2 HTTPS), P237 config server path (``host[:port][/path]``, no scheme), P1360/P1361 its HTTP
login, P234/P235 config file prefix/postfix (cleared: this server serves ``cfg<mac>.xml`` as named), P145
"Allow DHCP Option 43, 66 or 160 to override server" 0, so DHCP, still naming the old server, no longer wins
(the template notes "reboot required"). An old ``cfg.xml``, if given, keeps its other P-values. Where the old
server also has a ``cfg<mac>.xml`` per phone, that file is read instead: add these P-values there too.
"""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlsplit

from autoprov_grandstream_gxp import pvalues

PREFIX, POSTFIX, DHCP_OVERRIDE = 234, 235, 145


def settings(target: str) -> pvalues.Params:
    url = urlsplit(target)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"--to must be an http:// or https:// URL, got {target!r}")
    params = [(pvalues.CONFIG_VIA, "2" if url.scheme == "https" else "1"),
              (pvalues.CONFIG_SERVER_PATH, url.netloc.rpartition("@")[2] + url.path.rstrip("/")),
              (pvalues.CONFIG_USER, unquote(url.username or "")),
              (pvalues.CONFIG_PASSWORD, unquote(url.password or "")),
              (PREFIX, ""), (POSTFIX, ""), (DHCP_OVERRIDE, "0")]
    for number, value in params:
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise ValueError(f"--to: P{number} would hold a control character, which XML cannot carry")
    return params


def generic_config(target: str, old: bytes | None) -> bytes:
    ours = settings(target)
    root = ET.Element("gs_provision", version="1")
    config = ET.SubElement(root, "config", version="1")
    if old is not None:
        try:
            parsed = ET.fromstring(old)
        except ET.ParseError as exc:
            raise ValueError(f"the old cfg.xml is not well-formed XML: {exc}") from None
        found = parsed.find("config")
        if parsed.tag != "gs_provision" or found is None:
            raise ValueError("the old cfg.xml is not a gs_provision document with a <config>")
        if parsed.find("mac") is not None:
            raise ValueError("the old cfg.xml names a MAC: it is one phone's file, not the generic cfg.xml")
        root, config = parsed, found
    for number, value in ours:
        element = config.find(f"P{number}")
        if element is None:
            element = ET.SubElement(config, f"P{number}")
        element.text = value
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n").encode()
