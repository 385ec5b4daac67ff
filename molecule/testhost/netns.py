"""Private network namespaces: nothing here touches this machine's own namespace."""

import subprocess
from pathlib import Path

from common import run

NETNS_DIR = Path("/run/netns")


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def add(name: str) -> None:
    """Create namespace NAME with its loopback up, unless it exists."""
    if not exists(name):
        run("ip", "netns", "add", name, capture_output=True, text=True)
    ip(name, "link", "set", "lo", "up")


def delete(name: str) -> bool:
    """Remove namespace NAME (its interfaces go with it); True if it existed."""
    if not exists(name):
        return False
    run("ip", "netns", "delete", name, capture_output=True, text=True)
    return True


def ip(name: str, *args: str) -> str:
    """Run `ip ARGS` inside namespace NAME and return its output."""
    return run("ip", "-n", name, *args, capture_output=True, text=True).stdout


def has_link(name: str, link: str) -> bool:
    if not exists(name):
        return False
    probe = ["ip", "-n", name, "link", "show", "dev", link]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def pids(name: str) -> list[int]:
    """Processes that still run in namespace NAME."""
    if not exists(name):
        return []
    output = run("ip", "netns", "pids", name, capture_output=True, text=True).stdout
    return [int(pid) for pid in output.split()]
