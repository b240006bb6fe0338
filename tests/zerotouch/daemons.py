"""The real DHCP servers from Debian's packages (isc-dhcp-server, kea-dhcp4-server, dnsmasq-base), run on
private files only; scripts/install-zerotouch-packages installs them. Missing in CI is a failure, not a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

BINARIES = {"isc": "dhcpd", "kea": "kea-dhcp4", "dnsmasq": "dnsmasq"}


def binary(server: str) -> str:
    name = BINARIES[server]
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        message = f"{name} is not installed (bash scripts/install-zerotouch-packages)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def check_config(server: str, snippet: str, where: Path) -> subprocess.CompletedProcess:
    """Load ``snippet`` into ``server`` the way an admin would (included from a minimal main configuration)
    and run the daemon's own configuration test; returns the finished process (returncode 0: accepted)."""
    where.mkdir(parents=True, exist_ok=True)
    part = where / f"autoprov-{server}.conf"
    part.write_text(snippet, encoding="utf-8")
    if server == "isc":
        main = where / "dhcpd.conf"
        main.write_text(f'include "{part}";\n'
                        "subnet 10.77.0.0 netmask 255.255.255.0 { range 10.77.0.100 10.77.0.200; }\n")
        leases = where / "dhcpd.leases"
        leases.touch()
        argv = [binary(server), "-t", "-cf", str(main), "-lf", str(leases)]
    elif server == "kea":
        main = where / "kea-dhcp4.conf"
        main.write_text(f'{{"Dhcp4": {{\n<?include "{part}" ?>,\n"subnet4": []\n}}}}\n')
        argv = [binary(server), "-t", str(main)]
    else:
        argv = [binary(server), "--test", "-C", str(part)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)
