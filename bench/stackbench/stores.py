"""The data stores: pgbench and redis-benchmark against the Quadlet containers on two paths, from
a container on the stack's network over TCP (`container`) and from a container that mounts the
shared socket directory as the app's do (`socket`, senex_stack_data_sockets), against the same
tools on the host to the bare servers (`bare`)."""

import argparse
import re
from collections.abc import Callable

from stackmodel import container_name, unit_of_kind

from stackbench.host import BARE_PG, BARE_REDIS, USER, BenchHost, image_of
from stackbench.rounds import rounds_in_turn, spreads

# The stack's database and cache: their units (and Quadlet files) and their containers, which
# are also their names on the stack's network.
DATABASE_UNIT, CACHE_UNIT = unit_of_kind("database"), unit_of_kind("cache")
DATABASE, CACHE = container_name(DATABASE_UNIT), container_name(CACHE_UNIT)
# The data services' socket directory on the host (the service user's runtime directory) and
# where the app's containers mount it (roles/senex_stack/vars/main.yml).
SOCKETS_HOST, SOCKETS = "/run/user/$(id -u)/senex-sockets", "/run/senex-sockets"
# A container as the app's: on the stack's network, the socket directory mounted.
APP_LIKE = f"podman run --rm --network senex --volume {SOCKETS_HOST}:{SOCKETS}"
# The paths measured: the bare servers from the host, the containers over the network and over
# the socket.
WHERE = ["bare", "container", "socket"]


def postgres_version(host: BenchHost) -> str:
    """The container's PostgreSQL version, e.g. 17.11."""
    out = host.user(f"podman exec {DATABASE} postgres --version")
    return re.search(r"\(PostgreSQL\) (\S+)", out).group(1)


def measure_postgres(host: BenchHost, args: argparse.Namespace, bare: dict) -> dict:
    image = image_of(host, DATABASE_UNIT)
    version = postgres_version(host)
    scale, clients = 4, 4
    # The database password as the app's containers have it (Podman's secret).
    tool = (
        f"{APP_LIKE} --secret senex-db-password,type=env,target=PGPASSWORD"
        f" --entrypoint pgbench {image} -U senex"
    )
    commands = {
        "container": f"{tool} -h {DATABASE}",
        "socket": f"{tool} -h {SOCKETS}",
        "bare": f"PGPASSWORD={bare['db_password']} pgbench -h {BARE_PG[0]} -p {BARE_PG[1]}"
        " -U senex",
    }
    host.user(
        f"podman exec {DATABASE} psql -q -U senex -d postgres"
        " -c 'DROP DATABASE IF EXISTS bench' -c 'CREATE DATABASE bench'"
    )
    host.user(f"{commands['container']} -i -q -s {scale} bench 2>&1")
    host.root(f"{commands['bare']} -i -q -s {scale} bench 2>&1")
    workloads = {
        "select-only (-S)": f"-S -c {clients} -j 2 -t {args.pg_transactions * 10}",
        "TPC-B-like (default)": f"-c {clients} -j 2 -t {args.pg_transactions}",
    }
    samples: dict = {mode: {where: [] for where in WHERE} for mode in workloads}
    for order in rounds_in_turn(list(workloads.items()), args.rounds):
        for mode, options in order:
            # Each round takes the paths in turn, in reverse every other round.
            turn = len(samples[mode]["bare"])
            for where in rounds_in_turn(WHERE, turn + 1)[turn]:
                run: Callable[[str], str] = host.root if where == "bare" else host.user
                out = run(f"timeout 300 env {commands[where]} {options} bench 2>&1")
                samples[mode][where].append(pgbench_tps(out))
            print(f"  pgbench {mode}: {samples[mode]}", flush=True)
    host.user(f"podman exec {DATABASE} psql -q -U senex -d postgres -c 'DROP DATABASE bench'")
    return {
        "version": version,
        "image": image,
        "scale": scale,
        "clients": clients,
        "rounds": args.rounds,
        "results": spreads(samples),
    }


def pgbench_tps(output: str) -> float:
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if found is None:
        raise RuntimeError(f"pgbench printed no TPS:\n{output}")
    return float(found.group(1))


def measure_redis(host: BenchHost, args: argparse.Namespace, bare: dict) -> dict:
    image = image_of(host, CACHE_UNIT)
    version = re.search(r"v=(\S+)", host.user(f"podman exec {CACHE} redis-server --version"))
    env = host.root(f"cat /home/{USER}/.config/senex/senex.env")
    # The app's URL: redis://:PASSWORD@HOST:PORT/0 or, over the socket, unix://:PASSWORD@/PATH.
    password = re.search(r"^REDIS_URL=(?:redis|unix)://:([^@]*)@", env, re.MULTILINE).group(1)
    options = f"-n {args.redis_requests} -c 16 -t set,get --csv"
    # redis-benchmark reads its password from -a only; both are this test host's own.
    tool = f"{APP_LIKE} --entrypoint redis-benchmark {image}"
    commands = {
        "container": f"{tool} -h {CACHE} -a {password} {options}",
        "socket": f"{tool} -s {SOCKETS}/redis.sock -a {password} {options}",
        "bare": f"redis-benchmark -h {BARE_REDIS[0]} -p {BARE_REDIS[1]}"
        f" -a {bare['redis_password']} {options}",
    }
    samples: dict = {op: {where: [] for where in WHERE} for op in ("SET", "GET")}
    for order in rounds_in_turn(WHERE, args.rounds):
        for where in order:
            run: Callable[[str], str] = host.root if where == "bare" else host.user
            found = redis_rps(run(f"timeout 120 env {commands[where]}"))
            for op, value in found.items():
                samples[op][where].append(value)
        print(f"  redis-benchmark: {samples}", flush=True)
    return {
        "version": version.group(1) if version else "?",
        "image": image,
        "requests": args.redis_requests,
        "clients": 16,
        "rounds": args.rounds,
        "results": spreads(samples),
    }


def redis_rps(output: str) -> dict[str, float]:
    rows = [line.replace('"', "").split(",") for line in output.splitlines()]
    return {row[0]: float(row[1]) for row in rows if len(row) > 1 and row[0] in ("SET", "GET")}
