"""`podman-compose up` with the development and the production override, rootless in a real
test host (the image tests' own, with the images they built) and the stand-in images: every
service healthy, the app answers through the published port, `down` keeps the named volumes."""

import json
import os
import shlex
import time

import pytest
import yaml
from composehost import VOLUMES, ComposeHost, dotenv, dotenv_values, http_get
from conftest import DEV_IMAGE, IMAGE
from imagehost import BUILDER, ROOT, ImageHost

# Published on the test host's loopback, which it shares with this machine; apart from the
# image tests' port.
WEB_PORT = int(os.environ.get("SENEX_COMPOSE_TEST_WEB_PORT", "18051"))
POSTGRES_PORT = WEB_PORT + 1
REDIS_PORT = WEB_PORT + 2
DOTENV_VALUES = dotenv_values(WEB_PORT, POSTGRES_PORT, REDIS_PORT, IMAGE, DEV_IMAGE)
LONG_RUNNING = {"postgres", "redis", "web", "celery_worker", "celery_beat"}
# A bound, not a timing claim: beat's health needs a heartbeat, one beat interval after start.
HEALTHY_WITHIN = 420


@pytest.fixture(scope="module")
def compose_host(host: ImageHost, build_output: str, dev_image: str) -> ComposeHost:
    compose = ComposeHost.of(host)
    compose.prepare_compose()
    compose.upload_project(dotenv(DOTENV_VALUES))
    return compose


def wait_until_settled(host: ComposeHost, expected: set[str]) -> dict[str, dict]:
    """Polls until every long-running service is healthy or one has failed, or the bound."""
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        containers = host.containers()
        healthy = {name for name, c in containers.items() if "(healthy)" in c["Status"]}
        # Unhealthy, exited, or created but never started: none of these gets better by itself.
        failed = {
            name
            for name, c in containers.items()
            if "unhealthy" in c["Status"] or c["State"] in ("exited", "created")
        }
        if healthy >= LONG_RUNNING or failed or time.monotonic() > deadline:
            return containers
        time.sleep(5)


def expected_health_checks(override: str) -> dict[str, str]:
    """Each service's health check test as Compose merges the two files: the override's wins."""
    tests = {}
    for name in ("docker-compose.yml", override):
        for service, spec in yaml.safe_load((ROOT / name).read_text())["services"].items():
            if "test" in spec.get("healthcheck", {}):
                tests[service] = spec["healthcheck"]["test"].replace("$$", "$")
    return tests


def describe(host: ComposeHost, override: str) -> str:
    return host.compose(override, "ps").output + host.compose(override, "logs --tail 30").output


@pytest.mark.parametrize("override", ["docker-compose.dev.yml", "docker-compose.prod.yml"])
def test_stack_comes_up_healthy_and_down_keeps_the_volumes(
    compose_host: ComposeHost, override: str
) -> None:
    host = compose_host
    up = host.compose(override, "up -d")
    assert up.returncode == 0, up.output
    try:
        containers = wait_until_settled(host, LONG_RUNNING)
        assert set(containers) == LONG_RUNNING, describe(host, override)
        unhealthy = [
            f"{name}: {c['Status']}"
            for name, c in containers.items()
            if name in LONG_RUNNING and "(healthy)" not in c["Status"]
        ]
        assert unhealthy == [], describe(host, override)
        # A service that crashed and came back can look healthy: none may have restarted.
        restarts = {
            name: host.check(
                f"podman inspect --format '{{{{.RestartCount}}}}' {c['Id']}", user=BUILDER
            ).stdout.strip()
            for name, c in containers.items()
            if name in LONG_RUNNING
        }
        assert set(restarts.values()) == {"0"}, f"{restarts}\n{describe(host, override)}"
        # Healthy must mean the check the files ask for, not a merge of base and override.
        for name, test in expected_health_checks(override).items():
            inspect = "podman inspect --format '{{json .Config.Healthcheck.Test}}'"
            configured = host.check(f"{inspect} {containers[name]['Id']}", user=BUILDER).stdout
            assert json.loads(configured)[-1] == f"/bin/sh -c {shlex.quote(test)}", name
        # No password in any process's arguments on the host, the containers' included.
        processes = host.check("ps -eo args", user="root").stdout
        for key in ("DB_PASSWORD", "REDIS_PASSWORD"):
            assert DOTENV_VALUES[key] not in processes, f"{key} shows in a process list"

        status, body = http_get(f"http://127.0.0.1:{WEB_PORT}/health/")
        assert status == 200, body
        assert json.loads(body)["status"] == "healthy"
        status, body = http_get(f"http://127.0.0.1:{WEB_PORT}/admin/")
        assert status == 302, body
    finally:
        down = host.compose(override, "down")
    assert down.returncode == 0, down.output
    assert host.containers() == {}
    assert host.volumes() >= VOLUMES
