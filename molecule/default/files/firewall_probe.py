#!/usr/bin/env python3
"""Load firewall rules into a network namespace of their own and probe them from another.

Usage (as root on a test host):
  firewall_probe.py RULES_FILE --open PORT [PORT ...] --closed PORT [PORT ...]
Nothing touches the host's network: a new user and network namespace gets the rules, a veth
pair to a peer namespace, and a listener on every port named; the peer connects to each.
Prints what each port did; exits 1 when an open port does not answer or a closed one does.
"""

import argparse
import os
import socket
import subprocess
import sys

ADDRESS, PEER = "10.99.0.1", "10.99.0.2"
CONNECT = """
import socket, sys
for port in map(int, sys.argv[1:]):
    try:
        socket.create_connection(({address!r}, port), timeout=2).close()
        print(port, "answered")
    except OSError as error:
        print(port, type(error).__name__)
"""


def run(*argv: str) -> None:
    subprocess.run(argv, check=True)


def inside(args: argparse.Namespace) -> int:
    """In the new namespaces: wire the peer, load the rules, listen, probe."""
    peer = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        run("ip", "link", "set", "lo", "up")
        run(
            "ip",
            "link",
            "add",
            "fw0",
            "type",
            "veth",
            "peer",
            "name",
            "fw1",
            "netns",
            str(peer.pid),
        )
        run("ip", "address", "add", f"{ADDRESS}/24", "dev", "fw0")
        run("ip", "link", "set", "fw0", "up")
        enter = ["nsenter", f"--target={peer.pid}", "--net", "--"]
        run(*enter, "ip", "address", "add", f"{PEER}/24", "dev", "fw1")
        run(*enter, "ip", "link", "set", "fw1", "up")
        run("nft", "--file", args.rules)
        ports = args.open + args.closed
        listeners = [socket.create_server((ADDRESS, port)) for port in ports]
        code = CONNECT.format(address=ADDRESS)
        probe = [*enter, sys.executable, "-c", code, *map(str, ports)]
        result = subprocess.run(probe, check=True, capture_output=True, text=True)
        for listener in listeners:
            listener.close()
    finally:
        peer.kill()
    fates = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    wrong = [f"{port} should answer: {fates[str(port)]}" for port in args.open]
    wrong = [line for line in wrong if not line.endswith("answered")]
    wrong += [
        f"{port} should be dropped: answered"
        for port in args.closed
        if fates[str(port)] == "answered"
    ]
    print("\n".join(f"port {port}: {fate}" for port, fate in fates.items()))
    if wrong:
        print("\n".join(wrong), file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules")
    parser.add_argument("--open", type=int, nargs="+", required=True)
    parser.add_argument("--closed", type=int, nargs="+", required=True)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    # A user namespace of its own gives the rights over the new network namespace only.
    argv = [
        "unshare",
        "--user",
        "--map-root-user",
        "--net",
        sys.executable,
        os.path.abspath(__file__),
    ]
    return subprocess.run([*argv, *sys.argv[1:], "--inside"], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
