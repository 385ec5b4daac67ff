"""/metrics: off by default; on, a real Gunicorn with two uvicorn workers (prometheus_client's
multiprocess mode, as the entrypoint runs it) under the production settings serves the sum of
its workers' metrics to a direct scrape, and nothing to a request through the proxy."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.commands import APP_DIR, http_get, http_ready, image_gunicorn
from tests.servers import Servers, free_port, running, wait_until
from tests.test_production_settings import production_server_env

SITE = "trader.example.com"
WAIT = 20


def test_metrics_are_not_served_when_off() -> None:
    assert settings.METRICS_ENABLED is False

    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics/").status_code == 404


@dataclass(frozen=True)
class MetricsServer:
    url: str
    process: object
    log: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        status, _, body = http_get(self.url + path, headers)
        return status, body

    def scrape(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body

    def value(self, sample: str, **labels: str) -> float:
        """The sample's value summed over the workers (0 before any was recorded)."""
        return sum(
            found.value
            for family in text_string_to_metric_families(self.scrape())
            for found in family.samples
            if found.name == sample and labels.items() <= found.labels.items()
        )

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        def probe() -> None:
            if not check():
                raise AssertionError(what)

        wait_until(probe, what, self.process, self.log)


@pytest.fixture(scope="module")
def metrics_server(
    app_env: dict[str, str], servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetricsServer]:
    workdir = tmp_path_factory.mktemp("metrics")
    multiproc = workdir / "prometheus"
    multiproc.mkdir()
    env = production_server_env(
        app_env,
        servers,
        METRICS_ENABLED="true",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        # The test session's key, so a session the test creates logs the WebSocket in.
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS=SITE,
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "gunicorn.log"
    command = image_gunicorn(port, workers=2)
    with running(
        command, env=env, cwd=APP_DIR, log=log, ready=http_ready(url), what="gunicorn"
    ) as p:
        yield MetricsServer(url=url, process=p, log=log)


def test_a_direct_scrape_gets_metrics_from_any_host_without_https(
    metrics_server: MetricsServer,
) -> None:
    # Host is 127.0.0.1:PORT, outside ALLOWED_HOSTS, and the scheme is plain HTTP while the
    # production settings redirect every other plain request to HTTPS.
    status, body = metrics_server.get("/metrics")
    redirected, _ = metrics_server.get("/accounts/login/", {"Host": SITE})
    refused, _ = metrics_server.get("/accounts/login/", {"X-Forwarded-Proto": "https"})

    assert status == 200, metrics_server.log.read_text()
    assert "django_http_requests_before_middlewares_total" in body
    assert redirected == 301
    assert refused == 400


def test_metrics_are_never_served_through_the_proxy(metrics_server: MetricsServer) -> None:
    status, body = metrics_server.get("/metrics", {"X-Forwarded-For": "203.0.113.9"})

    assert status == 404
    assert "django_http" not in body


def test_a_request_to_a_view_is_counted_by_view(metrics_server: MetricsServer) -> None:
    counted = {
        "sample": "django_http_requests_total_by_view_transport_method_total",
        "view": "login",
        "method": "GET",
    }
    before = metrics_server.value(**counted)

    # Several, so both workers are likely to answer some: the scrape adds up every process.
    for _ in range(4):
        status, _ = metrics_server.get(
            "/accounts/login/", {"Host": SITE, "X-Forwarded-Proto": "https"}
        )
        assert status == 200

    assert metrics_server.value(**counted) == before + 4
    assert metrics_server.value("django_http_responses_total_by_status_total", status="200") >= 4


def test_database_queries_through_the_pool_are_counted(metrics_server: MetricsServer) -> None:
    # django-prometheus's PostgreSQL backend under psycopg 3 with Django's connection pool.
    before = metrics_server.value("django_db_execute_total", vendor="postgresql")

    status, body = metrics_server.get("/health/")

    assert status == 200, body
    assert metrics_server.value("django_db_execute_total", vendor="postgresql") > before
    assert metrics_server.value("django_db_new_connections_total", alias="default") >= 1


@pytest.mark.django_db(transaction=True)
def test_an_open_websocket_is_counted_until_it_closes(metrics_server: MetricsServer) -> None:
    browser = Client()
    browser.force_login(get_user_model().objects.create_user("watcher", password="pw-watcher"))
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    opened = metrics_server.value("senex_websocket_connections_opened_total")
    open_now = metrics_server.value("senex_websocket_connections")

    with connect(
        metrics_server.url.replace("http://", "ws://") + "/ws/trading/status/",
        origin=f"https://{SITE}",
        additional_headers={"Cookie": f"sessionid={session}"},
        open_timeout=WAIT,
    ) as socket:
        assert socket.recv(timeout=WAIT)  # accepted and subscribed
        while_open = metrics_server.value("senex_websocket_connections")

    assert while_open == open_now + 1
    assert metrics_server.value("senex_websocket_connections_opened_total") == opened + 1
    metrics_server.wait_for(
        lambda: metrics_server.value("senex_websocket_connections") == open_now,
        "the closed WebSocket to leave senex_websocket_connections",
    )
