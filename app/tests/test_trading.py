import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.commands import APP_DIR, ASGI_SERVERS, http_ready
from tests.servers import free_port, running, wait_until
from trading.services import heartbeat_record

pytestmark = pytest.mark.django_db


def test_heartbeats_lists_each_periodic_task_anonymously(client: Client) -> None:
    beat = heartbeat_record()
    heartbeat_record(name="another")
    another = heartbeat_record(name="another")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/trading/heartbeats/")

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {
        "heartbeats": [
            {"name": "another", "last_run_at": another.last_run_at.isoformat(), "runs": 2},
            {"name": "beat", "last_run_at": beat.last_run_at.isoformat(), "runs": 1},
        ]
    }
    assert len(queries) == 1


def test_heartbeats_answers_an_empty_list_before_beat_ran(client: Client) -> None:
    assert client.get("/trading/heartbeats/").json() == {"heartbeats": []}


def test_heartbeats_refuses_writes(client: Client) -> None:
    assert client.post("/trading/heartbeats/").status_code == 405


def _server_connections() -> set[tuple[int, str]]:
    """(pid, start) of each connection to the test database but this test's own."""
    with connection.cursor() as cursor:
        # Statistics are a snapshot per transaction, and each test runs in one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid, backend_start::text FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return set(cursor.fetchall())


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
        return response.status


@contextmanager
def _serving(server: str, env: dict[str, str], log: Path) -> Iterator[tuple]:
    """Run `server`; yield it, a function that sends it 100 requests reading the database,
    16 at a time, and one that returns the connections it holds (besides those held before)."""
    before = _server_connections()
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def send() -> None:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(_get, [f"{url}/trading/heartbeats/"] * 100))
        assert statuses == [200] * 100

    def held() -> set:
        return _server_connections() - before

    command = ASGI_SERVERS[server](port)
    ready = http_ready(url)
    with running(command, env=env, cwd=APP_DIR, log=log, ready=ready, what=server) as process:
        yield process, send, held


@pytest.mark.parametrize("server", sorted(ASGI_SERVERS))
def test_an_asgi_server_without_a_pool_closes_each_requests_connection(
    app_env: dict[str, str], tmp_path: Path, server: str
) -> None:
    # Under ASGI every request runs in its own context with its own connection: kept for
    # reuse (CONN_MAX_AGE > 0) they pile up until PostgreSQL refuses new clients.
    env = {**app_env, "DB_POOL_MAX_SIZE": "0"}
    log = tmp_path / f"{server}.log"
    with _serving(server, env, log) as (process, send, held):
        send()

        def closed() -> None:
            if held():
                raise RuntimeError("the server still holds database connections")

        wait_until(closed, "the server's connections closing", process, log)


@pytest.mark.parametrize("server", sorted(ASGI_SERVERS))
def test_an_asgi_server_reuses_its_pools_connections_and_opens_no_more(
    app_env: dict[str, str], tmp_path: Path, server: str
) -> None:
    env = {**app_env, "DB_POOL_MAX_SIZE": "3", "DB_POOL_MIN_SIZE": "1"}
    with _serving(server, env, tmp_path / f"{server}.log") as (_, send, held):
        send()
        first = held()
        send()
        second = held()

    # One process, one pool: 16 requests at a time shared at most 3 connections, which stay
    # open after the requests, and the second hundred requests opened none.
    assert 1 <= len(first) <= 3, first
    assert second == first
