"""The real DHCP servers, run with ``autoprov dhcp``'s snippet in network namespaces the test creates (a veth
pair between a server namespace and a client namespace: nothing reaches the machine's own networks), offer the
provisioning URL as option 66 and 160 to a Polycom MAC and not to another vendor's MAC.

The client (tests/zerotouch/dhcp_client.py) sends a real DHCPDISCOVER that does not ask for 66 or 160, so the
snippets' "send it anyway" is tested too. Where namespaces cannot be created (no root, a locked-down
container), the tests say so and skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import cli as autoprov
from tests.zerotouch.daemons import binary
from tests.zerotouch.test_dhcp import write_toml

CLIENT = Path(__file__).with_name("dhcp_client.py")
POLYCOM_MAC = "00:04:f2:5e:ed:01"
OTHER_MAC = "52:54:00:5e:ed:02"  # a QEMU virtual NIC: no installed model declares 52:54:00
SERVER_IP = "10.77.0.1"


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


@dataclass
class Link:
    server_ns: str
    client_ns: str
    server_if: str
    client_if: str


@pytest.fixture
def link() -> Iterator[Link]:
    tag = uuid.uuid4().hex[:8]
    link = Link(f"autoprov-s-{tag}", f"autoprov-c-{tag}", f"zts{tag}", f"ztc{tag}")
    made = ip("netns", "add", link.server_ns)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here ({made.stderr.strip()}): the DHCP exchange is not tested")
    try:
        assert ip("netns", "add", link.client_ns).returncode == 0
        for step in (
            ("link", "add", link.server_if, "netns", link.server_ns, "type", "veth", "peer", "name", link.client_if,
             "netns", link.client_ns),
            ("-n", link.server_ns, "addr", "add", f"{SERVER_IP}/24", "dev", link.server_if),
            ("-n", link.server_ns, "link", "set", link.server_if, "up"),
            ("-n", link.client_ns, "link", "set", link.client_if, "up"),
        ):
            done = ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield link
    finally:
        for ns in (link.server_ns, link.client_ns):  # deleting a namespace deletes its end of the veth pair
            ip("netns", "del", ns)


def server_command(server: str, snippet: Path, where: Path, iface: str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if server == "dnsmasq":
        return [binary(server), "--no-daemon", "--port=0", f"--conf-file={snippet}", f"--interface={iface}",
                "--bind-interfaces", "--dhcp-range=10.77.0.100,10.77.0.200,1h", f"--dhcp-leasefile={where}/leases",
                f"--pid-file={where}/pid", "--user=root", "--log-dhcp"], env
    if server == "isc":
        conf = where / "dhcpd.conf"
        conf.write_text(f'include "{snippet}";\n'
                        "subnet 10.77.0.0 netmask 255.255.255.0 { range 10.77.0.100 10.77.0.200; }\n")
        (where / "leases").touch()
        return [binary(server), "-f", "-d", "-4", "-cf", str(conf), "-lf", f"{where}/leases", "-pf", f"{where}/pid",
                iface], env
    conf = where / "kea-dhcp4.conf"
    conf.write_text(json.dumps({"Dhcp4": {
        "interfaces-config": {"interfaces": [iface]},
        "lease-database": {"type": "memfile", "persist": False},
        "subnet4": [{"id": 1, "subnet": "10.77.0.0/24", "pools": [{"pool": "10.77.0.100 - 10.77.0.200"}]}],
        "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
    }})[:-2] + f',\n<?include "{snippet}" ?>\n}}}}\n')
    env.update(KEA_PIDFILE_DIR=str(where), KEA_LOCKFILE_DIR=str(where))
    return [binary(server), "-c", str(conf)], env


def offer_for(link: Link, mac: str) -> dict[str, str]:
    done = subprocess.run(["ip", "netns", "exec", link.client_ns, sys.executable, str(CLIENT), link.client_if, mac,
                           "20"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"no offer for {mac}: {done.stderr}"
    return json.loads(done.stdout)


def option_text(offer: dict[str, str], code: int) -> str:
    """An option's string; dnsmasq ends option 66 with a NUL, which phones read as the end of a C string."""
    return bytes.fromhex(offer[str(code)]).rstrip(b"\0").decode("ascii")


@pytest.mark.parametrize("server", ["dnsmasq", "isc", "kea"])
def test_only_the_phone_is_offered_the_provisioning_url(server, link, tmp_path):
    binary(server)
    section = '[dhcp]\nuser = "phone"\npassword = "p\\"w d;#"\n'
    config = write_toml(tmp_path, "http://prov.example.test:8080/base", section)
    snippet = tmp_path / f"autoprov-{server}.conf"
    snippet.write_text(autoprov("dhcp", server, config=config).stdout, encoding="utf-8")
    where = tmp_path / "run"
    where.mkdir()
    argv, env = server_command(server, snippet, where, link.server_if)
    log = (where / "daemon.log").open("w")
    daemon = subprocess.Popen(["ip", "netns", "exec", link.server_ns, *argv], stdout=log, stderr=subprocess.STDOUT,
                              env=env)
    try:
        phone = offer_for(link, POLYCOM_MAC)
        other = offer_for(link, OTHER_MAC)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{server} said:\n{(where / 'daemon.log').read_text()[-3000:]}") from None
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
    url = "http://phone:p%22w%20d%3B%23@prov.example.test:8080/base"
    assert option_text(phone, 66) == option_text(phone, 160) == url
    parts = urlsplit(option_text(phone, 160))
    assert (parts.username, unquote(parts.password)) == ("phone", 'p"w d;#')
    assert phone["yiaddr"].startswith("10.77.0.")
    # The other vendor's device is served an address like any client, and no URL.
    assert other["yiaddr"].startswith("10.77.0.") and other["yiaddr"] != phone["yiaddr"]
    assert "66" not in other and "160" not in other
