#!/usr/bin/env python3
"""Wait until PostgreSQL and Redis accept connections, with bounded retries.

Exits 69 when a service never answered, 64 when a setting is invalid.
Reads DB_HOST/DB_PORT and REDIS_URL (or the file REDIS_URL_FILE names), WAIT_RETRIES
(default 30) and WAIT_DELAY (seconds, default 2). A DB_HOST that is a directory (starts with /)
and a unix:// REDIS_URL are Unix sockets, as libpq and redis-py take them: the socket file
(DB_HOST/.s.PGSQL.DB_PORT, the URL's path) must accept a connection. Prints every attempt with
host:port or the socket's path only: REDIS_URL carries a password, so the URL itself is never
printed. With LOG_FORMAT=json (the
entrypoint exports it) each line is one JSON object, like the app's.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

CONNECT_TIMEOUT = 3.0
# sysexits.h: a bad setting is a usage error; a service that never answered is unavailable.
EX_USAGE = 64
EX_UNAVAILABLE = 69


def say(message: str, *, level: str = "info", stream=sys.stdout) -> None:
    if os.environ.get("LOG_FORMAT") == "json":
        line = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": level,
            "logger": "wait-for-services",
            "event": message,
            "revision": os.environ.get("SENEX_VERSION", "dev"),
        }
        print(json.dumps(line), file=stream, flush=True)
    else:
        print(f"wait-for-services: {message}", file=stream, flush=True)


def fail(message: str, status: int = EX_USAGE) -> None:
    say(message, level="error", stream=sys.stderr)
    sys.exit(status)


def positive_int(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    if not raw.isdigit() or int(raw) < 1:
        fail(f"{name} must be a positive integer, got {raw!r}; fix it in the container env")
    return int(raw)


def seconds(name: str, default: str) -> float:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        fail(f"{name} must be a number of seconds, got {raw!r}; fix it in the container env")
    return value


def port(name: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        fail(f"{name} must be a TCP port, got {raw!r}")
    return int(raw)


def redis_url() -> str:
    path = os.environ.get("REDIS_URL_FILE")
    if path and "REDIS_URL" not in os.environ:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            fail(f"cannot read REDIS_URL_FILE {path}: {error.strerror}")
    return os.environ.get("REDIS_URL", "redis://localhost:6379/0")


# Where a service listens: (host, port) over TCP, or the path of a Unix socket.
Address = tuple[str, int] | str

REDIS_FORMS = "redis[s]://[:PASSWORD@]HOST:PORT/DB or unix://[:PASSWORD@]/PATH/TO/SOCKET?db=DB"


def targets() -> list[tuple[str, Address, str]]:
    """(service, where it listens, the variables that set it)."""
    db_host = os.environ.get("DB_HOST", "localhost")
    db_port = port("DB_PORT", os.environ.get("DB_PORT", "5432"))
    # libpq: a host that starts with / is the directory of the server's socket.
    database: Address = (
        f"{db_host}/.s.PGSQL.{db_port}" if db_host.startswith("/") else (db_host, db_port)
    )
    try:
        url = urlsplit(redis_url())
        redis_host, redis_port = url.hostname, url.port or 6379
    except ValueError:
        fail(f"REDIS_URL is not a valid URL; expected {REDIS_FORMS}")
    if url.scheme == "unix" and url.path.startswith("/"):
        cache: Address = url.path
    elif url.scheme in ("redis", "rediss") and redis_host:
        cache = (redis_host, redis_port)
    else:
        fail(f"REDIS_URL must look like {REDIS_FORMS}")
    return [
        ("PostgreSQL", database, "DB_HOST and DB_PORT"),
        ("Redis", cache, "REDIS_URL"),
    ]


def described(address: Address) -> str:
    return address if isinstance(address, str) else f"{address[0]}:{address[1]}"


def reachable(address: Address) -> str | None:
    """None when a connection succeeds, else the reason it did not."""
    try:
        if isinstance(address, str):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
                unix.settimeout(CONNECT_TIMEOUT)
                unix.connect(address)
        else:
            with socket.create_connection(address, timeout=CONNECT_TIMEOUT):
                pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def wait(service: str, address: Address, variables: str, retries: int, delay: float) -> None:
    where = described(address)
    for attempt in range(1, retries + 1):
        reason = reachable(address)
        if reason is None:
            say(f"{service} at {where} is up")
            return
        say(
            f"{service} at {where}: attempt {attempt}/{retries} failed ({reason})",
            level="warning",
        )
        if attempt < retries:
            time.sleep(delay)
    fail(
        f"{service} at {where} did not answer after {retries}"
        f" attempt{'s' if retries > 1 else ''};"
        f" check {variables} (or raise WAIT_RETRIES/WAIT_DELAY if it starts slowly)",
        EX_UNAVAILABLE,
    )


def main() -> None:
    retries = positive_int("WAIT_RETRIES", "30")
    delay = seconds("WAIT_DELAY", "2")
    for service, address, variables in targets():
        wait(service, address, variables, retries, delay)


if __name__ == "__main__":
    main()
