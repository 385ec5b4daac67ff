"""Celery against real Redis: routing to the three queues, a worker answering on each, a
worker serving only its share of them, and beat's periodic heartbeat that `heartbeat_status`
reads."""

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.tasks import broker_accounts_reencrypt
from core.tasks import ping
from senextrader.celery import app as celery_app
from tests.commands import APP_DIR, CELERY, celery_command, log_says, run_manage
from tests.servers import CACHE_DB, Servers, running, wait_until
from trading.models import Heartbeat
from trading.tasks import heartbeat_publish

# Redis databases no session worker listens on, so messages stay where they land.
IDLE_BROKER_DB, IDLE_RESULTS_DB = 10, 11


def idle_env(app_env: dict[str, str], servers: Servers) -> dict[str, str]:
    """The app's environment on an emptied broker and results database of its own."""
    env = {
        **app_env,
        "CELERY_BROKER_URL": servers.redis.url(IDLE_BROKER_DB),
        "CELERY_RESULT_BACKEND": servers.redis.url(IDLE_RESULTS_DB),
    }
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    return env


def test_tasks_land_on_their_queues(servers: Servers) -> None:
    broker = redis.Redis.from_url(servers.redis.url(IDLE_BROKER_DB))
    broker.flushdb()

    with celery_app.connection_for_write(servers.redis.url(IDLE_BROKER_DB)) as conn:
        producer = conn.Producer()
        for task in (ping, broker_accounts_reencrypt, heartbeat_publish):
            task.apply_async(producer=producer)

    queued = {
        queue: [json.loads(m)["headers"]["task"] for m in broker.lrange(queue, 0, -1)]
        for queue in ("celery", "accounts", "trading")
    }
    assert queued == {
        "celery": ["core.tasks.ping"],
        "accounts": ["accounts.tasks.broker_accounts_reencrypt"],
        "trading": ["trading.tasks.heartbeat_publish"],
    }


def test_the_settings_declare_exactly_the_queues_the_routes_use() -> None:
    declared = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}

    assert len(declared) == len(set(declared)), declared
    assert set(declared) == {settings.CELERY_TASK_DEFAULT_QUEUE} | routed
    assert declared == ["celery", "accounts", "trading"]
    app_tasks = [name for name in celery_app.tasks if not name.startswith("celery.")]
    assert app_tasks, "no task of the app is registered"
    for name in app_tasks:
        assert celery_app.amqp.router.route({}, name)["queue"].name in declared, name


