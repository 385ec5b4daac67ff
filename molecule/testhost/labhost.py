"""A lab host's network: its own namespace on the lab's bridge, reached through forwarders.

The controller reaches sshd (and any extra port) at 127.0.0.1:LOCAL; each forwarder listens
there and opens every connection from inside the lab's namespace, so this machine's own
namespace gains nothing but listeners on 127.0.0.1."""

import ipaddress
from pathlib import Path

import daemons
import netns
from lab import BRIDGE, Lab

SSH_PORT = 22


def netns_name(host_name: str) -> str:
    return f"senex-th-{host_name}"


def adapt_root(root: Path, name: str, address: str) -> None:
    """Adapt a copy of the template to a lab host, which has no DNS server and no internet."""
    # sshd on the lab address, reached through a forwarder, instead of loopback.
    conf = root / "etc/ssh/sshd_config.d/senex-testhost.conf"
    conf.write_text(conf.read_text().replace("ListenAddress 127.0.0.1", f"ListenAddress {address}"))
    # The template keeps this machine's resolver, which the lab cannot reach: every lookup
    # (sudo resolves the host's own name) would wait for its timeout. No server fails at once.
    (root / "etc/resolv.conf").write_text("# Lab host: no name server; names are in /etc/hosts.\n")
    with open(root / "etc/hosts", "a") as hosts:
        hosts.write(f"{address}\t{name}\n")


def attach(host_name: str, lab: Lab, address: str) -> None:
    """Give HOST_NAME its namespace with ADDRESS on LAB's bridge, unless it has it; idempotent."""
    name = netns_name(host_name)
    netns.add(name)
    if netns.has_link(name, "eth0"):
        return
    subnet = lab.subnet()
    # The lab's end of the pair is named after the address: unique in the lab, at most 15 bytes.
    offset = int(ipaddress.IPv4Address(address)) - int(subnet.network_address)
    port = f"th{offset}"
    if netns.has_link(lab.netns, port):
        netns.ip(lab.netns, "link", "delete", port)
    netns.ip(lab.netns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
    netns.ip(lab.netns, "link", "set", port, "master", BRIDGE, "up")
    netns.ip(name, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0")
    netns.ip(name, "link", "set", "eth0", "up")
    netns.ip(name, "route", "add", "default", "via", lab.gateway())


def detach(host_name: str) -> None:
    """Remove the host's namespace; its end of the pair takes the lab's end with it."""
    netns.delete(netns_name(host_name))


def forward(host_dir: Path, lab: Lab, address: str, forwards: list[tuple[int, int]]) -> bool:
    """Start each forwarder 127.0.0.1:LOCAL -> ADDRESS:REMOTE not running; True if any started."""
    started = False
    for local, remote in forwards:
        pidfile, marker = _files(host_dir, local)
        if daemons.running(pidfile, marker):
            continue
        # Each connection runs its own socat inside the lab's namespace; socat's address
        # syntax needs the colons of the inner address escaped.
        inner = f"ip netns exec {lab.netns} socat STDIO TCP\\:{address}\\:{remote}"
        argv = ["socat", f"{marker},fork,reuseaddr", f"EXEC:{inner}"]
        daemons.start(argv, pidfile, host_dir / f"forward-{local}.log")
        started = True
    return started


def stop_forwards(host_dir: Path) -> None:
    for pidfile in host_dir.glob("forward-*.pid"):
        local = int(pidfile.stem.removeprefix("forward-"))
        daemons.stop(*_files(host_dir, local))


def _files(host_dir: Path, local: int) -> tuple[Path, str]:
    return host_dir / f"forward-{local}.pid", f"TCP-LISTEN:{local},bind=127.0.0.1"
