"""The edge measured against the web socket it proxies to, side by side in one run.

Two paths to the deployed web server, its socket directly (plain HTTP, as the edge itself
connects) and through the edge over HTTPS, each with a new connection per request (ApacheBench:
a TLS handshake per request through the edge) and with connections kept alive (wrk, HTTP/1.1,
as browsers do); for /health/simple/ and for a static file (WhiteNoise behind the edge). CPU is
the web unit's and the edge unit's cgroups together, per 1,000 requests."""

import argparse
import re

from stackmodel import unit_of_kind

from stackbench.host import USER, WEB_PORT, BenchHost
from stackbench.rounds import rounds_in_turn
from stackbench.web import ab, cpu_stat_file, load_generator_apart, summary, with_cpu

WEB, EDGE = unit_of_kind("web"), unit_of_kind("edge")
PATHS = ("socket", "edge", "socket keep-alive", "edge keep-alive")
# Seconds of each wrk run (it is bounded in time; its connections bound what is in flight).
WRK_SECONDS = 10
WRK_FIELDS = {
    "rps": r"Requests/sec:\s+([\d.]+)",
    "complete": r"(\d+) requests in",
    "p50_ms": r"^\s+50%\s+([\d.]+\w+)",
    "p99_ms": r"^\s+99%\s+([\d.]+\w+)",
}
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    host: BenchHost, url: str, connections: int, seconds: int, name: str, loadgen: str = ""
) -> dict:
    """wrk for `seconds` over `connections` kept-alive HTTP/1.1 connections, one thread."""
    out = host.root(
        f"{loadgen}wrk --latency -t1 -c{connections} -d{seconds}s -H 'Host: {name}' {url}"
    )
    result: dict = {}
    for field, pattern in WRK_FIELDS.items():
        found = re.search(pattern, out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"wrk printed no {field} for {url}:\n{out}")
        value = found.group(1)
        if field.endswith("_ms"):
            number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()
            result[field] = float(number) * UNITS_MS[unit]
        else:
            result[field] = float(value)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["failed"] = float(sum(map(int, errors.groups()))) if errors else 0.0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    return result


def edge_site(host: BenchHost) -> tuple[str, int]:
    """The site's name and HTTPS port, read from the deployed Caddyfile."""
    caddyfile = host.root(f"cat /home/{USER}/.config/senex/edge/Caddyfile")
    port = re.search(r"^\s*https_port (\d+)", caddyfile, re.MULTILINE)
    name = re.search(r"^\s*default_sni (\S+)", caddyfile, re.MULTILINE)
    if not (port and name):
        raise RuntimeError("no https_port or default_sni in the deployed Caddyfile")
    return name.group(1), int(port.group(1))


def stylesheet(host: BenchHost) -> str:
    """The first stylesheet the admin login page links to (a collected, hashed file)."""
    page = host.root(
        f'python3 -c "import urllib.request; print(urllib.request.urlopen('
        f"'http://127.0.0.1:{WEB_PORT}/admin/login/', timeout=10).read().decode())\""
    )
    found = re.search(r'href="(/static/[^"]+\.css)"', page)
    if found is None:
        raise RuntimeError("no stylesheet on /admin/login/")
    return found.group(1)


def measure_edge(host: BenchHost, args: argparse.Namespace) -> dict:
    name, port = edge_site(host)
    stats = [cpu_stat_file(host, True, f"{unit}.service") for unit in (WEB, EDGE)]
    # wrk names the site in its TLS handshake from the URL, so its edge URL carries the name.
    bases = {
        "socket": (f"http://127.0.0.1:{WEB_PORT}", False),
        "edge": (f"https://127.0.0.1:{port}", False),
        "socket keep-alive": (f"http://127.0.0.1:{WEB_PORT}", True),
        "edge keep-alive": (f"https://{name}:{port}", True),
    }
    endpoints = ("/health/simple/", stylesheet(host))
    targets = [(endpoint, path) for endpoint in endpoints for path in PATHS]

    def load(url: str, keepalive: bool, loadgen: str) -> dict:
        if keepalive:
            return wrk(host, url, args.concurrency, WRK_SECONDS, name, loadgen)
        return ab(host, url, args.requests, args.concurrency, args.time_limit, name, loadgen)

    for endpoint, path in targets:  # warm up
        base, keepalive = bases[path]
        if not keepalive:
            ab(host, base + endpoint, 300, args.concurrency, 30, name)
    samples: dict = {}
    with load_generator_apart(host, stats) as loadgen:
        for order in rounds_in_turn(targets, args.rounds):
            for endpoint, path in order:
                base, keepalive = bases[path]
                url = base + endpoint
                result = with_cpu(
                    host, stats, lambda url=url, keep=keepalive: load(url, keep, loadgen)
                )
                samples.setdefault(endpoint, {}).setdefault(path, []).append(result)
                print(f"  {endpoint} {path}: {result['rps']:.0f} req/s", flush=True)
    return {
        "name": name,
        "results": {
            endpoint: {
                path: summary(runs, ("rps", "p50_ms", "p99_ms", "cpu_ms_per_1k"))
                for path, runs in by_path.items()
            }
            for endpoint, by_path in samples.items()
        },
    }
