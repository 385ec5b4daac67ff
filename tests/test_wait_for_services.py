"""docker/wait_for_services.py against real listening sockets: TCP, and the Unix sockets the
app reaches PostgreSQL and Redis by on the database's host (DB_HOST a directory, unix://)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docker/wait_for_services.py"


def run(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={"PATH": os.environ["PATH"], "WAIT_RETRIES": "2", "WAIT_DELAY": "0", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listen_unix(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    return server


def test_waits_for_the_unix_sockets_of_both_services(tmp_path: Path) -> None:
    with (
        listen_unix(tmp_path / ".s.PGSQL.5432"),
        listen_unix(tmp_path / "redis.sock"),
    ):
        result = run(
            DB_HOST=str(tmp_path),
            DB_PORT="5432",
            REDIS_URL=f"unix://:hunter2-redis-password@{tmp_path}/redis.sock?db=0",
        )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"PostgreSQL at {tmp_path}/.s.PGSQL.5432 is up" in result.stdout
    assert f"Redis at {tmp_path}/redis.sock is up" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_a_missing_socket_fails_naming_its_path(tmp_path: Path) -> None:
    with listen_unix(tmp_path / "redis.sock"):
        result = run(DB_HOST=str(tmp_path), REDIS_URL=f"unix://:pw@{tmp_path}/redis.sock")

    assert result.returncode == 69
    assert f"PostgreSQL at {tmp_path}/.s.PGSQL.5432 did not answer after 2 attempts" in (
        result.stderr
    )


def test_a_socket_database_and_a_tcp_redis_mix(tmp_path: Path) -> None:
    with listen_unix(tmp_path / ".s.PGSQL.6543"), socket.create_server(("127.0.0.1", 0)) as tcp:
        port = tcp.getsockname()[1]
        result = run(
            DB_HOST=str(tmp_path), DB_PORT="6543", REDIS_URL=f"redis://:pw@127.0.0.1:{port}/0"
        )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Redis at 127.0.0.1:{port} is up" in result.stdout


def test_a_redis_url_of_another_scheme_is_refused(tmp_path: Path) -> None:
    result = run(DB_HOST=str(tmp_path), REDIS_URL="memcached://cache:11211")

    assert result.returncode == 64
    assert "unix://[:PASSWORD@]/PATH/TO/SOCKET?db=DB" in result.stderr
