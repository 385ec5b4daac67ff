import urllib.request
from concurrent.futures import ThreadPoolExecutor

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


def _open_connections() -> int:
    """Connections to the test database from anyone but this test itself."""
    with connection.cursor() as cursor:
        # Statistics are a snapshot per transaction, and each test runs in one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
        return response.status


@pytest.mark.parametrize("server", sorted(ASGI_SERVERS))
def test_an_asgi_server_closes_each_requests_database_connection(
    app_env: dict[str, str], tmp_path, server: str
) -> None:
    # Under ASGI every request runs in its own context with its own connection: kept for
    # reuse (CONN_MAX_AGE > 0) they pile up until PostgreSQL refuses new clients.
    before = _open_connections()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / f"{server}.log"
    command = ASGI_SERVERS[server](port)
    with running(
        command, env=app_env, cwd=APP_DIR, log=log, ready=http_ready(url), what=server
    ) as p:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(_get, [f"{url}/trading/heartbeats/"] * 100))

        assert statuses == [200] * 100

        def closed() -> None:
            if _open_connections() > before:
                raise RuntimeError("the server still holds database connections")

        wait_until(closed, "the server's connections closing", p, log)
