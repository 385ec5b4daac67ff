import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from channels.layers import get_channel_layer
from django.test import Client, override_settings

from tests.commands import APP_DIR, daphne, http_ready
from tests.servers import CACHE_DB, free_port, redis_server, running

pytestmark = pytest.mark.django_db


def test_health_is_healthy_with_database_redis_and_the_channel_layer(client: Client) -> None:
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "checks": {"database": "ok", "redis": "ok", "channel_layer": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


def test_health_passes_when_redis_gets_the_probe_before_its_subscription(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Across hosts the publishing connection can reach Redis before the subscribing one: that
    # message goes to nobody. Here the first one is lost that way; the probe sends again.
    layer = get_channel_layer()
    send = layer.send
    lost = []

    async def lose_the_first(channel: str, message: dict) -> None:
        if not lost:
            lost.append(message)
            return
        await send(channel, message)

    monkeypatch.setattr(layer, "send", lose_the_first)

    response = client.get("/health/")

    assert len(lost) == 1
    assert response.json()["checks"]["channel_layer"] == "ok"


def test_health_simple_answers_ok(client: Client) -> None:
    response = client.get("/health/simple/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_answers_any_host_while_other_pages_refuse_it(client: Client) -> None:
    # A container health check calls http://localhost:8000 or the container's name.
    assert client.get("/health/simple/", headers={"host": "senex-web:8000"}).status_code == 200
    assert client.get("/health/", headers={"host": "senex-web:8000"}).status_code == 200
    assert client.get("/accounts/login/", headers={"host": "senex-web:8000"}).status_code == 400


@override_settings(SECURE_SSL_REDIRECT=True)
def test_health_is_not_redirected_to_https() -> None:
    client = Client()  # built inside the override: middleware reads settings when created

    assert client.get("/health/simple/").status_code == 200
    assert client.get("/health/").status_code == 200
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")


def _get_health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/health/", timeout=30) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize(
    ("broken", "failed_checks"),
    [
        ({"DB_PORT": "closed"}, ["database"]),
        ({"REDIS_URL": "redis://:wrong-secret@127.0.0.1:closed/0"}, ["redis", "channel_layer"]),
    ],
    ids=["database-down", "redis-down"],
)
def test_health_is_unhealthy_without_leaking_details(
    app_env: dict[str, str], tmp_path, broken: dict[str, str], failed_checks: list[str]
) -> None:
    closed_port = str(free_port())
    env = {**app_env, **{k: v.replace("closed", closed_port) for k, v in broken.items()}}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "daphne.log"
    with running(daphne(port), env=env, cwd=APP_DIR, log=log, ready=http_ready(url), what="Daphne"):
        status, body = _get_health(url)
    logged = log.read_text()

    assert status == 503
    payload = json.loads(body)
    assert payload["status"] == "unhealthy"
    assert failed(payload) == failed_checks
    for secret_or_detail in (closed_port, "127.0.0.1", app_env["DB_PASSWORD"], "wrong-secret"):
        assert secret_or_detail not in body
    # The operator finds the reason in the log instead.
    for name in failed_checks:
        assert f"Health check {name} failed" in logged


def failed(payload: dict) -> list[str]:
    return [name for name, state in payload["checks"].items() if state == "failed"]


@contextlib.contextmanager
def daphne_on_own_redis(app_env: dict[str, str], log: Path) -> Iterator[tuple[str, redis.Redis]]:
    """Daphne whose cache and channel layer use a Redis of this test's own, which the test
    may fill up or stop; yields the server's URL and a client of that Redis."""
    with redis_server() as own:
        env = {**app_env, "REDIS_URL": own.url(CACHE_DB)}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running(
            daphne(port), env=env, cwd=APP_DIR, log=log, ready=http_ready(url), what="Daphne"
        ):
            client = redis.Redis.from_url(own.url(CACHE_DB), socket_timeout=5)
            try:
                yield url, client
            finally:
                client.close()


def test_health_fails_while_redis_refuses_writes_and_recovers(
    app_env: dict[str, str], tmp_path
) -> None:
    log = tmp_path / "daphne.log"
    with daphne_on_own_redis(app_env, log) as (url, own_redis):
        before = _get_health(url)
        # Full: what maxmemory with the noeviction policy does once memory runs out.
        own_redis.config_set("maxmemory-policy", "noeviction")
        own_redis.config_set("maxmemory", 1)
        assert own_redis.ping()  # a PING still passes
        full = _get_health(url)
        own_redis.config_set("maxmemory", 0)
        after = _get_health(url)

    assert before[0] == 200, before
    assert full[0] == 503, full
    payload = json.loads(full[1])
    # Only the cache fails: Redis refuses writes, but not PUBLISH and SUBSCRIBE, so the
    # pub/sub channel layer still carries messages to the WebSockets.
    assert failed(payload) == ["redis"]
    assert payload["checks"]["channel_layer"] == "ok"
    assert "OOM" not in full[1]
    logged = log.read_text()
    assert "Health check redis failed" in logged
    assert "OutOfMemoryError" in logged
    assert after[0] == 200, after


def test_health_fails_when_redis_stops(app_env: dict[str, str], tmp_path) -> None:
    log = tmp_path / "daphne.log"
    with daphne_on_own_redis(app_env, log) as (url, own_redis):
        before = _get_health(url)
        own_redis.shutdown(nosave=True)
        started = time.monotonic()
        stopped = _get_health(url)
        took = time.monotonic() - started

    assert before[0] == 200, before
    assert stopped[0] == 503, stopped
    assert failed(json.loads(stopped[1])) == ["redis", "channel_layer"]
    # Refused connections fail at once; the bounds (socket and channel layer timeouts) are
    # for a Redis that hangs.
    assert took < 10, took


def test_health_passes_at_once_after_redis_restarts(app_env: dict[str, str], tmp_path) -> None:
    # The web server keeps its pooled Redis connections (cache and channel layer) across
    # requests; after a restart of Redis, the first request must not fail on a dead one.
    log = tmp_path / "daphne.log"
    with daphne_on_own_redis(app_env, log) as (url, own_redis):
        before = _get_health(url)
        port = own_redis.connection_pool.connection_kwargs["port"]
        own_redis.shutdown(nosave=True)
        with redis_server(port=port):
            after = [_get_health(url) for _ in range(3)]

    assert before[0] == 200, before
    assert [status for status, _ in after] == [200, 200, 200], after