def test_a_worker_for_the_trading_queue_leaves_the_other_queues_alone(
    app_env: dict[str, str], servers: Servers, tmp_path
) -> None:
    # The way the entrypoint starts the `senex-worker@trading` instance.
    env = idle_env(app_env, servers)
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    worker = celery_command(
        "worker",
        "--queues",
        "trading",
        "--hostname",
        "trading@%h",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    )
    log = tmp_path / "worker.log"
    results = redis.Redis.from_url(env["CELERY_RESULT_BACKEND"])
    results.flushdb()
    node = f"trading@{socket.gethostname()}"

    with running(
        worker, env=env, cwd=APP_DIR, log=log, ready=log_says(log, "ready."), what="Celery worker"
    ) as proc:
        with celery_app.connection_for_write(env["CELERY_BROKER_URL"]) as conn:
            producer = conn.Producer()
            # Sent first: by the time the trading task has run, the worker has polled for these.
            elsewhere = [
                ping.apply_async(producer=producer),
                broker_accounts_reencrypt.apply_async(producer=producer),
            ]
            trading = ping.apply_async(queue="trading", producer=producer)

            def answered() -> None:
                if results.get(f"celery-task-meta-{trading.id}") is None:
                    raise RuntimeError("the trading task has no result yet")

            wait_until(answered, "the trading task's result", proc, log)
        inspect = subprocess.run(
            [*CELERY, "inspect", "active_queues", "--destination", node, "--json"],
            env=env,
            cwd=APP_DIR,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        # A bounded grace for a wrongly consumed message to leave its queue.
        time.sleep(2)

    stored = json.loads(results.get(f"celery-task-meta-{trading.id}"))
    assert (stored["status"], stored["result"]) == ("SUCCESS", f"pong from {node}"), log.read_text()
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    active = json.loads(inspect.stdout)
    assert [queue["name"] for queue in active[node]] == ["trading"]
    waiting = {
        queue: [json.loads(message)["headers"]["id"] for message in broker.lrange(queue, 0, -1)]
        for queue in ("celery", "accounts", "trading")
    }
    assert waiting == {"celery": [elsewhere[0].id], "accounts": [elsewhere[1].id], "trading": []}
    for result in elsewhere:
        assert results.get(f"celery-task-meta-{result.id}") is None


def test_a_worker_refuses_a_queue_the_app_does_not_declare(app_env: dict[str, str]) -> None:
    result = subprocess.run(
        celery_command("worker", "--queues", "trading,tradnig", "--without-gossip"),
        env=app_env,
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0, result.stdout + result.stderr
    assert "queue 'tradnig' isn't" in result.stderr, result.stdout + result.stderr


def test_a_task_survives_its_worker_process_being_killed(
    app_env: dict[str, str], servers: Servers, tmp_path
) -> None:
    # acks_late with reject_on_worker_lost: the message is acknowledged only when the task
    # ends, so the task a killed process was running is delivered again.
    env = {**app_env, "CELERY_BROKER_URL": servers.redis.url(IDLE_BROKER_DB)}
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    runs = redis.Redis.from_url(servers.redis.url(CACHE_DB))
    key = f"killed-worker-{time.time_ns()}"
    worker = celery_command(
        "worker",
        "--include",
        "tests.celery_tasks",
        "--hostname",
        "killable@localhost",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    )
    log = tmp_path / "worker.log"

    def ran(times: int) -> Callable[[], None]:
        def check() -> None:
            if runs.llen(key) < times:
                raise RuntimeError(f"the task has not run {times} time(s) yet")

        return check

    with running(
        worker, env=env, cwd=APP_DIR, log=log, ready=log_says(log, "ready."), what="Celery worker"
    ) as proc:
        with celery_app.connection_for_write(env["CELERY_BROKER_URL"]) as conn:
            celery_app.send_task(
                "tests.record_and_sleep", args=[key, 600], producer=conn.Producer()
            )
        wait_until(ran(1), "the first run", proc, log)
        first = int(runs.lindex(key, 0))
        os.kill(first, signal.SIGKILL)
        wait_until(ran(2), "the run after the kill", proc, log)

    assert first != proc.pid  # a pool process died, the worker lived on
    assert int(runs.lindex(key, 1)) != first


def test_a_running_task_finishes_when_its_worker_is_told_to_stop(
    app_env: dict[str, str], servers: Servers, tmp_path
) -> None:
    # systemd and podman stop the worker with SIGTERM: Celery's warm shutdown lets the task
    # it is running finish and store its result before the worker exits.
    env = idle_env(app_env, servers)
    runs = redis.Redis.from_url(servers.redis.url(CACHE_DB))
    key = f"stopped-worker-{time.time_ns()}"
    worker = celery_command(
        "worker",
        "--include",
        "tests.celery_tasks",
        "--hostname",
        "stopping@localhost",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    )
    log = tmp_path / "worker.log"

    def started() -> None:
        if not runs.llen(key):
            raise RuntimeError("the task has not started yet")

    with running(
        worker, env=env, cwd=APP_DIR, log=log, ready=log_says(log, "ready."), what="Celery worker"
    ) as proc:
        with celery_app.connection_for_write(env["CELERY_BROKER_URL"]) as conn:
            task_id = celery_app.send_task(
                "tests.record_and_sleep", args=[key, 4], producer=conn.Producer()
            ).id
        wait_until(started, "the task to start", proc, log)
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(timeout=60)

    assert exit_code == 0, log.read_text()
    stored = redis.Redis.from_url(env["CELERY_RESULT_BACKEND"]).get(f"celery-task-meta-{task_id}")
    assert stored is not None, log.read_text()
    assert (json.loads(stored)["status"], runs.llen(key)) == ("SUCCESS", 1)


@pytest.mark.django_db
def test_celery_roundtrip_gets_an_answer_from_every_queue(celery_worker: str, capsys) -> None:
    # A held ping is the long task a deployment restarts the worker under.
    call_command("celery_roundtrip", "--timeout", "20", "--hold", "1")

    out = capsys.readouterr().out
    for queue in ("celery", "accounts", "trading"):
        assert f"Queue {queue}: pong" in out


def test_celery_roundtrip_refuses_a_hold_it_could_not_wait_for() -> None:
    with pytest.raises(CommandError, match="--hold"):
        call_command("celery_roundtrip", "--timeout", "2", "--hold", "5")


def test_celery_roundtrip_names_the_queue_nobody_serves(
    app_env: dict[str, str], servers: Servers, tmp_path
) -> None:
    env = idle_env(app_env, servers)
    worker = [
        *celery_command("worker", "--queues", "celery,accounts", "--hostname", "partial@localhost"),
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
    ]
    log = tmp_path / "worker.log"

    with running(
        worker, env=env, cwd=APP_DIR, log=log, ready=log_says(log, "ready."), what="Celery worker"
    ):
        result = run_manage("celery_roundtrip", "--timeout", "5", env=env)
        chosen = run_manage("celery_roundtrip", "--queue", "accounts", "--timeout", "5", env=env)

    assert chosen.returncode == 0, chosen.stderr
    assert "Queue accounts: pong from partial@localhost" in chosen.stdout
    assert "Queue celery" not in chosen.stdout
    assert result.returncode != 0
    assert "Queue celery: pong" in result.stdout
    assert "Queue accounts: pong" in result.stdout
    assert "on queue(s): trading" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_heartbeat_and_heartbeat_status_sees_it(
    app_env: dict[str, str], celery_worker: str, tmp_path, capsys
) -> None:
    with pytest.raises(CommandError, match="No heartbeat recorded yet"):
        call_command("heartbeat_status", "--max-age", "60")

    # Beat writes its schedule where it is told: the image's root filesystem is read-only.
    schedule = tmp_path / "run" / "celerybeat-schedule"
    schedule.parent.mkdir()
    beat = celery_command("beat", "--schedule", str(schedule))
    env = {**app_env, "HEARTBEAT_INTERVAL_SECONDS": "2"}
    log = tmp_path / "beat.log"

    def heartbeat_seen() -> None:
        call_command("heartbeat_status", "--max-age", "10")

    with running(beat, env=env, cwd=APP_DIR, log=log, ready=heartbeat_seen, what="Celery beat"):
        pass

    assert "Last heartbeat:" in capsys.readouterr().out
    assert list(schedule.parent.iterdir())  # the schedule file(s), under the given path
    assert Heartbeat.objects.get(name="beat").runs >= 1


@pytest.mark.django_db
def test_heartbeat_status_fails_when_the_last_heartbeat_is_too_old() -> None:
    Heartbeat.objects.create(
        name="beat", last_run_at=timezone.now() - timedelta(minutes=10), runs=3
    )

    with pytest.raises(CommandError, match="more than 60 s"):
        call_command("heartbeat_status", "--max-age", "60")
