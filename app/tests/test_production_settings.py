"""Production settings, loaded the way the image loads them: ENVIRONMENT=production and
nothing but environment variables."""

import json
import os
import re
import secrets

import pytest
from cryptography.fernet import Fernet

from tests.commands import APP_DIR, daphne, http_get, http_ready, run_manage
from tests.servers import Servers, free_port, running


def production_env(**overrides: str) -> dict[str, str]:
    """A sane production environment (no database or Redis needed to import settings)."""
    env = {
        "PATH": os.environ["PATH"],
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "trader.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://trader.example.com",
        "DB_PASSWORD": secrets.token_urlsafe(16),
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def production_server_env(
    app_env: dict[str, str], servers: Servers, **overrides: str
) -> dict[str, str]:
    """production_env pointed at the test session's PostgreSQL database and Redis."""
    return production_env(
        **{**{name: app_env[name] for name in (*servers.env(), "DB_NAME")}, **overrides}
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_a_secret(missing: str) -> None:
    env = production_env()
    del env[missing]

    result = run_manage("check", env=env)

    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_refuses_a_malformed_field_encryption_key() -> None:
    result = run_manage("check", env=production_env(FIELD_ENCRYPTION_KEY="not-a-key"))

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key" in result.stderr


def test_secrets_can_come_from_files(tmp_path) -> None:
    # How Podman secrets reach the app: <NAME>_FILE points at the secret's file.
    env = production_env()
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY"):
        (tmp_path / name).write_text(env.pop(name))
        env[f"{name}_FILE"] = str(tmp_path / name)

    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("through_file", [False, True], ids=["environment", "file"])
def test_secrets_arrive_byte_exact(tmp_path, through_file: bool) -> None:
    # django-environ reads a value starting with `$` as the name of another variable: a key
    # like this one came out as the value of PATH, or as "Set the PATH... variable".
    secret_key = "$PATH" + secrets.token_urlsafe(50) + " \\$HOME #'\"="
    db_password = "$" + secrets.token_urlsafe(16)
    env = production_env(SECRET_KEY=secret_key, DB_PASSWORD=db_password)
    if through_file:
        for name in ("SECRET_KEY", "DB_PASSWORD"):
            (tmp_path / name).write_text(env.pop(name))
            env[f"{name}_FILE"] = str(tmp_path / name)
    show = (
        "import json; from django.conf import settings; "
        "print(json.dumps([settings.SECRET_KEY, settings.DATABASES['default']['PASSWORD']]))"
    )

    result = run_manage("shell", "--command", show, env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [secret_key, db_password]


def test_a_rotated_secret_key_still_accepts_what_its_predecessors_signed() -> None:
    # The fallbacks travel as a JSON list, so a key with a comma, quotes or non-ASCII survives.
    older = [
        '$old,key "quoted" \u00e9t\u00e9 ' + secrets.token_urlsafe(40),
        secrets.token_urlsafe(50),
    ]
    env = production_env(SECRET_KEY_FALLBACKS=json.dumps(older))
    show = (
        "import json; from django.conf import settings; from django.core import signing; "
        "signed = [signing.dumps('kept', key=key) for key in settings.SECRET_KEY_FALLBACKS]; "
        "forged = signing.dumps('forged', key='not-a-key-the-site-ever-had-' * 2); "
        "valid = [signing.loads(token) for token in signed]; "
        "rejected = False\n"
        "try:\n    signing.loads(forged)\n"
        "except signing.BadSignature:\n    rejected = True\n"
        "print(json.dumps([settings.SECRET_KEY_FALLBACKS, valid, rejected]))"
    )

    result = run_manage("shell", "--command", show, env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [older, ["kept", "kept"], True]


def test_production_refuses_fallbacks_that_are_not_a_list_of_keys() -> None:
    result = run_manage("check", env=production_env(SECRET_KEY_FALLBACKS='"one-key"'))

    assert result.returncode != 0
    assert "SECRET_KEY_FALLBACKS must be a JSON list of strings" in result.stderr


def test_check_deploy_is_clean() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_production_example_passes_check_deploy() -> None:
    # The documented production environment, its placeholders filled in, is a sane one.
    example = APP_DIR.parent / ".env.production.example"
    env = {"PATH": os.environ["PATH"]}
    for line in example.read_text().splitlines():
        name, equals, value = line.partition("=")
        if line.startswith("#") or not equals:
            continue
        if name == "FIELD_ENCRYPTION_KEY":
            value = Fernet.generate_key().decode()
        env[name] = re.sub(r"<[^>]+>", lambda _: secrets.token_urlsafe(50), value)

    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stderr


def test_check_deploy_reports_empty_allowed_hosts() -> None:
    result = run_manage("check", "--deploy", env=production_env(ALLOWED_HOSTS=None))

    assert "core.W001" in result.stderr


def test_unknown_environment_is_named() -> None:
    result = run_manage("check", env=production_env(ENVIRONMENT="staging"))

    assert result.returncode != 0
    assert "ENVIRONMENT='staging' is not one of development, production, test" in result.stderr


def test_collectstatic_needs_neither_database_nor_redis(tmp_path) -> None:
    # As at image build time: dummy secrets, and nothing listens where DB/Redis would be.
    closed = str(free_port())
    env = production_env(
        STATIC_ROOT=str(tmp_path / "static"),
        DB_HOST="127.0.0.1",
        DB_PORT=closed,
        REDIS_URL=f"redis://127.0.0.1:{closed}/0",
    )

    result = run_manage("collectstatic", "--noinput", env=env)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert list((tmp_path / "static" / "admin" / "css").glob("base.*.css.gz"))


def test_container_mode_logs_to_stdout() -> None:
    code = "import logging; logging.getLogger('senex').warning('hello')"
    env = production_env(CONTAINER_MODE="true", LOG_FORMAT="plain")

    result = run_manage("shell", "--command", code, env=env)

    assert result.returncode == 0, result.stderr
    assert "WARNING senex hello" in result.stdout
    assert "hello" not in result.stderr


def test_container_mode_logs_json_unless_told_otherwise() -> None:
    code = "import logging; logging.getLogger('senex').warning('hello')"
    env = production_env(CONTAINER_MODE="true", SENEX_VERSION="0123abc")

    result = run_manage("shell", "--command", code, env=env)

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[-1])
    assert {key: line[key] for key in ("level", "logger", "event", "revision")} == {
        "level": "warning",
        "logger": "senex",
        "event": "hello",
        "revision": "0123abc",
    }
    assert line["timestamp"].endswith("Z")


def test_a_wrong_log_format_is_named() -> None:
    result = run_manage("check", env=production_env(LOG_FORMAT="bogus"))

    assert result.returncode != 0
    assert "LOG_FORMAT must be one of json, plain, got 'bogus'" in result.stderr


@pytest.mark.django_db
def test_production_serves_behind_a_tls_proxy(
    app_env: dict[str, str], servers: Servers, tmp_path
) -> None:
    env = production_server_env(app_env, servers, CONTAINER_MODE="true")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    site = {"Host": "trader.example.com"}
    log = tmp_path / "daphne.log"

    with running(daphne(port), env=env, cwd=APP_DIR, log=log, ready=http_ready(url), what="Daphne"):
        health, _, _ = http_get(f"{url}/health/")
        plain, plain_headers, _ = http_get(f"{url}/accounts/login/", site)
        proxied, proxied_headers, _ = http_get(
            f"{url}/accounts/login/", {**site, "X-Forwarded-Proto": "https"}
        )
        unknown_host, _, _ = http_get(f"{url}/accounts/login/", {"X-Forwarded-Proto": "https"})

    assert health == 200
    assert plain == 301
    assert plain_headers["Location"] == "https://trader.example.com/accounts/login/"
    assert proxied == 200
    assert "max-age=3600" in proxied_headers["Strict-Transport-Security"]
    assert "Secure" in proxied_headers["Set-Cookie"]
    assert unknown_host == 400


def test_development_settings_need_no_environment() -> None:
    env = {"PATH": os.environ["PATH"], "ENVIRONMENT": "development"}

    result = run_manage("check", env=env)

    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_db_ssl_mode_reaches_the_database_driver(app_env: dict[str, str], servers: Servers) -> None:
    # The test server speaks no TLS: `require` must make the connection fail, `disable` work.
    connect = "from django.db import connection; connection.ensure_connection(); print('ok')"
    env = production_server_env(app_env, servers)

    plain = run_manage("shell", "--command", connect, env=env)
    tls = run_manage("shell", "--command", connect, env={**env, "DB_SSL_MODE": "require"})

    assert plain.stdout.splitlines()[-1] == "ok", plain.stderr
    assert tls.returncode != 0
    assert "server does not support SSL" in tls.stderr
