"""Real PostgreSQL and Redis servers for the test session, started from Debian's binaries.

Each gets a temporary directory and a free loopback port, and is removed afterwards.
PostgreSQL refuses to run as root, so as root its programs run as the `postgres` user.
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from tests.certificates import ServerFiles

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        candidates.append(bindir)
    # Debian installs each major version side by side; prefer the newest.
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found: "
        "install them with `apt-get install postgresql`."
    )


def _redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server not found: install it with `apt-get install redis-server`."
        )
    return path


def wait_until(
    check: Callable[[], object], what: str, process: subprocess.Popen, log: Path
) -> None:
    """Call `check` until it stops raising; fail with the log on exit or timeout."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            check()
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} did not answer within {STARTUP_TIMEOUT:g} s:\n{log.read_text()}"
                ) from None
            time.sleep(0.1)
        else:
            return


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str


# TLS only, as the stack's database host is set up for other hosts: plaintext TCP is refused.
TLS_HBA = "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"


def _tls_arguments(workdir: Path, tls: ServerFiles, owner: dict) -> list[str]:
    """PostgreSQL's TLS settings, its key and certificate copied where it may read them."""
    for name, source in (("server.crt", tls.certificate), ("server.key", tls.key)):
        shutil.copyfile(source, workdir / name)
        # PostgreSQL refuses a key others may read.
        os.chmod(workdir / name, 0o600)
        if owner:
            os.chown(workdir / name, owner["uid"], owner["gid"])
    (workdir / "pg_hba.conf").write_text(TLS_HBA)
    settings = {
        "ssl": "on",
        "ssl_cert_file": workdir / "server.crt",
        "ssl_key_file": workdir / "server.key",
        "hba_file": workdir / "pg_hba.conf",
    }
    return [argument for name, value in settings.items() for argument in ("-c", f"{name}={value}")]


@contextlib.contextmanager
def postgres_server(tls: ServerFiles | None = None) -> Iterator[Postgres]:
    """A PostgreSQL of its own; with `tls`, serving that certificate and TLS connections only."""
    bindir = _postgres_bindir()
    run_as = {}
    if os.geteuid() == 0:
        run_as = {"user": "postgres", "group": "postgres", "extra_groups": []}
    workdir = Path(tempfile.mkdtemp(prefix="senex-test-postgres-"))
    try:
        if run_as:
            owner = pwd.getpwnam("postgres")
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
        server = Postgres(host="127.0.0.1", port=free_port(), user="senex", password="senex-test")
        pwfile = workdir / "pwfile"
        pwfile.write_text(server.password)
        if run_as:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        log = workdir / "postgres.log"
        owner_ids = {"uid": owner.pw_uid, "gid": owner.pw_gid} if run_as else {}
        tls_arguments = _tls_arguments(workdir, tls, owner_ids) if tls else []
        subprocess.run(
            [
                bindir / "initdb",
                "--pgdata",
                workdir / "data",
                "--username",
                server.user,
                "--pwfile",
                pwfile,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=workdir,
            **run_as,
        )
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [
                    bindir / "postgres",
                    "-D",
                    workdir / "data",
                    "-h",
                    server.host,
                    "-p",
                    str(server.port),
                    "-k",
                    workdir,
                    # Durability is not under test; speed is welcome.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    *tls_arguments,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                **run_as,
            )
        try:

            def connect() -> None:
                psycopg.connect(
                    host=server.host,
                    port=server.port,
                    user=server.user,
                    password=server.password,
                    dbname="postgres",
                    connect_timeout=2,
                    sslmode="require" if tls else "disable",
                ).close()

            wait_until(connect, "PostgreSQL", process, log)
            yield server
        finally:
            stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Redis:
    host: str
    port: int
    password: str
    tls: bool = False

    def url(self, db: int) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{self.password}@{self.host}:{self.port}/{db}"


@contextlib.contextmanager
def redis_server(port: int | None = None, tls: ServerFiles | None = None) -> Iterator[Redis]:
    """A Redis of its own, on `port` (a restart of one that stopped) or a free one; with
    `tls`, serving that certificate on it and no plaintext port."""
    workdir = Path(tempfile.mkdtemp(prefix="senex-test-redis-"))
    server = Redis(
        host="127.0.0.1", port=port or free_port(), password="senex-test", tls=tls is not None
    )
    ports = f"port {server.port}\n"
    if tls:
        ports = (
            f"port 0\ntls-port {server.port}\ntls-cert-file {tls.certificate}\n"
            f"tls-key-file {tls.key}\ntls-ca-cert-file {tls.ca}\ntls-auth-clients no\n"
        )
    # The configuration goes in on stdin, so the password is not in the process list.
    config = (
        f"bind {server.host}\n{ports}requirepass {server.password}\n"
        f'dir {workdir}\nsave ""\nappendonly no\n'
    )
    log = workdir / "redis.log"
    try:
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [_redis_server(), "-"],
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                text=True,
            )
            process.stdin.write(config)
            process.stdin.close()
        try:
            client = redis.Redis(
                host=server.host,
                port=server.port,
                password=server.password,
                socket_timeout=2,
                **({"ssl": True, "ssl_ca_certs": str(tls.ca)} if tls else {}),
            )
            wait_until(client.ping, "Redis", process, log)
            yield server
        finally:
            stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def running(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    ready: Callable[[], object],
    what: str,
) -> Iterator[subprocess.Popen]:
    """Run a long-lived command until the block ends; `ready` tells when it serves."""
    with log.open("w") as log_file:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        wait_until(ready, what, process, log)
        yield process
    finally:
        stop(process)


# Redis databases: cache and channel layer, Celery broker, Celery results.
CACHE_DB, BROKER_DB, RESULTS_DB = 0, 1, 2


@dataclass(frozen=True)
class Servers:
    postgres: Postgres
    redis: Redis

    def env(self) -> dict[str, str]:
        """The variables that point the app at these servers."""
        return {
            "DB_HOST": self.postgres.host,
            "DB_PORT": str(self.postgres.port),
            "DB_USER": self.postgres.user,
            "DB_PASSWORD": self.postgres.password,
            "DB_SSL_MODE": "disable",
            "REDIS_URL": self.redis.url(CACHE_DB),
            "CELERY_BROKER_URL": self.redis.url(BROKER_DB),
            "CELERY_RESULT_BACKEND": self.redis.url(RESULTS_DB),
        }
