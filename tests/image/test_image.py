"""The production image, built rootless in a real test host and run there."""

import json
import re
import time
import urllib.error
import urllib.request

import pytest
from conftest import CODE_CHANGE_IMAGE, DEPENDENCIES_IMAGE, IMAGE, SSH_PORT, WEB_PORT, env_flags
from imagehost import BASE_IMAGE, BUILD_CONTEXT_CHANGE, CONTEXT, ImageHost, Result

pytestmark = pytest.mark.usefixtures("build_output")


def run(host: ImageHost, args: str, flags: str = ""):
    return host.podman(f"run --rm {flags} {IMAGE} {args}")


def test_image_metadata(host: ImageHost) -> None:
    image = json.loads(host.check(f"podman image inspect {IMAGE}", user="builder").stdout)[0]
    config = image["Config"]
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["/entrypoint.sh"]
    assert config["Cmd"] == ["daphne"]
    assert config["Labels"]["org.opencontainers.image.version"] == "1.2.3"
    assert config["Labels"]["org.opencontainers.image.revision"] == "abc1234"
    assert config["Labels"]["org.opencontainers.image.created"] == "2026-11-23"
    assert config["Labels"]["org.opencontainers.image.title"] == "senex-trader"
    assert image["Healthcheck"]["Test"] == ["CMD", "healthcheck"]


def test_build_packages_stay_in_the_dependencies_stage(host: ImageHost) -> None:
    # The same build, stopped at the dependencies stage (all cached): the packages are there.
    host.build(DEPENDENCIES_IMAGE, target="dependencies")
    installed = host.podman(f"run --rm {DEPENDENCIES_IMAGE} dpkg-query --show libpq-dev")
    assert installed.returncode == 0, installed.output
    result = run(host, "dpkg-query --show libpq-dev")
    assert result.returncode != 0, result.output
    result = run(host, "sh -c 'ls /usr/include/postgresql; command -v gcc cc'")
    assert result.returncode != 0, result.output


def test_ca_bundle_secret_is_not_in_the_image(host: ImageHost) -> None:
    result = run(host, "sh -c 'ls -A /run/secrets /root/.cache 2>&1; pip config list'")
    assert "ca_bundle" not in result.output
    assert "PIP_CERT" not in host.check(f"podman image inspect {IMAGE}", user="builder").stdout


def test_manage_check_passes(host: ImageHost) -> None:
    result = run(host, "manage check", flags=env_flags())
    assert result.returncode == 0, result.output
    assert "System check identified no issues" in result.output


@pytest.mark.parametrize("route", ["daphne", "web"])
def test_daphne_help_prints_daphne_help(host: ImageHost, route: str) -> None:
    result = run(host, f"{route} --help")
    assert result.returncode == 0, result.output
    assert "usage: daphne" in result.stdout


def test_unknown_database_host_gives_up_after_the_retries(host: ImageHost) -> None:
    flags = env_flags(DB_HOST="no-such-db.invalid", WAIT_RETRIES="3", WAIT_DELAY="0")
    result = run(host, "daphne", flags=flags)
    assert result.returncode == 69, result.output
    for attempt in (1, 2, 3):
        assert f"PostgreSQL at no-such-db.invalid:5432: attempt {attempt}/3 failed" in result.output
    assert "did not answer after 3 attempts; check DB_HOST and DB_PORT" in result.output
    assert "starting Daphne" not in result.output


def test_redis_wait_never_prints_the_password(host: ImageHost) -> None:
    # The test host's sshd stands in for a reachable database port on the shared loopback.
    flags = env_flags(
        DB_HOST="127.0.0.1",
        DB_PORT=str(SSH_PORT),
        REDIS_URL="redis://:hunter2-redis-password@no-such-redis.invalid:6380/0",
        WAIT_RETRIES="2",
        WAIT_DELAY="0",
    )
    result = run(host, "worker", flags=f"--network host {flags}")
    assert result.returncode == 69, result.output
    assert f"PostgreSQL at 127.0.0.1:{SSH_PORT} is up" in result.output
    assert "Redis at no-such-redis.invalid:6380 did not answer after 2 attempts" in result.output
    assert "hunter2" not in result.output


