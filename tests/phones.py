"""What real phones send: User-Agents of each model, as the Polycom grammar gives them."""

from __future__ import annotations

MODELS = {
    "polycom_ip330": ("SoundPointIP", "SPIP_330"),
    "polycom_ip331": ("SoundPointIP", "SPIP_331"),
    "polycom_ip4000": ("SoundStationIP", "SSIP_4000"),
}


def user_agent(model: str, version: str = "3.3.2.0413", serial: str | None = None, kind: str | None = None) -> str:
    family, token = MODELS[model]
    ua = f"FileTransport Polycom{family}-{token}-UA/{version}"
    if serial:
        ua += f" (SN:{serial})"
    if kind:
        ua += f" Type/{kind}"
    return ua


def headers(model: str, **kwargs: str) -> dict[str, str]:
    return {"User-Agent": user_agent(model, **kwargs)}
