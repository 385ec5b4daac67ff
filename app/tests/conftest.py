"""Session fixtures: a real PostgreSQL and Redis, and on demand a real Celery worker and a
real ASGI server (Daphne) running the app in subprocesses against them.

pytest-django imports the settings before any conftest runs, so the servers' addresses are
put into the already-loaded settings here, and into the environment of every subprocess.
"""

import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection

from senextrader.celery import app as celery_app
from tests.commands import APP_DIR, ASGI_SERVERS, celery_command, http_ready
from tests.servers import (
    BROKER_DB,
    CACHE_DB,
    RESULTS_DB,
    Servers,
    free_port,
    postgres_server,
    redis_server,
    running,
)

# Every wait in these tests is bounded; this is the backstop should one still hang.
TEST_TIMEOUT_SECONDS = 180


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(APP_DIR) and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_SECONDS))


def _apply_to_settings(servers: Servers) -> None:
    # In place: database connections and caches hold on to these dictionaries.
    settings.DATABASES["default"].update(
        HOST=servers.postgres.host,
        PORT=servers.postgres.port,
        USER=servers.postgres.user,
        PASSWORD=servers.postgres.password,
        OPTIONS={**settings.DATABASES["default"]["OPTIONS"], "sslmode": "disable"},
    )
    settings.REDIS_URL = servers.redis.url(CACHE_DB)
    settings.CACHES["default"]["LOCATION"] = settings.REDIS_URL
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [settings.REDIS_URL]
    settings.CELERY_BROKER_URL = servers.redis.url(BROKER_DB)
    settings.CELERY_RESULT_BACKEND = servers.redis.url(RESULTS_DB)
    celery_app.conf.update(
        broker_url=settings.CELERY_BROKER_URL, result_backend=settings.CELERY_RESULT_BACKEND
    )


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with postgres_server() as postgres, redis_server() as redis:
        found = Servers(postgres=postgres, redis=redis)
        _apply_to_settings(found)
        yield found


@pytest.fixture(scope="session", autouse=True)
def _servers_for_every_test(servers: Servers) -> None:
    """Even tests without the database reach Redis through the settings."""


@pytest.fixture(scope="session")
def django_db_modify_db_settings(servers: Servers) -> None:
    """pytest-django's hook before it creates the test database: the server must be up."""


@pytest.fixture(scope="session")
def app_env(servers: Servers, django_db_setup: None) -> dict[str, str]:
    """Environment for a subprocess running the app against the test database."""
    return {
        **os.environ,
        **servers.env(),
        "DJANGO_SETTINGS_MODULE": "senextrader.settings.test",
        "DB_NAME": connection.settings_dict["NAME"],
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def celery_worker(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Celery worker started without --queues, so it serves every queue the settings
    declare; yields its node name."""
    name = f"test-worker-{os.getpid()}@localhost"

    def ready() -> None:
        if not celery_app.control.ping(destination=[name], timeout=1):
            raise RuntimeError("no pong yet")

    command = celery_command(
        "worker",
        "--hostname",
        name,
        "--concurrency",
        "2",
        "--without-gossip",
        "--without-mingle",
    )
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with running(command, env=app_env, cwd=APP_DIR, log=log, ready=ready, what="Celery worker"):
        yield name


@pytest.fixture(scope="session", params=sorted(ASGI_SERVERS))
def live_server_url(
    request: pytest.FixtureRequest,
    app_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The app served over HTTP and WebSocket by a real ASGI server: Daphne, then Gunicorn."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp(request.param) / "server.log"
    command = ASGI_SERVERS[request.param](port)
    with running(
        command, env=app_env, cwd=APP_DIR, log=log, ready=http_ready(url), what=request.param
    ):
        yield url
