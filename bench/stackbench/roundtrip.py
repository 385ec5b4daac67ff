"""The Celery round trip: a no-op task (core.tasks.ping) sent and its result read back, through
the stack's broker to the deployed worker, against a worker run bare on the bare Redis."""

import argparse
import json
import shlex

from stackmodel import service_of_kind

from stackbench.host import USER, BenchHost, bare_app
from stackbench.rounds import rounds_in_turn, spread
from stackbench.web import WEB

# Runs in `manage.py shell --command`: first one task at a time,
# each round trip timed; then a batch sent at once and every result read, for tasks/s. Every
# wait is bounded; the queue is the app's default one, which every worker consumes.
CLIENT = """
import json, statistics, time
from core.tasks import ping

latencies = []
for _ in range({sequential}):
    start = time.perf_counter()
    result = ping.apply_async(queue="celery", expires=60)
    result.get(timeout=30)
    latencies.append((time.perf_counter() - start) * 1000)
    result.forget()
start = time.perf_counter()
results = [ping.apply_async(queue="celery", expires=300) for _ in range({batch})]
for result in results:
    result.get(timeout=120)
seconds = time.perf_counter() - start
for result in results:
    result.forget()
print("ROUNDTRIP " + json.dumps({{
    "p50_ms": statistics.median(latencies),
    "p99_ms": statistics.quantiles(latencies, n=100)[98],
    "tasks_per_s": {batch} / seconds,
}}))
"""
BARE_WORKER = "senex-bench-bare-worker"
# What the image's entrypoint gives a worker unless CELERY_MAX_TASKS_PER_CHILD says otherwise.
MAX_TASKS_PER_CHILD = 100


def start_bare_worker(host: BenchHost) -> int:
    """A worker from the image's own environment on the bare Redis, with the concurrency of
    the model's worker; waits until it answers. Returns that concurrency."""
    concurrency = int(service_of_kind("worker")["concurrency"])
    host.root(
        f"systemd-run --quiet --unit {BARE_WORKER} -p User={USER} -p WorkingDirectory=/app"
        " -p EnvironmentFile=/etc/senex-bench/bare.env -p KillMode=mixed"
        " /opt/venv/bin/celery --app senextrader worker --hostname bench@%h"
        f" --concurrency {concurrency} --max-tasks-per-child {MAX_TASKS_PER_CHILD}"
        " --loglevel WARNING"
    )
    bare_app(host, "python manage.py celery_roundtrip --queue celery --timeout 120")
    return concurrency


def parse(output: str) -> dict:
    for line in output.splitlines():
        if line.startswith("ROUNDTRIP "):
            return json.loads(line.removeprefix("ROUNDTRIP "))
    raise RuntimeError(f"the round-trip client printed no result:\n{output[-2000:]}")


def measure_roundtrip(host: BenchHost, args: argparse.Namespace) -> dict:
    """Rounds in turn of the client in the web container (the app's own path to the stack's
    broker) and bare (the same code on the host, to the bare Redis and worker)."""
    concurrency = start_bare_worker(host)
    client = CLIENT.format(sequential=args.celery_sequential, batch=args.celery_batch)
    command = f"python manage.py shell --command {shlex.quote(client)}"
    run = {
        "container": lambda: host.user(f"podman exec {WEB} {command}"),
        "bare": lambda: bare_app(host, command),
    }
    samples: dict = {"container": [], "bare": []}
    for order in rounds_in_turn(list(run), args.rounds):
        for path in order:
            result = parse(run[path]())
            samples[path].append(result)
            print(f"  Celery round trip {path}: {result['tasks_per_s']:.0f} tasks/s", flush=True)
    host.root(f"systemctl stop {BARE_WORKER}")
    return {
        "sequential": args.celery_sequential,
        "batch": args.celery_batch,
        "concurrency": concurrency,
        "rounds": args.rounds,
        "results": {
            path: {
                key: spread([s[key] for s in runs]) for key in ("tasks_per_s", "p50_ms", "p99_ms")
            }
            for path, runs in samples.items()
        },
    }