def test_invalid_wait_retries_fails_early(host: ImageHost) -> None:
    result = run(host, "migrate", flags="-e WAIT_RETRIES=many")
    assert result.returncode == 64, result.output
    assert "WAIT_RETRIES must be a positive integer, got 'many'" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CELERY_WORKER_QUEUES", "trading accounts"),
        ("CELERY_WORKER_QUEUES", "trading,"),
        ("CELERY_WORKER_NAME", "trading@host"),
    ],
)
def test_worker_refuses_a_bad_name_before_waiting(
    host: ImageHost, variable: str, value: str
) -> None:
    # Nothing to wait for is reachable: the refusal comes before the wait would fail.
    flags = env_flags(DB_HOST="no-such-db.invalid", WAIT_RETRIES="1", WAIT_DELAY="0")
    result = run(host, "worker", flags=f"{flags} -e '{variable}={value}'")
    assert result.returncode == 64, result.output
    assert f"{variable} must be" in result.output
    assert f"got '{value}'" in result.output


def test_beat_refuses_the_old_name_of_its_schedule_file(host: ImageHost) -> None:
    result = run(host, "beat", flags="-e CELERY_BEAT_SCHEDULE=/tmp/celerybeat-schedule")
    assert result.returncode == 64, result.output
    assert "set CELERY_BEAT_SCHEDULE_FILE instead" in result.output


