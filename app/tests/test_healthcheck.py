"""The image's container health check (docker/healthcheck.py) against a real Celery worker
and beat, each on a Redis of the test's own that the test fills up and stops.

In a container the check looks at PID 1; here `--pid` points it at the process the test
started, and it runs from the app's directory with the app's environment, as in the image.
"""

import contextlib
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis

from tests.commands import APP_DIR, celery_command, log_says
from tests.servers import BROKER_DB, RESULTS_DB, Redis, redis_server, running

HEALTHCHECK = APP_DIR.parent / "docker" / "healthcheck.py"
# The check gives up after 8 s; the rest is the interpreter starting on a busy machine.
FAILS_WITHIN_SECONDS = 13


def healthcheck(pid: int, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK), "--pid", str(pid)],
        env=env,
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, time.monotonic() - started


@contextlib.contextmanager
def own_broker(app_env: dict[str, str]) -> Iterator[tuple[dict[str, str], redis.Redis]]:
    """The app's environment with broker and results on a Redis only this test uses."""
    with redis_server() as server:
        client = redis.Redis.from_url(server.url(BROKER_DB), socket_timeout=5)
        try:
            yield broker_env(app_env, server), client
        finally:
            client.close()


def broker_env(app_env: dict[str, str], server: Redis) -> dict[str, str]:
    return {
        **app_env,
        "CELERY_BROKER_URL": server.url(BROKER_DB),
        "CELERY_RESULT_BACKEND": server.url(RESULTS_DB),
    }


def fill_up(client: redis.Redis) -> None:
    """What maxmemory with the noeviction policy does once memory runs out."""
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)


def broker_drill(pid: int, env: dict[str, str], broker) -> tuple:
    """The check of `pid` with its broker well, full, well again, then stopped; and the keys
    the checks left behind before the stop."""
    healthy, _ = healthcheck(pid, env)
    fill_up(broker)
    full = healthcheck(pid, env)
    broker.config_set("maxmemory", 0)
    recovered, _ = healthcheck(pid, env)
    leftovers = broker.keys("senex:healthcheck:*")
    broker.shutdown(nosave=True)
    return healthy, full, recovered, leftovers, healthcheck(pid, env)


def test_worker_is_healthy_only_while_it_answers_through_its_broker(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    # The way the entrypoint starts a worker: --hostname "${CELERY_WORKER_NAME}@%h".
    worker = celery_command(
        "worker",
        "--hostname",
        "health@%h",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    )
    log = tmp_path / "worker.log"
    with (
        own_broker(app_env) as (env, broker),
        running(
            worker, env=env, cwd=APP_DIR, log=log, ready=log_says(log, "ready."), what="worker"
        ) as proc,
    ):
        healthy, (full, full_took), recovered, leftovers, (gone, gone_took) = broker_drill(
            proc.pid, env, broker
        )

    node = f"health@{socket.gethostname()}"
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert f"worker {node} answered a ping through the broker" in healthy.stdout
    assert leftovers == []
    assert full.returncode != 0, full.stdout
    assert full_took < FAILS_WITHIN_SECONDS, full_took
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert gone.returncode != 0, gone.stdout
    assert "healthcheck: celery worker" in gone.stderr, gone.stderr
    assert gone_took < FAILS_WITHIN_SECONDS, gone_took


def test_a_hung_worker_is_unhealthy_while_another_worker_answers(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    # Each check pings the node its process was started as, not any worker on the broker.
    def worker(name: str) -> list[str]:
        return celery_command(
            "worker", "--hostname", f"{name}@%h", "--concurrency", "1", "--without-mingle"
        )

    logs = {name: tmp_path / f"{name}.log" for name in ("answering", "hung")}
    with own_broker(app_env) as (env, _), contextlib.ExitStack() as stack:
        answering, hung = (
            stack.enter_context(
                running(
                    worker(name),
                    env=env,
                    cwd=APP_DIR,
                    log=log,
                    ready=log_says(log, "ready."),
                    what=f"worker {name}",
                )
            )
            for name, log in logs.items()
        )
        hung.send_signal(signal.SIGSTOP)
        try:
            stopped, took = healthcheck(hung.pid, env)
            other, _ = healthcheck(answering.pid, env)
        finally:
            hung.send_signal(signal.SIGCONT)

    assert stopped.returncode != 0, stopped.stdout
    assert f"hung@{socket.gethostname()} did not answer" in stopped.stderr, stopped.stderr
    assert took < FAILS_WITHIN_SECONDS, took
    assert other.returncode == 0, other.stdout + other.stderr


def test_beat_is_healthy_only_while_its_broker_takes_writes(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    schedule = tmp_path / "celerybeat-schedule"
    beat = celery_command("beat", "--schedule", str(schedule))
    log = tmp_path / "beat.log"
    with (
        own_broker(app_env) as (env, broker),
        running(
            beat, env=env, cwd=APP_DIR, log=log, ready=log_says(log, "beat: Starting"), what="beat"
        ) as proc,
    ):
        healthy, (full, full_took), recovered, leftovers, (gone, gone_took) = broker_drill(
            proc.pid, env, broker
        )

    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "beat's broker took a write and returned it" in healthy.stdout
    assert full.returncode != 0, full.stdout
    assert "OutOfMemoryError" in full.stderr, full.stderr
    assert full_took < FAILS_WITHIN_SECONDS, full_took
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert gone.returncode != 0, gone.stdout
    assert "ConnectionError" in gone.stderr, gone.stderr
    assert gone_took < FAILS_WITHIN_SECONDS, gone_took
    assert leftovers == []


def test_other_processes_are_healthy_while_they_run(app_env: dict[str, str]) -> None:
    # A one-shot (migrate, manage) has no dependency the check could ask about.
    process = subprocess.Popen(["sleep", "60"])
    try:
        result, _ = healthcheck(process.pid, app_env)
    finally:
        process.kill()
        process.wait()

    assert result.returncode == 0, result.stderr
    assert "sleep 60 is running; nothing else to check" in result.stdout


@pytest.mark.parametrize(
    ("command", "node"),
    [
        (["/opt/venv/bin/python3", "/opt/venv/bin/celery", "--app", "x", "worker"], "celery@"),
        (["python", "-m", "celery", "-A", "x", "worker", "-n", "a@%h", "-n", "b@%h"], "b@"),
        (["celery", "--app=x", "worker", "--hostname=trading@%h"], "trading@"),
    ],
    ids=["default-name", "last-name-wins", "equals-form"],
)
def test_the_worker_node_comes_from_the_command_line(command: list[str], node: str) -> None:
    check = load_healthcheck()

    role, args = check.celery_subcommand(command)

    assert role == "worker"
    assert check.worker_node(args) == node + socket.gethostname()


def test_beat_is_told_from_its_command_line() -> None:
    check = load_healthcheck()
    command = ["/opt/venv/bin/python3", "/opt/venv/bin/celery", "--app", "x", "beat", "-s", "f"]

    assert check.celery_subcommand(command) == ("beat", ["-s", "f"])
    assert check.celery_subcommand(["/opt/venv/bin/python3", "/opt/venv/bin/daphne"]) is None


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", HEALTHCHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
