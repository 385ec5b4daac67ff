"""The web servers measured with ApacheBench: Daphne and Gunicorn with uvicorn workers, each
bare, in a container through a published port, and through systemd socket activation."""

import argparse
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

from stackmodel import unit_of_kind

from stackbench.host import NET, USER, WEB_PORT, BenchHost, quadlet_dir, unit_cgroup
from stackbench.rounds import rounds_in_turn, spread

# The stack's web unit, whose container and socket units the extra web units copy.
WEB = unit_of_kind("web")
# Each server's name in the table and its entrypoint route in the app image.
SERVERS = {"daphne": ("Daphne", "daphne"), "gunicorn": ("Gunicorn+uvicorn", "gunicorn")}
ENDPOINTS = ("/health/simple/", "/trading/heartbeats/")
# The path of the deployed server's copy whose database pool is off.
NO_POOL = "no pool"


def start_bare_web(
    host: BenchHost,
    server: str,
    address: str,
    unit: str = "",
    env_file: str = "/etc/senex-bench/bare.env",
) -> None:
    """Runs `server` bare as the service user in a transient unit (senex-bench-bare-SERVER
    unless `unit` names another), with the bare services' environment unless `env_file`."""
    if server == "daphne":
        command = (
            f"/opt/venv/bin/daphne --bind {address} --port {WEB_PORT} senextrader.asgi:application"
        )
    else:
        command = (
            "/opt/venv/bin/gunicorn --config /etc/senex/gunicorn.conf.py"
            f" --bind {address}:{WEB_PORT} senextrader.asgi:application"
        )
    host.root(
        f"systemd-run --quiet --unit {unit or f'senex-bench-bare-{server}'} -p User={USER}"
        f" -p WorkingDirectory=/app -p EnvironmentFile={env_file}"
        f" -p KillMode=mixed {command}"
    )


def socket_unit(host: BenchHost) -> str:
    """The deployed web socket unit, or '' when the stack does not use socket activation."""
    result = host.ssh(f"cd /home/{USER} && {host.as_user} systemctl --user cat {WEB}.socket")
    return result.stdout if result.returncode == 0 else ""


def extra_web_unit(
    host: BenchHost,
    name: str,
    route: str,
    address: str,
    socket: str,
    environment: dict[str, str] | None = None,
) -> None:
    """A copy of the deployed web unit running `route`, reached on `address`: through a
    published port, or through a copy of the deployed socket unit when `socket` is given;
    `environment` replaces the values of the unit's own Environment= lines."""
    unit = host.root(f"cat {quadlet_dir()}/{WEB}.container")
    environment = environment or {}
    lines = []
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        variable = value.partition("=")[0]
        if key == "Environment" and variable in environment:
            line = f"Environment={variable}={environment[variable]}"
        elif key == "ContainerName":
            line = f"ContainerName={name}"
        elif key == "Exec":
            line = f"Exec={route}"
        elif key in ("PublishPort", "WantedBy") or value == f"{WEB}.socket":
            continue
        elif key == "Network" and not socket:
            lines.append(line)
            line = f"PublishPort={address}:{WEB_PORT}:8000"
        elif line == "[Container]" and socket:
            lines += [f"Requires={name}.socket", f"After={name}.socket", ""]
        lines.append(line)
    host.root(
        f"install -o {USER} -g {USER} -m 0644 /dev/stdin {quadlet_dir()}/{name}.container",
        stdin=("\n".join(lines) + "\n").encode(),
    )
    if socket:
        copy = [
            f"ListenStream={address}:{WEB_PORT}" if line.startswith("ListenStream=") else line
            for line in socket.splitlines()
            if not line.startswith("#") and not line.startswith("WantedBy")
        ]
        directory = f"/home/{USER}/.config/systemd/user"
        host.root(
            f"install -d -o {USER} -g {USER} {directory} && install -o {USER} -g {USER}"
            f" -m 0644 /dev/stdin {directory}/{name}.socket",
            stdin=("\n".join(copy) + "\n").encode(),
        )
    host.user("systemctl --user daemon-reload")
    host.user(f"systemctl --user start {name}.{'socket' if socket else 'service'}")