# Straight to the published port, never through a proxy from this machine's environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(path: str, port: int = WEB_PORT) -> tuple[int, bytes]:
    """GETs from a published port, waiting while the server starts."""
    # As the TLS-terminating proxy would: production settings redirect plain HTTP otherwise.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"X-Forwarded-Proto": "https"}
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with OPENER.open(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def web(host: ImageHost):
    """The web route on a read-only root filesystem, with the deploy's writable paths."""
    flags = env_flags(WAIT_FOR_SERVICES="false")
    # A tmpfs mount belongs to root unless `U` hands it to the container's user.
    host.check(
        f"podman run -d --name web --read-only --tmpfs /tmp --tmpfs /run/senex:U"
        f" -v senex-media:/app/media -p 127.0.0.1:{WEB_PORT}:8000 {flags} {IMAGE} web",
        user="builder",
    )
    yield "web"
    host.ssh("podman rm --force --time 0 web; podman volume rm --force senex-media", "builder")


def test_web_serves_from_a_read_only_root_as_uid_1000(host: ImageHost, web: str) -> None:
    status, body = get("/health/simple/")
    assert status == 200, body
    status, _ = get("/static/admin/css/base.css")
    assert status == 200, "static files were not collected at build time"
    assert host.check(f"podman exec {web} id -u", "builder").stdout.strip() == "1000"
    assert host.check(f"podman exec {web} id -g", "builder").stdout.strip() == "1000"
    denied = host.podman(f"exec {web} touch /app/written /opt/venv/written")
    assert denied.returncode != 0
    assert "Read-only file system" in denied.output
    for writable in ("tmp", "run/senex", "app/media"):
        assert host.podman(f"exec {web} touch /{writable}/written").returncode == 0, writable
    health = host.podman(f"healthcheck run {web}")
    assert health.returncode == 0, health.output


@pytest.mark.parametrize("route", ["daphne", "gunicorn"])
def test_web_takes_the_socket_systemd_passes(host: ImageHost, route: str) -> None:
    # systemd-socket-activate holds the listening socket as a .socket unit would and hands
    # it to podman, which passes it on to the container's PID 1 as fd 3.
    port = WEB_PORT + 1
    flags = env_flags(WAIT_FOR_SERVICES="false", GUNICORN_WORKERS="1")
    host.check(
        f"nohup systemd-socket-activate --listen 127.0.0.1:{port}"
        f" podman run --rm --name socket-web {flags} {IMAGE} {route} > socket-web.log 2>&1 &"
        " echo $! > socket-web.pid",
        "builder",
    )
    try:
        status, body = get("/health/simple/", port=port)
        assert status == 200, body
        logs = host.podman("logs socket-web").output
        # Nothing listens on the image's own 0.0.0.0:8000: the socket came from outside.
        assert "0.0.0.0:8000" not in logs, logs
        assert f"127.0.0.1:{port}" in logs, logs
        # The container's own health check reaches the server on the container's loopback.
        health = host.podman("healthcheck run socket-web")
        assert health.returncode == 0, health.output
    finally:
        host.ssh(
            "podman rm --force --time 0 socket-web; kill $(cat socket-web.pid) 2>/dev/null",
            "builder",
        )


def test_web_stops_on_sigterm(host: ImageHost, web: str) -> None:
    get("/health/simple/")
    host.check(f"podman stop --time 30 {web}", "builder")
    state = host.check(f"podman inspect --format '{{{{.State.ExitCode}}}}' {web}", "builder")
    # 137 would mean podman had to SIGKILL it: the signal did not reach the server.
    assert state.stdout.strip() != "137"


def test_gunicorn_route_serves_asgi(host: ImageHost) -> None:
    flags = env_flags(WAIT_FOR_SERVICES="false", GUNICORN_WORKERS="1")
    host.check(
        f"podman run -d --name gunicorn --read-only -p 127.0.0.1:{WEB_PORT}:8000"
        f" {flags} {IMAGE} gunicorn",
        user="builder",
    )
    try:
        status, body = get("/health/simple/")
        assert status == 200, body
        health = host.podman("healthcheck run gunicorn")
        assert health.returncode == 0, health.output
    finally:
        host.ssh("podman rm --force --time 0 gunicorn", "builder")


def test_code_only_change_reuses_the_dependency_layers(host: ImageHost) -> None:
    context = "/home/builder/context-code-change"
    host.upload_context(context, change=BUILD_CONTEXT_CHANGE)
    output = host.build(CODE_CHANGE_IMAGE, context).output
    steps = [step for step in output.split("STEP ") if "pip install " in step.split("\n")[0]]
    assert len(steps) == 1, output
    pip_step = steps[0].split("\n")
    assert pip_step[1].startswith("--> Using cache"), output
    assert "Installing collected packages" not in output
    # The app's copy (COPY ${APP_DIR}/ /app/) is built anew: its source changed.
    copies = [step for step in output.split("STEP ") if re.search(r"COPY \S+ /app/\n", step)]
    assert len(copies) == 1, output
    assert "Using cache" not in copies[0]

    def layers(image: str) -> list[str]:
        inspect = host.check(f"podman image inspect {image}", user="builder").stdout
        return json.loads(inspect)[0]["RootFS"]["Layers"]

    base, before, after = layers(BASE_IMAGE), layers(IMAGE), layers(CODE_CHANGE_IMAGE)
    pairs = enumerate(zip(before, after, strict=True))
    first_difference = next(i for i, (old, new) in pairs if old != new)
    # On top of the base: the user, then the copied virtual environment; both unchanged.
    assert first_difference > len(base) + 1
    assert before[: len(base)] == base


def wait_until(host: ImageHost, command: str, what: str) -> Result:
    """Runs a podman command as the builder until it succeeds; fails after a minute."""
    deadline = time.monotonic() + 60
    while True:
        result = host.podman(command)
        if result.returncode == 0:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} never happened: {result.output}")
        time.sleep(1)


@pytest.fixture
def redis(host: ImageHost):
    """The Redis stand-in on its own network, reached by name as in the deployed stack."""
    host.load_standin("redis")
    host.check(
        "podman network create senex-test"
        " && podman run -d --name redis --network senex-test localhost/senex-standin-redis:8",
        user="builder",
    )
    yield "redis://redis:6379/0"
    host.ssh(
        "podman rm --force --time 0 worker worker-trading beat redis;"
        " podman network rm --force senex-test",
        "builder",
    )


def test_worker_serves_the_queues_and_warm_stops(host: ImageHost, redis: str) -> None:
    flags = env_flags(REDIS_URL=redis, WAIT_FOR_SERVICES="false")
    host.check(
        f"podman run -d --name worker --network senex-test --read-only {flags} {IMAGE} worker",
        user="builder",
    )
    queues = wait_until(
        host,
        "exec worker celery --app senextrader inspect active_queues --timeout 5",
        "the worker answering on the broker",
    )
    for queue in ("celery", "accounts", "trading"):
        assert f"'name': '{queue}'" in queues.output or f'"name": "{queue}"' in queues.output
    host.check("podman stop --time 30 worker", "builder")
    state = host.check("podman inspect --format '{{.State.ExitCode}}' worker", "builder")
    assert state.stdout.strip() == "0"
    assert "Warm shutdown" in host.podman("logs worker").output


