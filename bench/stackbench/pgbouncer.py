"""Django's own pool (psycopg 3's, OPTIONS["pool"]) against PgBouncer in front of PostgreSQL.

Both paths run the app bare on the host, Gunicorn with uvicorn workers from the image's own
environment, against the bare PostgreSQL: one with the pool the stack runs
(DB_POOL_MAX_SIZE), one with the pool off (a connection per request, DB_POOL_MAX_SIZE=0)
through a bare PgBouncer from Debian in transaction pooling, which holds as many server
connections as the pools of the other path's workers together. PgBouncer authenticates the app
with the same user and SCRAM as PostgreSQL does.

Django binds query parameters on the client by default (psycopg's ClientCursor, unless
OPTIONS["server_side_binding"] is set), so psycopg sends no prepared statements that
transaction pooling would hand to another client's server connection. Server-side cursors
(QuerySet.iterator() outside a transaction) would need DISABLE_SERVER_SIDE_CURSORS; the view
measured opens none.
"""

import argparse
import re

from stackbench.host import BARE_PG, NET, USER, WEB_PORT, BenchHost, unit_cgroup
from stackbench.rounds import rounds_in_turn
from stackbench.web import ab, cpu_seconds, start_bare_web, summary, wait_http

ENDPOINT = "/trading/heartbeats/"
# Addresses of this part's own, apart from the web part's (NET.1 up to about NET.10).
PGBOUNCER = (f"{NET}.40", 16432)
PATHS = {"pool": f"{NET}.41", "pgbouncer": f"{NET}.42"}
STATE = "/etc/senex-bench"


def start_pgbouncer(host: BenchHost, db_password: str, pool_size: int) -> None:
    host.root(
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d"
        " && chmod 0755 /usr/sbin/policy-rc.d"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
        " pgbouncer >/dev/null ; status=$? ; rm -f /usr/sbin/policy-rc.d"
        " ; systemctl disable --now --quiet pgbouncer.service 2>/dev/null ; exit $status"
    )
    config = f"""[databases]
senex = host={BARE_PG[0]} port={BARE_PG[1]} dbname=senex

[pgbouncer]
listen_addr = {PGBOUNCER[0]}
listen_port = {PGBOUNCER[1]}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {STATE}/pgbouncer-users.txt
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = {pool_size}
max_client_conn = 500
; One line per connection and disconnection would cost CPU on every request here.
log_connections = 0
log_disconnections = 0
"""
    host.root(
        f"install -o postgres -g postgres -m 0640 /dev/stdin {STATE}/pgbouncer.ini",
        stdin=config.encode(),
    )
    host.root(
        f"install -o postgres -g postgres -m 0600 /dev/stdin {STATE}/pgbouncer-users.txt",
        stdin=f'"senex" "{db_password}"\n'.encode(),
    )
    host.root(
        "systemctl stop senex-bench-pgbouncer 2>/dev/null; systemctl reset-failed"
        " senex-bench-pgbouncer 2>/dev/null; systemd-run --quiet --unit senex-bench-pgbouncer"
        f" -p User=postgres /usr/sbin/pgbouncer {STATE}/pgbouncer.ini"
    )


def bare_env_with(host: BenchHost, name: str, overrides: dict[str, str]) -> str:
    """A copy of the bare app's environment file with some values replaced."""
    env = host.root(f"cat {STATE}/bare.env")
    kept = [line for line in env.splitlines() if line.split("=", 1)[0] not in overrides]
    text = "\n".join([*kept, *(f"{k}={v}" for k, v in overrides.items())]) + "\n"
    path = f"{STATE}/{name}.env"
    host.root(f"install -o root -g {USER} -m 0640 /dev/stdin {path}", stdin=text.encode())
    return path


