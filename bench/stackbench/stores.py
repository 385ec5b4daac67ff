"""The data stores: pgbench and redis-benchmark from a container on the stack's network to
the Quadlet containers, against the same tools on the host to the bare servers."""

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


def postgres_version(host: BenchHost) -> str:
    """The container's PostgreSQL version, e.g. 17.11."""
    out = host.user(f"podman exec {DATABASE} postgres --version")
    return re.search(r"\(PostgreSQL\) (\S+)", out).group(1)


def measure_postgres(host: BenchHost, args: argparse.Namespace, bare: dict) -> dict:
    image = image_of(host, DATABASE_UNIT)
    version = postgres_version(host)
    scale, clients = 4, 4
    inside = (
        f"podman run --rm --network senex --secret senex-db-password,type=env,target=PGPASSWORD"
        f" --entrypoint pgbench {image} -h {DATABASE} -U senex"
    )
    outside = f"PGPASSWORD={bare['db_password']} pgbench -h {BARE_PG[0]} -p {BARE_PG[1]} -U senex"
    host.user(
        f"podman exec {DATABASE} psql -q -U senex -d postgres"
        " -c 'DROP DATABASE IF EXISTS bench' -c 'CREATE DATABASE bench'"
    )
    host.user(f"{inside} -i -q -s {scale} bench 2>&1")
    host.root(f"{outside} -i -q -s {scale} bench 2>&1")
    workloads = {
        "select-only (-S)": f"-S -c {clients} -j 2 -t {args.pg_transactions * 10}",
        "TPC-B-like (default)": f"-c {clients} -j 2 -t {args.pg_transactions}",
    }
    samples: dict = {mode: {"bare": [], "container": []} for mode in workloads}
    for order in rounds_in_turn(list(workloads.items()), args.rounds):
        for mode, options in order:
            for where in (
                ("bare", "container")
                if len(samples[mode]["bare"]) % 2 == 0
                else (
                    "container",
                    "bare",
                )
            ):
                if where == "bare":
                    out = host.root(f"timeout 300 env {outside} {options} bench 2>&1")
                else:
                    out = host.user(f"timeout 300 env {inside} {options} bench 2>&1")
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
    password = re.search(r"^REDIS_URL=redis://:([^@]*)@", env, re.MULTILINE).group(1)
    options = f"-n {args.redis_requests} -c 16 -t set,get --csv"
    # redis-benchmark reads its password from -a only; both are this test host's own.
    inside = (
        f"podman run --rm --network senex --entrypoint redis-benchmark {image}"
        f" -h {CACHE} -a {password} {options}"
    )
    outside = (
        f"redis-benchmark -h {BARE_REDIS[0]} -p {BARE_REDIS[1]} -a {bare['redis_password']}"
        f" {options}"
    )
    samples: dict = {"SET": {"bare": [], "container": []}, "GET": {"bare": [], "container": []}}
    for order in rounds_in_turn(["bare", "container"], args.rounds):
        for where in order:
            run: Callable[[str], str] = host.root if where == "bare" else host.user
            found = redis_rps(run(f"timeout 120 env {outside if where == 'bare' else inside}"))
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