def test_worker_instance_serves_its_queues_under_its_name(host: ImageHost, redis: str) -> None:
    # As senex-worker@trading starts it.
    flags = env_flags(
        REDIS_URL=redis,
        WAIT_FOR_SERVICES="false",
        CELERY_WORKER_NAME="trading",
        CELERY_WORKER_QUEUES="trading",
        CELERY_CONCURRENCY="1",
    )
    host.check(
        "podman run -d --name worker-trading --hostname worker-trading --network senex-test"
        f" --read-only {flags} {IMAGE} worker",
        user="builder",
    )
    queues = wait_until(
        host,
        "exec worker-trading celery --app senextrader inspect active_queues --json --timeout 5"
        " --destination trading@worker-trading",
        "the trading worker answering under its name",
    )
    assert [queue["name"] for queue in json.loads(queues.stdout)["trading@worker-trading"]] == [
        "trading"
    ]
    assert (
        "starting Celery worker trading on the queues: trading"
        in host.podman("logs worker-trading").output
    )
    # The container's health check pings trading@worker-trading through the broker.
    health = host.podman("healthcheck run worker-trading")
    assert health.returncode == 0, health.output
    host.check("podman stop --time 0 redis", "builder")
    health = host.podman("healthcheck run worker-trading")
    assert health.returncode != 0, health.output


@pytest.mark.parametrize(
    "schedule_file", ["", "/run/senex/schedule-from-env"], ids=["default", "from-env"]
)
def test_beat_keeps_its_schedule_in_run_senex_on_a_read_only_root(
    host: ImageHost, redis: str, schedule_file: str
) -> None:
    flags = env_flags(REDIS_URL=redis, WAIT_FOR_SERVICES="false")
    if schedule_file:
        flags += f" -e CELERY_BEAT_SCHEDULE_FILE={schedule_file}"
    host.check(
        "podman run -d --name beat --network senex-test --read-only --tmpfs /tmp"
        f" --tmpfs /run/senex:U {flags} {IMAGE} beat",
        user="builder",
    )
    expected = schedule_file or "/run/senex/celerybeat-schedule"
    wait_until(host, f"exec beat sh -c 'ls {expected}*'", "the beat schedule file")
    # The container's health check writes to beat's broker and reads it back.
    health = host.podman("healthcheck run beat")
    assert health.returncode == 0, health.output
    host.check("podman stop --time 30 beat", "builder")
    state = host.check("podman inspect --format '{{.State.ExitCode}}' beat", "builder")
    assert state.stdout.strip() != "137", host.podman("logs beat").output


def test_development_image_serves_the_mounted_code(host: ImageHost, dev_image: str) -> None:
    mount = f"-v {CONTEXT}/app:/app:ro"
    check = host.podman(f"run --rm {mount} {dev_image} manage check")
    assert check.returncode == 0, check.output
    assert "System check identified no issues" in check.output
    # runserver checks migrations at start, so it needs a database.
    host.load_standin("postgres")
    host.check(
        "podman network create senex-dev && podman run -d --name postgres --network senex-dev"
        " -e POSTGRES_USER=senex -e POSTGRES_PASSWORD=dev -e POSTGRES_DB=senex"
        " localhost/senex-standin-postgres:17",
        "builder",
    )
    try:
        wait_until(host, "exec postgres pg_isready -h 127.0.0.1 -U senex", "PostgreSQL ready")
        host.check(
            f"podman run -d --name dev --network senex-dev {mount} -e DB_HOST=postgres"
            f" -e DB_PASSWORD=dev -p 127.0.0.1:{WEB_PORT}:8000 {dev_image}",
            "builder",
        )
        status, body = get("/health/simple/")
        assert status == 200, (body, host.podman("logs dev").output)
        logs = host.podman("logs dev").output
        assert "senextrader.settings.development" in logs, logs
        assert "StatReloader" in logs, "runserver should reload on code changes"
    finally:
        host.ssh(
            "podman rm --force --time 0 dev postgres; podman network rm --force senex-dev",
            "builder",
        )
