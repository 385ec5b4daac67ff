"""Benchmark the deployed stack against the same software run bare, side by side in one run.

Deploys a fresh sandbox-like test host (bench1: SSH 2281, web 18081) with deploy.yml, then
measures inside it, on loopback only, every load bounded in requests and in time:

- web: requests per second and p50/p99 latency (ApacheBench, no keep-alive, like a reverse
  proxy's default upstream connections) of /health/simple/ (no dependency) and
  /trading/heartbeats/ (reads the database through the full middleware stack), for Daphne and
  for Gunicorn with uvicorn workers, each bare (the image's own virtual environment and code
  copied to the host, against a bare PostgreSQL and Redis), in the container through the
  published port, and through systemd socket activation when the deployed stack has a
  senex-web.socket;
- PostgreSQL: pgbench TPS from a container on the stack's network to the Quadlet container,
  against pgbench on the host to the same PostgreSQL version installed bare from Debian;
- Redis: redis-benchmark the same way;
- Celery: a no-op task's round trip (p50/p99 of one at a time) and tasks/s of a batch, from the
  web container through the stack's Redis to the deployed worker, against the same code bare
  (a worker from the image's environment on the bare Redis);
- the edge: /health/simple/ through the edge (HTTPS, a handshake per request, and with
  connections kept alive) against the web socket it proxies to, with both units' CPU;
- WebSockets: logged-in connections held open to the deployed web server at once, the web
  unit's memory per connection, and broadcasts through the channel layer timed from sending to
  arrival on every connection;
- memory: each service's resident memory once the stack is idle, and the stack's total;
- deployment: image size, bare host to healthy stack, a no-op re-deploy and its changed count;
- the database pool: the bare app on /trading/heartbeats/ with Django's own pool against the
  same app without one through a bare PgBouncer (transaction pooling), with the CPU of the
  web server, PgBouncer and PostgreSQL per request;
- rebuild: a code-only change (one view) to the new image on the host, as the image role
  builds it (commit, git archive, copy, unpack, podman build with the layer cache), each phase
  and each build step that ran again timed.

Pairs run back to back, several rounds, in alternating order; the table shows the median and
the spread (min-max), and the machine's load average. The table is printed and written with
every sample as JSON (bench/results/). Nothing is asserted. Needs root (systemd-nspawn).
"""

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from stackbench.broadcast import measure_broadcast
from stackbench.edge import measure_edge
from stackbench.host import (
    HOST_NAME,
    SSH_PORT,
    USER,
    BenchHost,
    boot_and_deploy,
    copy_app_from_image,
    idle_memory,
    image_sizes,
    install_bare_packages,
    loadavg,
    reset,
    start_bare_services,
)
from stackbench.pgbouncer import measure_pgbouncer
from stackbench.rebuild import measure_rebuild
from stackbench.report import RESULTS, revision, write
from stackbench.roundtrip import measure_roundtrip
from stackbench.stores import measure_postgres, measure_redis, postgres_version
from stackbench.web import measure_web, start_web_servers

# What the benchmark measures, in order; --parts picks some.
PARTS = ("web", "edge", "celery", "websockets", "postgres", "redis", "pgbouncer", "rebuild")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "5")))
    parser.add_argument("--requests", type=int, default=2000, help="per ab run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--time-limit", type=int, default=30, help="seconds per ab run")
    parser.add_argument("--pg-transactions", type=int, default=500, help="per pgbench client")
    parser.add_argument("--redis-requests", type=int, default=50000)
    parser.add_argument("--celery-sequential", type=int, default=500, help="tasks one at a time")
    parser.add_argument("--celery-batch", type=int, default=2000, help="tasks sent at once")
    parser.add_argument("--ws-connections", type=int, default=1000)
    parser.add_argument("--ws-broadcasts", type=int, default=10, help="one a second")
    parser.add_argument(
        "--reuse", action="store_true", help="keep an already deployed host (no deploy figures)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the test host running")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, of {','.join(PARTS)} (default every one)",
    )
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": HOST_NAME,
        "revision": revision(),
        "machine": {"cores": os.cpu_count(), "load_before": loadavg()},
    }
    host = BenchHost(HOST_NAME, SSH_PORT)
    log = Path(tempfile.mkdtemp(prefix=f"senex-bench-{stamp}-"))
    deployment = {} if args.reuse else boot_and_deploy(log)
    host.create()
    host.uid = int(host.root(f"id -u {USER}"))
    try:
        if args.reuse:
            reset(host)
        deployment["image"] = image_sizes(host)
        report["deployment"] = deployment

        time.sleep(20)  # let the fresh stack settle before reading idle memory
        report["memory"] = idle_memory(host)

        pg_major = postgres_version(host).split(".")[0]
        bare = {}
        if {"web", "edge", "celery", "postgres", "redis", "pgbouncer"} & set(parts):
            print("Setting up the bare services", flush=True)
            install_bare_packages(host, pg_major)
            copy_app_from_image(host)
            bare = start_bare_services(host, pg_major)
        elif "websockets" in parts:
            # The WebSocket client runs with the image's Python and its `websockets`.
            copy_app_from_image(host)
        if "web" in parts:
            print("Measuring the web servers", flush=True)
            servers = start_web_servers(host)
            report["web"] = {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "time_limit": args.time_limit,
                "rounds": args.rounds,
                **servers,
                "results": measure_web(host, args, servers["addresses"], servers["cpu_stats"]),
            }
        report["machine"]["load_after_web"] = loadavg()
        if "edge" in parts:
            print("Measuring the edge against the web socket", flush=True)
            report["edge"] = measure_edge(host, args) | {
                "requests": args.requests,
                "concurrency": args.concurrency,
                "rounds": args.rounds,
            }
        if "celery" in parts:
            print("Measuring the Celery round trip", flush=True)
            report["celery"] = measure_roundtrip(host, args)
        if "websockets" in parts:
            print("Measuring WebSocket connections and broadcasts", flush=True)
            report["websockets"] = measure_broadcast(host, args)
        if "postgres" in parts:
            print("Measuring PostgreSQL", flush=True)
            report["postgres"] = measure_postgres(host, args, bare)
        if "redis" in parts:
            print("Measuring Redis", flush=True)
            report["redis"] = measure_redis(host, args, bare)
        if "pgbouncer" in parts:
            print("Measuring Django's pool against PgBouncer", flush=True)
            report["pgbouncer"] = measure_pgbouncer(host, args, bare)
        if "rebuild" in parts:
            print("Measuring a code-only rebuild", flush=True)
            report["rebuild"] = measure_rebuild(host, args)
        report["machine"]["load_end"] = loadavg()
    finally:
        if not args.keep:
            host.destroy()
    write(report, stamp)


if __name__ == "__main__":
    main()
