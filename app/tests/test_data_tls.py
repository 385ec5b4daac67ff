"""TLS to PostgreSQL and Redis on another host, as the env file describes it there: the app
checks each server's certificate against the CA it is given (DB_SSL_MODE=verify-full and
DB_SSL_ROOT_CERT, rediss:// URLs and REDIS_SSL_CA_CERTS), for every client it has: Django's
database connection, django-redis, channels_redis's pub/sub layer, and Celery's broker and
results. Real servers with TLS only, one with a certificate of the app's CA and one whose
certificate another CA signed."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.certificates import ServerFiles, server_files
from tests.commands import run_manage
from tests.servers import BROKER_DB, CACHE_DB, RESULTS_DB, postgres_server, redis_server

# What the app does with each of its connections, in one process with the settings the
# environment gives: a query that reports whether the connection is encrypted, the health
# checks (database, a Redis write and read through django-redis, a channel layer round trip),
# a Celery broker connection and a result stored and read back.
PROBE = """
import json
from django.db import connection
from core.services import health_check
from senextrader.celery import app
with connection.cursor() as cursor:
    cursor.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
    encrypted = cursor.fetchone()[0]
checks = health_check()
with app.connection_for_write() as broker:
    broker.ensure_connection(max_retries=1)
app.backend.set("senex:tls-check", b"stored")
print(json.dumps({"encrypted": encrypted, "checks": checks,
                  "results": app.backend.get("senex:tls-check").decode()}))
"""


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    """The app's CA and a certificate it signed for the servers' address."""
    return server_files(
        tmp_path_factory.mktemp("trusted"), ca_name="Senex data CA", host="127.0.0.1"
    )


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    """A certificate for the same address, signed by a CA the app was not given."""
    return server_files(
        tmp_path_factory.mktemp("foreign"), ca_name="Someone else's CA", host="127.0.0.1"
    )


def _tls_env(postgres, redis, ca: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "senextrader.settings.test",
        "DB_HOST": postgres.host,
        "DB_PORT": str(postgres.port),
        "DB_NAME": "postgres",
        "DB_USER": postgres.user,
        "DB_PASSWORD": postgres.password,
        "DB_SSL_MODE": "verify-full",
        "DB_SSL_ROOT_CERT": str(ca),
        "REDIS_URL": redis.url(CACHE_DB),
        "CELERY_BROKER_URL": redis.url(BROKER_DB),
        "CELERY_RESULT_BACKEND": redis.url(RESULTS_DB),
        "REDIS_SSL_CA_CERTS": str(ca),
    }


@pytest.fixture(scope="module")
def tls_servers(trusted: ServerFiles) -> Iterator[tuple]:
    with postgres_server(tls=trusted) as postgres, redis_server(tls=trusted) as redis:
        yield postgres, redis


@pytest.fixture(scope="module")
def foreign_servers(foreign: ServerFiles) -> Iterator[tuple]:
    with postgres_server(tls=foreign) as postgres, redis_server(tls=foreign) as redis:
        yield postgres, redis


def test_the_app_reaches_every_data_service_over_verified_tls(tls_servers, trusted) -> None:
    result = run_manage("shell", "--command", PROBE, env=_tls_env(*tls_servers, trusted.ca))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "encrypted": True,
        "checks": {"database": True, "redis": True, "channel_layer": True},
        "results": "stored",
    }


def test_the_servers_refuse_plaintext(tls_servers, trusted) -> None:
    # The same settings without TLS: PostgreSQL's pg_hba admits TLS only, and Redis has no
    # plaintext port.
    postgres, redis = tls_servers
    env = {
        **_tls_env(postgres, redis, trusted.ca),
        "DB_SSL_MODE": "disable",
        "REDIS_URL": redis.url(CACHE_DB).replace("rediss://", "redis://"),
    }

    result = run_manage(
        "shell",
        "--command",
        "from core.services import health_check; print(health_check())",
        env=env,
    )

    assert result.stdout.splitlines()[-1] == str(
        {"database": False, "redis": False, "channel_layer": False}
    ), result.stderr


@pytest.mark.parametrize(
    "client",
    [
        "from django.db import connection; connection.ensure_connection()",
        "from django.core.cache import cache; cache.get('x')",
        "from channels.layers import get_channel_layer; from asgiref.sync import async_to_sync; "
        "async_to_sync(get_channel_layer().new_channel)()",
        "from senextrader.celery import app\nwith app.connection_for_write() as c: "
        "c.ensure_connection(max_retries=1)",
        "from senextrader.celery import app; app.backend.get('x')",
    ],
    ids=["database", "cache", "channel-layer", "celery-broker", "celery-results"],
)
def test_the_app_refuses_a_server_its_ca_did_not_sign(
    foreign_servers, trusted, client: str
) -> None:
    # The foreign servers' certificates name the right address; only their signer is wrong.
    result = run_manage("shell", "--command", client, env=_tls_env(*foreign_servers, trusted.ca))

    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr
