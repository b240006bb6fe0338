"""Mutual TLS: a phone's factory device certificate, verified by Apache (mod_ssl), binds it to its own MAC.

Apache verifies the certificate against the vendors' device CAs and hands the result to the WSGI environ
(``SSLOptions +StdEnvVars +ExportCertData``; deploy/apache/autoprov-mtls.conf): ``SSL_CLIENT_VERIFY`` is
``NONE`` (no certificate), ``SUCCESS``, ``GENEROUS`` (presented, not verifiable: ``SSLVerifyClient
optional_no_ca``) or ``FAILED:<reason>``; ``SSL_CLIENT_S_DN_CN`` and ``SSL_CLIENT_CERT`` (PEM) describe it.
Only mod_ssl writes these names: a client's headers reach the environ as ``HTTP_*``. Which MAC a certificate
names is the model's knowledge (:meth:`autoprov.devices.DeviceModel.certificate_mac`).

The rule, for the files it concerns (those holding secrets, and every per-phone file):

- a verified certificate naming MAC X admits X's per-phone files, and only those (another MAC's: 403);
  for a shared file holding secrets it admits a phone in the database;
- a certificate that failed verification is refused (403), wherever the client is;
- no certificate, or a verified one naming no phone (a vendor's generic certificate): the normal access
  policy decides, unless ``[client_certificate] required`` is on (then a file holding secrets is a 403).

Files holding no secret and named for no phone (initial config, firmware) are never refused here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autoprov.mac import InvalidMac, normalize_mac
from autoprov.phones import stored_phone

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from autoprov.phonepath import Served
    from autoprov.site import Site

# What a refusal quotes of a certificate (an unverified one is the client's own words).
_SHOWN = 64
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class ClientCertificate:
    """What Apache says of the certificate a client presented."""

    verified: bool
    subject_cn: str
    pem: str
    failure: str = ""  # why it was not verified: "GENEROUS" or mod_ssl's reason


@dataclass(frozen=True)
class CertificateVerdict:
    """The certificate's say on one request: admitted (the network rule is not asked) or refused (403)."""

    allowed: bool
    reason: str  # one line for the sighting, the log and the client
    mac: str | None = None  # the MAC the certificate names
    status: int = 403
    how: str = "certificate"  # what admitted it, in the access policy's words


def presented(environ: Mapping[str, Any]) -> ClientCertificate | None:
    """The client certificate of this request as the web server verified it; None if there is none."""
    verify = str(environ.get("SSL_CLIENT_VERIFY") or "NONE")
    if verify == "NONE":
        return None
    cn = str(environ.get("SSL_CLIENT_S_DN_CN") or "")
    pem = str(environ.get("SSL_CLIENT_CERT") or "")
    if verify == "SUCCESS":
        return ClientCertificate(True, cn, pem)
    return ClientCertificate(False, cn, pem, verify.removeprefix("FAILED:") or verify)


def mac_in_common_name(subject_cn: str, ouis: Iterable[str]) -> str | None:
    """The MAC a certificate's CN is, if it is exactly one (any case, ``:``/``-`` separators) of one of
    ``ouis``: for models whose vendor's device certificates carry the MAC as their CN."""
    if subject_cn != subject_cn.strip():
        return None  # exactly the MAC (normalize_mac would forgive spaces around it)
    try:
        mac = normalize_mac(subject_cn)
    except InvalidMac:
        return None
    return mac if mac[:6] in tuple(ouis) else None


def certificate_check(site: Site, request: Request, served: Served) -> CertificateVerdict | None:
    """What the client certificate says of this request (see the module docstring); None: it has no say,
    and the normal access policy decides."""
    rule = served.rule
    per_phone = served.mac is not None
    if not (rule.secret or per_phone):
        return None
    cert = presented(request.environ)
    required = site.settings.client_certificate.required
    if cert is not None and not cert.verified:
        return CertificateVerdict(False, f"the client certificate {_shown(cert.subject_cn)} failed verification "
                                         f"({_shown(cert.failure)})")
    mac = _named_mac(site, served, cert) if cert is not None else None
    if mac is None:
        if required and rule.secret:
            what = "the client certificate names no phone" if cert else "no client certificate was presented"
            return CertificateVerdict(False, f"{what}, and [client_certificate] required is on")
        return None
    if per_phone and mac != served.mac:
        return CertificateVerdict(False, f"the client certificate names {mac}, not {served.mac}", mac)
    if not per_phone and stored_phone(site, mac) is None:
        if required:
            return CertificateVerdict(False, f"the client certificate names {mac}, which is not a phone of this site",
                                      mac)
        return None
    return CertificateVerdict(True, f"admitted by the client certificate of {mac}", mac)


def _named_mac(site: Site, served: Served, cert: ClientCertificate) -> str | None:
    """The MAC a verified certificate names: the file's model is asked first, then every installed one (so
    that one vendor's certificate cannot pass for no certificate at another's files)."""
    for model in dict.fromkeys((served.model, *site.models.values())):  # the file's model once, first
        try:
            mac = model.certificate_mac(cert.subject_cn, cert.pem)
            if mac:
                return normalize_mac(mac)  # compared with the file name's, normalised
        except Exception as exc:  # a plugin's bug (InvalidMac included) costs the certificate, not the request
            site.plugins.report_broken(model.name, "certificate_mac", exc)
    return None


def _shown(text: str) -> str:
    text = _PRINTABLE.sub("?", text)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
