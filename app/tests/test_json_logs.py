"""LOG_FORMAT=json: every line the web server (Gunicorn with the image's configuration and its
uvicorn workers), the Celery worker and beat write is one JSON object, with the request's and
the task's ids bound, and the revision the image was built from."""

import json
from pathlib import Path

import pytest
import redis
from django.conf import settings

from core.tasks import ping
from senextrader.celery import app as celery_app
from tests.commands import (
    APP_DIR,
    CELERY,
    daphne,
    http_get,
    http_ready,
    image_gunicorn,
    log_says,
)
from tests.servers import Servers, free_port, running, wait_until
from tests.test_production_settings import production_server_env

REVISION = "4f2c9e1d0b7a"
SITE = "trader.example.com"
# Redis databases of these processes alone: no other worker takes their tasks.
BROKER_DB, RESULTS_DB = 12, 13
# Each web server as the entrypoint starts it in JSON mode, and loggers its lines must show.
WEB_SERVERS = {
    "gunicorn": (lambda port: image_gunicorn(port, workers=2), {"gunicorn.error", "uvicorn.error"}),
    # Daphne's access log is plain text: the entrypoint turns it off, the app logs each request.
    "daphne": (
        lambda port: daphne(port, "--access-log", "/dev/null"),
        {"daphne.server"},
    ),
}


def json_lines(log: Path) -> list[dict]:
    """Every line of the log as an object; a line that is not one JSON object fails."""
    lines = []
    for number, line in enumerate(log.read_text().splitlines(), 1):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{log.name} line {number} is not JSON: {line!r}")
        assert isinstance(parsed, dict), f"{log.name} line {number}: {line!r}"
        lines.append(parsed)
    assert lines, f"{log.name} is empty"
    return lines


# transaction: beat's heartbeat, committed by the worker, is flushed after the test.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("web_server", sorted(WEB_SERVERS))
def test_web_worker_and_beat_write_one_json_object_a_line(
    web_server: str, app_env: dict[str, str], servers: Servers, tmp_path: Path
) -> None:
    web_command, web_loggers = WEB_SERVERS[web_server]
    env = production_server_env(
        app_env,
        servers,
        # What the image sets, and what the entrypoint exports.
        CONTAINER_MODE="true",
        LOG_FORMAT="json",
        SENEX_VERSION=REVISION,
        CELERY_BROKER_URL=servers.redis.url(BROKER_DB),
        CELERY_RESULT_BACKEND=servers.redis.url(RESULTS_DB),
        HEARTBEAT_INTERVAL_SECONDS="5",
        ALLOWED_HOSTS=SITE,
        PYTHONUNBUFFERED="1",
    )
    for db in (BROKER_DB, RESULTS_DB):
        redis.Redis.from_url(servers.redis.url(db)).flushdb()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "worker", "beat")}
    # As the entrypoint starts them in JSON mode: --quiet, no plain-text banner.
    worker = [*CELERY, "--quiet", "worker", "--hostname", "json@localhost", "--concurrency", "1"]
    beat = [*CELERY, "--quiet", "beat", "--schedule", str(tmp_path / "celerybeat-schedule")]
    beat_sent = log_says(logs["beat"], "Sending due task")

    with (
        running(
            web_command(port),
            env=env,
            cwd=APP_DIR,
            log=logs["web"],
            ready=http_ready(url),
            what=web_server,
        ),
        running(
            [*worker, "--without-gossip", "--without-mingle"],
            env=env,
            cwd=APP_DIR,
            log=logs["worker"],
            ready=log_says(logs["worker"], "ready."),
            what="Celery worker",
        ) as worker_process,
        running(beat, env=env, cwd=APP_DIR, log=logs["beat"], ready=beat_sent, what="Celery beat"),
    ):
        page = http_get(f"{url}/accounts/login/", {"Host": SITE, "X-Forwarded-Proto": "https"})
        with celery_app.connection_for_write(env["CELERY_BROKER_URL"]) as connection:
            task = ping.apply_async(producer=connection.Producer())
        results = redis.Redis.from_url(env["CELERY_RESULT_BACKEND"])

        def answered() -> None:
            if results.get(f"celery-task-meta-{task.id}") is None:
                raise RuntimeError("the ping has no result yet")

        wait_until(answered, "the ping's result", worker_process, logs["worker"])
        # Beat's first heartbeat, sent as it started, runs on the worker's trading queue.
        heartbeat = log_says(logs["worker"], '"queue": "trading"')
        wait_until(heartbeat, "the heartbeat task", worker_process, logs["worker"])

    assert page.status == 200
    web, worker_lines, beat_lines = (json_lines(logs[name]) for name in ("web", "worker", "beat"))
    for line in (*web, *worker_lines, *beat_lines):
        assert line["revision"] == REVISION, line
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
        assert line["timestamp"].endswith("Z"), line
    loggers = {line["logger"] for line in web}
    assert web_loggers <= loggers, loggers

    finished = [line for line in web if line["event"] == "request_finished"]
    assert [line["request"] for line in finished] == ["GET /accounts/login/"], finished
    # That line is the request's only one: the server's access log is off in JSON mode.
    assert not loggers & {"gunicorn.access", "uvicorn.access"}, loggers
    assert finished[0]["request_id"]
    assert finished[0]["code"] == 200

    task_lines = [line for line in worker_lines if line.get("task_id") == task.id]
    assert {line["event"] for line in task_lines} >= {"task_started", "task_succeeded"}
    assert all(line["queue"] == "celery" for line in task_lines), task_lines
    assert all(line["task"] == "core.tasks.ping" for line in task_lines), task_lines
    heartbeats = [line for line in worker_lines if line.get("queue") == "trading"]
    assert {line["task"] for line in heartbeats} == {"trading.tasks.heartbeat_publish"}
    assert any("Sending due task" in line["event"] for line in beat_lines)
    # Stopped with SIGTERM, as podman stops it: Celery's own plain line comes as JSON.
    assert any(line["event"] == "worker: Warm shutdown" for line in worker_lines)
    assert settings.LOG_FORMAT == "plain"  # the test session itself logs plainly
