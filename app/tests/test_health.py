import json
import urllib.error
import urllib.request

import pytest
from django.test import Client, override_settings

from tests.commands import APP_DIR, daphne, http_ready
from tests.servers import free_port, running

pytestmark = pytest.mark.django_db


def test_health_is_healthy_with_database_and_redis(client: Client) -> None:
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "checks": {"database": "ok", "redis": "ok"}}
    assert "no-cache" in response["Cache-Control"]


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
    ("broken", "failed_check"),
    [
        ({"DB_PORT": "closed"}, "database"),
        ({"REDIS_URL": "redis://:wrong-secret@127.0.0.1:closed/0"}, "redis"),
    ],
    ids=["database-down", "redis-down"],
)
def test_health_is_unhealthy_without_leaking_details(
    app_env: dict[str, str], tmp_path, broken: dict[str, str], failed_check: str
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
    assert payload["checks"][failed_check] == "failed"
    assert [name for name, state in payload["checks"].items() if state == "failed"] == [
        failed_check
    ]
    for secret_or_detail in (closed_port, "127.0.0.1", app_env["DB_PASSWORD"], "wrong-secret"):
        assert secret_or_detail not in body
    # The operator finds the reason in the log instead.
    assert f"Health check {failed_check} failed" in logged
