"""The edge measured against the web socket it proxies to, side by side in one run.

Three paths to the deployed web server's /health/simple/: its socket directly (plain HTTP, as
the edge itself connects), through the edge over HTTPS with a new connection and TLS handshake
per request, and through the edge with connections kept alive (as browsers and HTTP/2 do).
CPU is the web unit's and the edge unit's cgroups together, per 1,000 requests."""

import argparse
import re

from stackmodel import unit_of_kind

from stackbench.host import USER, WEB_PORT, BenchHost, unit_cgroup
from stackbench.rounds import rounds_in_turn, spread
from stackbench.web import ab, cpu_seconds

WEB, EDGE = unit_of_kind("web"), unit_of_kind("edge")
ENDPOINT = "/health/simple/"
PATHS = ("socket", "edge", "edge keep-alive")


def edge_site(host: BenchHost) -> tuple[str, int]:
    """The site's name and HTTPS port, read from the deployed Caddyfile."""
    caddyfile = host.root(f"cat /home/{USER}/.config/senex/edge/Caddyfile")
    port = re.search(r"^\s*https_port (\d+)", caddyfile, re.MULTILINE)
    name = re.search(r"^\s*default_sni (\S+)", caddyfile, re.MULTILINE)
    if not (port and name):
        raise RuntimeError("no https_port or default_sni in the deployed Caddyfile")
    return name.group(1), int(port.group(1))


def measure_edge(host: BenchHost, args: argparse.Namespace) -> dict:
    name, port = edge_site(host)
    stats = [f"{unit_cgroup(host, f'{unit}.service')}/cpu.stat" for unit in (WEB, EDGE)]
    targets = {
        "socket": (f"http://127.0.0.1:{WEB_PORT}{ENDPOINT}", name, False),
        "edge": (f"https://127.0.0.1:{port}{ENDPOINT}", name, False),
        "edge keep-alive": (f"https://127.0.0.1:{port}{ENDPOINT}", name, True),
    }
    for url, host_name, keepalive in targets.values():  # warm up
        ab(host, url, 300, args.concurrency, 30, host_name, keepalive)
    samples: dict = {path: [] for path in PATHS}
    for order in rounds_in_turn(list(PATHS), args.rounds):
        for path in order:
            url, host_name, keepalive = targets[path]
            before = cpu_seconds(host, *stats)
            result = ab(
                host, url, args.requests, args.concurrency, args.time_limit, host_name, keepalive
            )
            cpu = cpu_seconds(host, *stats) - before
            result["cpu_ms_per_1k"] = cpu * 1e6 / result["complete"] if result["complete"] else 0.0
            samples[path].append(result)
            print(f"  {ENDPOINT} {path}: {result['rps']:.0f} req/s", flush=True)
    return {
        "endpoint": ENDPOINT,
        "name": name,
        "results": {
            path: {
                key: spread([s[key] for s in runs])
                for key in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_1k")
            }
            | {"failed": sum(s["failed"] + s["non_2xx"] for s in runs)}
            for path, runs in samples.items()
        },
    }
