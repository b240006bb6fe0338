"""A test PKI built with the openssl CLI: roots, issuing CAs and phones' device certificates, as vendors
ship them (a chain under a device root; the CN a phone's MAC, as on Polycom's factory certificates)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

DEVICE = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class Pki:
    """Certificates and keys in one directory: ``crt(name)`` and ``key(name)``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def crt(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    def root(self, name: str, cn: str) -> None:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.key(name), "-out", self.crt(name), "-days", "2", "-subj", f"/CN={cn}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name: str, subject: str, ca: str, extensions: str) -> None:
        csr, ext = self.dir / f"{name}.csr", self.dir / f"{name}.ext"
        ext.write_text(extensions)
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.key(name), "-out", csr, "-subj", subject)
        openssl("x509", "-req", "-in", csr, "-CA", self.crt(ca), "-CAkey", self.key(ca), "-CAcreateserial",
                "-days", "2", "-out", self.crt(name), "-extfile", ext)

    def device(self, name: str, cn: str, ca: str) -> tuple[str, str]:
        """A device certificate and key, as ``requests`` takes them (``cert=``)."""
        self.issue(name, f"/CN={cn}/O=Polycom Inc.", ca, DEVICE)
        return str(self.crt(name)), str(self.key(name))

    def expired(self, name: str, cn: str, ca: str) -> tuple[str, str]:
        """A device certificate that expired in 2020 (``openssl ca``: ``x509 -req`` only dates from now)."""
        work = self.dir / f"{name}-ca"
        work.mkdir()
        (work / "index.txt").write_text("")
        (work / "serial").write_text("1000\n")
        (work / "ext").write_text(DEVICE)
        (work / "ca.cnf").write_text(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {work}/index.txt\n"
                                     f"new_certs_dir = {work}\nserial = {work}/serial\ndefault_md = sha256\n"
                                     "policy = p\n[p]\ncommonName = supplied\norganizationName = optional\n")
        csr = work / "device.csr"
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", self.key(name), "-out", csr, "-subj", f"/CN={cn}/O=Polycom Inc.")
        openssl("ca", "-batch", "-notext", "-config", work / "ca.cnf", "-cert", self.crt(ca), "-keyfile", self.key(ca),
                "-in", csr, "-out", self.crt(name), "-extfile", work / "ext",
                "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")
        return str(self.crt(name)), str(self.key(name))


def device_cas(prefix: str) -> Pki:
    """A fresh directory (not pytest's tmp_path, private to root: Apache's user reads it) holding a device root
    CA and an issuing CA under it (their bundle: ``device-cas.pem``), and a root no one trusts (``rogue``)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    pki = Pki(directory)
    pki.root("root", "Test Device Root CA")
    pki.issue("issuing", "/CN=Test Device Issuing CA", "root",
              "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    (directory / "device-cas.pem").write_bytes(pki.crt("root").read_bytes() + pki.crt("issuing").read_bytes())
    pki.root("rogue", "Someone Else's CA")
    return pki
