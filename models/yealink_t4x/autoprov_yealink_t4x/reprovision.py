"""Moving Yealink phones off an old provisioning server: the model's common file (``y0000000000NN.cfg``),
which every phone of the model reads from the old server, points its provisioning at this one.

What it sets (the ``static.auto_provision.*`` names the common files here and public redirect files use, see
docs/vendors/yealink.md): ``server.url`` the new server, ``server.username``/``password`` its login (blank
clears a login the old server set), ``dhcp_option.enable = 0`` so DHCP option 66/160, still naming the old
server, no longer overrides the stored URL, and ``pnp_enable = 0`` (SIP PnP multicast discovery) for the same
reason. The phone keeps these; at its next boot or scheduled check it provisions from the new server.
An old common file, if given, is kept line for line except the keys set here, which follow it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from autoprov_yealink_t4x.cfgvalue import problem

HEADER = "#!version:1.0.0.1"
PREFIX = "static.auto_provision."


def settings(target: str) -> list[tuple[str, str]]:
    url = urlsplit(target)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"--to must be an http:// or https:// URL, got {target!r}")
    bare = urlunsplit((url.scheme, url.netloc.rpartition("@")[2], url.path.rstrip("/") + "/", "", ""))
    values = [("server.url", bare), ("server.username", unquote(url.username or "")),
              ("server.password", unquote(url.password or "")), ("dhcp_option.enable", "0"), ("pnp_enable", "0")]
    for key, value in values:
        why = problem(value) if value else None
        if why is not None:
            raise ValueError(f"--to: the {key.replace('server.', '')} {why}; a Yealink config cannot carry it")
    return [(PREFIX + key, value) for key, value in values]


def common_file(target: str, old: bytes | None) -> bytes:
    """The new common file: the old one's lines (if any) without the keys set here, then those keys."""
    ours = settings(target)
    kept: list[str] = []
    if old is not None:
        try:
            text = old.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the old common file is not UTF-8 text") from None
        names = {key for key, _ in ours}
        for line in text.splitlines():
            key = line.split("=", 1)[0].strip()
            if line.strip() != HEADER and key not in names:
                kept.append(line)
    lines = [HEADER, *kept, "# autoprov reprovision: provision from the new server from now on",
             *(f"{key} = {value}" for key, value in ours)]
    return ("\n".join(lines) + "\n").encode("utf-8")