def start_web_servers(host: BenchHost) -> dict:
    """Starts every server bare and in extra web units on addresses of their own, next to the
    deployed one; returns which is deployed and the address of each server and path."""
    socket = socket_unit(host)
    unit = host.root(f"cat {quadlet_dir()}/{WEB}.container")
    deployed_route = re.search(r"^Exec=(\S+)", unit, re.MULTILINE).group(1)
    deployed = next(s for s, (_, route) in SERVERS.items() if route == deployed_route)
    deployed_path = "socket" if socket else "published"
    paths: dict = {}
    # Each address's systemd unit, whose cgroup tells the server's CPU: (user unit?, name).
    units: dict = {}
    number = 0
    for server, (_, route) in SERVERS.items():
        number += 1
        address = f"{NET}.{number}"
        start_bare_web(host, server, address)
        paths[server] = {"bare": address}
        units[address] = (False, f"senex-bench-bare-{server}.service")
        for path in ("published", "socket") if socket else ("published",):
            if server == deployed and path == deployed_path:
                paths[server][path] = "127.0.0.1"
                units["127.0.0.1"] = (True, f"{WEB}.service")
                continue
            number += 1
            address = f"{NET}.{number}"
            extra_web_unit(
                host,
                f"senex-bench-{server}-{path}",
                route,
                address,
                socket if path == "socket" else "",
            )
            paths[server][path] = address
            units[address] = (True, f"senex-bench-{server}-{path}.service")
    # The deployed server on its path once more, with its database pool off: what it gains.
    pool = re.search(r"^Environment=DB_POOL_MAX_SIZE=(\d+)", unit, re.MULTILINE)
    if pool:
        number += 1
        address = f"{NET}.{number}"
        extra_web_unit(
            host,
            f"senex-bench-{deployed}-nopool",
            deployed_route,
            address,
            socket,
            {"DB_POOL_MAX_SIZE": "0"},
        )
        paths[deployed][NO_POOL] = address
        units[address] = (True, f"senex-bench-{deployed}-nopool.service")
    for by_path in paths.values():
        for address in by_path.values():
            wait_http(host, address)
    print(f"Web servers: {paths}", flush=True)
    return {
        "deployed_server": SERVERS[deployed][0],
        "deployed": deployed,
        "deployed_path": deployed_path,
        "pool_size": pool.group(1) if pool else None,
        "paths": [path for path in paths["daphne"] if path != NO_POOL],
        "addresses": paths,
        "cpu_stats": {address: cpu_stat_file(host, *unit) for address, unit in units.items()},
    }


def cpu_stat_file(host: BenchHost, user: bool, unit: str) -> str:
    """The cpu.stat of a running unit's cgroup: the server's processes (a container's too,
    which Quadlet runs in its service's cgroup), and nothing of the load generator."""
    return f"{unit_cgroup(host, unit, user)}/cpu.stat"