def measure_pgbouncer(host: BenchHost, args: argparse.Namespace, bare: dict) -> dict:
    unit = host.root(f"cat /home/{USER}/.config/containers/systemd/senex-web.container")
    found = re.search(r"^Environment=DB_POOL_MAX_SIZE=(\d+)", unit, re.MULTILINE)
    pool_size = int(found.group(1)) if found else 4
    workers = int(host.root("nproc"))
    # As many server connections as the pools of the other path's workers together.
    start_pgbouncer(host, bare["db_password"], pool_size * workers)
    envs = {
        "pool": bare_env_with(host, "pool", {"DB_POOL_MAX_SIZE": str(pool_size)}),
        "pgbouncer": bare_env_with(
            host,
            "pgbouncer",
            {
                "DB_HOST": PGBOUNCER[0],
                "DB_PORT": str(PGBOUNCER[1]),
                "DB_POOL_MAX_SIZE": "0",
                # PgBouncer speaks no TLS here; the bare PostgreSQL none either.
                "DB_SSL_MODE": "disable",
            },
        ),
    }
    units = {}
    for path, address in PATHS.items():
        units[path] = f"senex-bench-db-{path}"
        start_bare_web(host, "gunicorn", address, unit=units[path], env_file=envs[path])
    for address in PATHS.values():
        wait_http(host, address)
    stats = {
        path: f"{unit_cgroup(host, units[path] + '.service', False)}/cpu.stat" for path in PATHS
    }
    stats["pgbouncer_process"] = (
        f"{unit_cgroup(host, 'senex-bench-pgbouncer.service', False)}/cpu.stat"
    )
    stats["postgres"] = f"{unit_cgroup(host, 'senex-bench-bare-postgres.service', False)}/cpu.stat"
    url = f"http://{{address}}:{WEB_PORT}{ENDPOINT}"
    for address in PATHS.values():  # warm up: imports, connections, caches
        ab(host, url.format(address=address), 300, args.concurrency, 30)
    samples: dict = {path: [] for path in PATHS}
    for order in rounds_in_turn(list(PATHS), args.rounds):
        for path in order:
            groups = {
                "web": [stats[path]],
                "pgbouncer": [stats["pgbouncer_process"]] if path == "pgbouncer" else [],
                "postgres": [stats["postgres"]],
            }
            before = {name: cpu_seconds(host, *files) for name, files in groups.items()}
            result = ab(
                host, url.format(address=PATHS[path]), args.requests, args.concurrency,
                args.time_limit,
            )  # fmt: skip
            after = {name: cpu_seconds(host, *files) for name, files in groups.items()}
            per_1k = 1e6 / result["complete"] if result["complete"] else 0.0
            for name in groups:
                result[f"{name}_cpu_ms_per_1k"] = (after[name] - before[name]) * per_1k
            result["cpu_ms_per_1k"] = (
                result["web_cpu_ms_per_1k"] + result["pgbouncer_cpu_ms_per_1k"]
            )
            samples[path].append(result)
            print(
                f"  {ENDPOINT} {path}: {result['rps']:.0f} req/s, server CPU"
                f" {result['cpu_ms_per_1k'] / 1000:.2f} s/1k",
                flush=True,
            )
    count = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'senex'"
    server_connections = host.root(
        f"runuser -u postgres -- psql -qAt -h /var/run/postgresql -p {BARE_PG[1]} -d postgres",
        stdin=count.encode(),
    ).strip()
    version = host.root("/usr/sbin/pgbouncer --version | head -1").strip()
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_1k", "web_cpu_ms_per_1k",
            "pgbouncer_cpu_ms_per_1k", "postgres_cpu_ms_per_1k")  # fmt: skip
    return {
        "endpoint": ENDPOINT,
        "pgbouncer_version": version,
        "pool_size": pool_size,
        "workers": workers,
        "pgbouncer_pool_size": pool_size * workers,
        "server_connections_after": int(server_connections or 0),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "time_limit": args.time_limit,
        "rounds": args.rounds,
        "results": {path: summary(runs, keys) for path, runs in samples.items()},
    }
