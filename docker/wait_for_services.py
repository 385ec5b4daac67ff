#!/usr/bin/env python3
"""Wait until PostgreSQL and Redis accept TCP connections, with bounded retries.

Exits 69 when a service never answered, 64 when a setting is invalid.
Reads DB_HOST/DB_PORT and REDIS_URL (or the file REDIS_URL_FILE names), WAIT_RETRIES
(default 30) and WAIT_DELAY (seconds, default 2). Prints every attempt with host:port only:
REDIS_URL carries a password, so the URL itself is never printed. With LOG_FORMAT=json (the
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


def targets() -> list[tuple[str, str, int, str]]:
    """(service, host, port, the variables that set them)."""
    db_host = os.environ.get("DB_HOST", "localhost")
    db_port = port("DB_PORT", os.environ.get("DB_PORT", "5432"))
    try:
        url = urlsplit(redis_url())
        redis_host, redis_port = url.hostname, url.port or 6379
    except ValueError:
        fail("REDIS_URL is not a valid URL; expected redis://[:PASSWORD@]HOST:PORT/DB")
    if url.scheme not in ("redis", "rediss") or not redis_host:
        fail("REDIS_URL must look like redis://[:PASSWORD@]HOST:PORT/DB")
    return [
        ("PostgreSQL", db_host, db_port, "DB_HOST and DB_PORT"),
        ("Redis", redis_host, redis_port, "REDIS_URL"),
    ]


def reachable(host: str, port_number: int) -> str | None:
    """None when a TCP connection succeeds, else the reason it did not."""
    try:
        with socket.create_connection((host, port_number), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as error:
        return error.strerror or str(error)


def wait(service: str, host: str, port_number: int, variables: str, retries: int, delay: float):
    for attempt in range(1, retries + 1):
        reason = reachable(host, port_number)
        if reason is None:
            say(f"{service} at {host}:{port_number} is up")
            return
        say(
            f"{service} at {host}:{port_number}: attempt {attempt}/{retries} failed ({reason})",
            level="warning",
        )
        if attempt < retries:
            time.sleep(delay)
    fail(
        f"{service} at {host}:{port_number} did not answer after {retries}"
        f" attempt{'s' if retries > 1 else ''};"
        f" check {variables} (or raise WAIT_RETRIES/WAIT_DELAY if it starts slowly)",
        EX_UNAVAILABLE,
    )


def main() -> None:
    retries = positive_int("WAIT_RETRIES", "30")
    delay = seconds("WAIT_DELAY", "2")
    for service, host, port_number, variables in targets():
        wait(service, host, port_number, variables, retries, delay)


if __name__ == "__main__":
    main()
