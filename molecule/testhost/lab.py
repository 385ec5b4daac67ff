"""Labs: private networks of test hosts, each a network namespace with a bridge and a registry."""

import ipaddress
import json
import re
import shutil
import time

import netns
from common import TesthostError, check_machine, locked, state_dir
from registry import Registry

NAME = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
BRIDGE = "br0"


class Lab:
    """One lab's settings and files under the state directory."""

    def __init__(self, name: str) -> None:
        if not NAME.match(name):
            raise TesthostError(
                f"bad lab name {name!r}: use lower-case letters, digits and '-', "
                "starting with a letter, at most 21 characters"
            )
        self.name = name
        self.netns = f"senex-lab-{name}"
        self.dir = state_dir() / ".labs" / name
        self.config = self.dir / "lab.json"

    def subnet(self) -> ipaddress.IPv4Network | None:
        if not self.config.is_file():
            return None
        return ipaddress.IPv4Network(json.loads(self.config.read_text())["subnet"])

    def gateway(self) -> str:
        return str(next(self.subnet().hosts()))

    def registry(self) -> Registry:
        return Registry(self.dir, self.netns, self.gateway())

    def info(self) -> dict:
        subnet = self.subnet()
        return {
            "name": self.name,
            "netns": self.netns,
            "subnet": str(subnet),
            "gateway": self.gateway(),
            "prefix_length": subnet.prefixlen,
        } | self.registry().info()


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        subnet = ipaddress.IPv4Network(text)
    except ValueError as error:
        raise TesthostError(f"bad --subnet {text!r}: {error} (e.g. 10.213.3.0/24)") from None
    if not subnet.is_private or subnet.overlaps(ipaddress.IPv4Network("127.0.0.0/8")):
        raise TesthostError(f"--subnet {text} is not a private network: use e.g. 10.213.3.0/24")
    if subnet.num_addresses < 8:
        raise TesthostError(f"--subnet {text} is too small for a lab: use a /29 or larger")
    return subnet


def up(name: str, subnet_text: str) -> dict:
    """Create lab NAME on SUBNET (namespace, bridge at the first address, registry); idempotent."""
    check_machine(lab=True)
    lab = Lab(name)
    subnet = parse_subnet(subnet_text)
    with locked(f"lab-{name}", state_dir() / ".locks"):
        existing = lab.subnet()
        if existing and existing != subnet:
            raise TesthostError(
                f"lab {name} exists with subnet {existing}, not {subnet}: "
                f"remove it first (testhost.py lab-down {name}) or ask for {existing}"
            )
        changed = existing is None or not netns.has_link(lab.netns, BRIDGE)
        if existing is None:
            lab.dir.mkdir(parents=True, exist_ok=True)
            lab.config.write_text(json.dumps({"subnet": str(subnet)}) + "\n")
        try:
            _make_network(lab)
            changed |= lab.registry().start()
        except BaseException:
            if existing is None:
                _remove(lab)
            raise
        return lab.info() | {"changed": changed}


def remove(name: str) -> bool:
    """Stop lab NAME's registry, remove its namespace and files; True if it existed.

    Its hosts must be gone first: hosts.lab_down destroys them and then calls this."""
    lab = Lab(name)
    existed = lab.dir.exists() or netns.exists(lab.netns)
    if lab.subnet():
        lab.registry().stop()
    _remove(lab)
    return existed


def host_address(name: str, address_text: str) -> tuple[ipaddress.IPv4Address, Lab]:
    """Check that ADDRESS is a free host address of running lab NAME."""
    lab = Lab(name)
    subnet = lab.subnet()
    if subnet is None or not netns.has_link(lab.netns, BRIDGE):
        raise TesthostError(
            f"no lab {name}: bring it up first (testhost.py lab-up {name} --subnet CIDR)"
        )
    try:
        address = ipaddress.IPv4Address(address_text)
    except ValueError as error:
        raise TesthostError(f"bad --address {address_text!r}: {error}") from None
    if address not in list(subnet.hosts())[1:]:
        raise TesthostError(
            f"--address {address} is not a host address of lab {name} ({subnet}, gateway "
            f"{lab.gateway()}): choose one from {list(subnet.hosts())[1]} up"
        )
    return address, lab


def _make_network(lab: Lab) -> None:
    netns.add(lab.netns)
    if not netns.has_link(lab.netns, BRIDGE):
        netns.ip(lab.netns, "link", "add", BRIDGE, "type", "bridge")
    address = f"{lab.gateway()}/{lab.subnet().prefixlen}"
    if f" {address} " not in netns.ip(lab.netns, "-o", "addr", "show", "dev", BRIDGE):
        netns.ip(lab.netns, "addr", "add", address, "dev", BRIDGE)
    netns.ip(lab.netns, "link", "set", BRIDGE, "up")


def _remove(lab: Lab) -> None:
    # What was just stopped (a host's forwarder, the registry) may take a moment to leave.
    deadline = time.monotonic() + 10
    while (leftovers := netns.pids(lab.netns)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if leftovers:
        raise TesthostError(
            f"processes {leftovers} still run in {lab.netns}; stop them and run lab-down again"
        )
    netns.delete(lab.netns)
    if lab.dir.exists():
        shutil.rmtree(lab.dir)