def cpu_seconds(host: BenchHost, *stat_files: str) -> float:
    """The CPU seconds of every cgroup named, together."""
    total = 0.0
    for stat_file in stat_files:
        found = re.search(r"^usage_usec (\d+)", host.root(f"cat {stat_file}"), re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no usage_usec in {stat_file}")
        total += int(found.group(1)) / 1e6
    return total


def wait_http(host: BenchHost, address: str, seconds: int = 180) -> None:
    host.root(
        f'for i in $(seq {seconds}); do python3 -c "import urllib.request;'
        f" urllib.request.urlopen('http://{address}:{WEB_PORT}/health/simple/', timeout=5)\""
        " 2>/dev/null && exit 0; sleep 1; done; exit 1"
    )


@contextmanager
def load_generator_apart(host: BenchHost, stat_files: list[str]) -> Iterator[str]:
    """Pins the servers (every process in the cgroups of these cpu.stat files, and what they
    fork) to every core but the last, and yields the prefix that runs the load generator on
    the last one: neither takes the other's core. A one-core host pins nothing."""
    cores = int(host.root("nproc"))
    if cores < 2:
        yield ""
        return
    groups = " ".join(str(PurePosixPath(stat_file).parent) for stat_file in stat_files)
    pin = (
        f"for pid in $(cat $(find {groups} -name cgroup.procs)); do"
        " taskset --all-tasks --pid --cpu-list {cpus} $pid >/dev/null 2>&1 || true; done"
    )
    host.root(pin.format(cpus=f"0-{cores - 2}"))
    try:
        yield f"taskset --cpu-list {cores - 1} "
    finally:
        host.root(pin.format(cpus=f"0-{cores - 1}"))


AB_FIELDS = {
    "rps": r"Requests per second:\s+([\d.]+)",
    "complete": r"Complete requests:\s+(\d+)",
    "failed": r"Failed requests:\s+(\d+)",
    "seconds": r"Time taken for tests:\s+([\d.]+)",
    "p50_ms": r"^\s+50%\s+(\d+)",
    "p99_ms": r"^\s+99%\s+(\d+)",
}


def ab(
    host: BenchHost,
    url: str,
    requests: int,
    concurrency: int,
    limit: int,
    name: str = "127.0.0.1",
    loadgen: str = "",
) -> dict:
    """ApacheBench against url with `name` as Host, a new connection per request (its HTTP/1.0
    keep-alive is not kept by uvicorn or Caddy: wrk measures kept connections); `loadgen`
    prefixes its command (load_generator_apart)."""
    # -t first: it resets the request count that -n then bounds; -s bounds each request.
    out = host.root(
        f"{loadgen}ab -q -r -t {limit} -n {requests} -c {concurrency} -s 30 -H 'Host: {name}' {url}"
    )
    result = {}
    for name, pattern in AB_FIELDS.items():
        found = re.search(pattern, out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"ab printed no {name} for {url}:\n{out}")
        result[name] = float(found.group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    # ab also counts a body whose length differs from the first one's; the heartbeat list
    # changes length when beat writes, so only connection errors count as failures.
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    result["failed"] = float(sum(int(n) for n in kinds.groups())) if kinds else 0.0
    if result["non_2xx"] or result["failed"]:
        # A finding, not a crash: the table shows every failed request.
        print(f"  {url}: {result['failed']:.0f} failed, {result['non_2xx']} non-2xx", flush=True)
    return result


def measure_web(host: BenchHost, args: argparse.Namespace, paths: dict, cpu_stats: dict) -> dict:
    """paths: {server: {path: address}}; cpu_stats: {address: the server's cpu.stat}."""
    url = "http://{address}:" + str(WEB_PORT) + "{endpoint}"
    targets = [
        (endpoint, server, path, address)
        for endpoint in ENDPOINTS
        for server, by_path in paths.items()
        for path, address in by_path.items()
    ]
    for endpoint, _, _, address in targets:  # warm up: imports, connections, caches
        ab(host, url.format(address=address, endpoint=endpoint), 300, args.concurrency, 30)
    samples: dict = {}
    with load_generator_apart(host, list(cpu_stats.values())) as loadgen:
        for order in rounds_in_turn(targets, args.rounds):
            for endpoint, server, path, address in order:
                result = with_cpu(
                    host,
                    [cpu_stats[address]],
                    lambda address=address, endpoint=endpoint: ab(
                        host,
                        url.format(address=address, endpoint=endpoint),
                        args.requests,
                        args.concurrency,
                        args.time_limit,
                        loadgen=loadgen,
                    ),
                )
                by_path = samples.setdefault(endpoint, {}).setdefault(server, {})
                by_path.setdefault(path, []).append(result)
                print(f"  {endpoint} {server} {path}: {result['rps']:.0f} req/s", flush=True)
    return {
        endpoint: {
            server: {
                path: summary(runs, ("rps", "p50_ms", "p99_ms", "seconds", "cpu_ms_per_1k"))
                for path, runs in by_path.items()
            }
            for server, by_path in by_server.items()
        }
        for endpoint, by_server in samples.items()
    }


def with_cpu(host: BenchHost, stat_files: list[str], run: Callable[[], dict]) -> dict:
    """run()'s figures plus the CPU of the cgroups named per 1,000 answered requests (all their
    cores): independent of how many cores the host has, unlike req/s with the load generator
    beside the server."""
    before = cpu_seconds(host, *stat_files)
    result = run()
    cpu = cpu_seconds(host, *stat_files) - before
    result["cpu_ms_per_1k"] = cpu * 1e6 / result["complete"] if result["complete"] else 0.0
    return result


def summary(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """The spread of each figure over the rounds, and every failed request of them."""
    return {key: spread([run[key] for run in runs]) for key in keys} | {
        "failed": sum(run["failed"] + run["non_2xx"] for run in runs)
    }
