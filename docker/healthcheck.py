#!/usr/bin/env python3
"""Container health check for whichever role runs as PID 1.

Web servers (Daphne, Gunicorn): GET HEALTH_URL must answer 200; its default is HEALTH_PATH
(the image's build argument, /health/simple/) on 127.0.0.1 and the port of WEB_BIND (8000).
Under socket activation the servers listen there too, next to the socket systemd passes, so
the same check works.

Celery worker: a ping sent through the broker to the worker's own node (the --hostname it
was started with) must come back, the way a task reaches it: a worker that lost its broker
connection, or a broker that refuses writes, fails the check.

Celery beat: a key written to the broker beat publishes to must read back, so an
unreachable broker or one refusing writes (out of memory under noeviction) fails the check.

Other roles (one-shots) are healthy while PID 1 runs, which podman already knows.

The Celery checks load the Celery app SENEX_CELERY_APP names (as `celery --app` takes it,
default senextrader) with the app's settings from the working directory (the image's /app)
and finish within DEADLINE_SECONDS, below the image's HEALTHCHECK --timeout.
`--pid PID` checks another process than PID 1, the one it would be in a container.
"""

import argparse
import os
import secrets
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from celery import Celery

WEB_SERVERS = ("daphne", "gunicorn")
# The whole Celery check, imports included, stays below the HEALTHCHECK --timeout of 10 s
# with room for podman's exec: importing the app alone took 5 s on a host loaded 15 per core.
DEADLINE_SECONDS = 8
# How long the worker has to answer the ping, or Redis a command.
ANSWER_SECONDS = 2.0
# Celery's global options that take a value, so the value is not taken for the subcommand.
CELERY_OPTIONS_WITH_VALUE = {
    "-A",
    "--app",
    "-b",
    "--broker",
    "--result-backend",
    "--loader",
    "--config",
    "--workdir",
}


def process_command(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part for part in raw.decode(errors="replace").split("\0") if part]


def celery_subcommand(command: list[str]) -> tuple[str, list[str]] | None:
    """`worker` or `beat` and the arguments after it, when `command` runs Celery."""
    names = [Path(part).name for part in command[:3]]
    if "celery" not in names:
        return None
    args = iter(command[names.index("celery") + 1 :])
    for arg in args:
        if arg in CELERY_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return arg, list(args)
    return None


def worker_node(args: list[str]) -> str:
    """The node name the worker took: its last --hostname, expanded as Celery does."""
    from celery.utils.nodenames import default_nodename, host_format

    hostname = None
    for index, arg in enumerate(args):
        if arg in ("-n", "--hostname") and index + 1 < len(args):
            hostname = args[index + 1]
        elif arg.startswith("--hostname="):
            hostname = arg.partition("=")[2]
    return host_format(default_nodename(hostname))


def default_url() -> str:
    port = os.environ.get("WEB_BIND", "0.0.0.0:8000").rpartition(":")[2] or "8000"
    path = os.environ.get("HEALTH_PATH") or "/health/simple/"
    return f"http://127.0.0.1:{port}/{path.lstrip('/')}"


def host_header() -> dict[str, str]:
    """A Host that Django's ALLOWED_HOSTS accepts: production rarely lists 127.0.0.1."""
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    if not hosts or {"*", "localhost", "127.0.0.1"} & set(hosts):
        return {}
    return {"Host": hosts[0].lstrip(".")}


def check_http(url: str) -> int:
    request = urllib.request.Request(url, headers=host_header())  # noqa: S310
    # The URL comes from the container's own environment, never from a request.
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            status = response.status
    except (urllib.error.URLError, OSError) as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1
    print(f"healthcheck: {url}: HTTP {status}")
    return 0 if status == 200 else 1


class DeadlinePassed(BaseException):
    """Not an Exception: kombu retries a publish on connection errors and must not catch it."""


def _deadline_passed(signum: int, frame: object) -> None:
    raise DeadlinePassed


def celery_app() -> "Celery":
    # The image runs the check in /app; the script itself lives elsewhere on PATH.
    sys.path.insert(0, os.getcwd())
    from celery.app.utils import find_app

    return find_app(os.environ.get("SENEX_CELERY_APP") or "senextrader")


def check_worker(node: str) -> int:
    app = celery_app()
    replies = app.control.ping(destination=[node], timeout=ANSWER_SECONDS)
    if not any(node in reply for reply in replies):
        print(
            f"healthcheck: worker {node} did not answer a ping through the broker", file=sys.stderr
        )
        return 1
    print(f"healthcheck: worker {node} answered a ping through the broker")
    return 0


def redis_py_url(broker_url: str) -> str:
    """The broker URL as redis-py takes it: kombu's redis+socket://...?virtual_host=N (a Unix
    socket) is redis-py's unix://...?db=N; other URLs are the same for both."""
    url = urlsplit(broker_url)
    if url.scheme != "redis+socket":
        return broker_url
    query = [
        ("db" if name == "virtual_host" else name, value) for name, value in parse_qsl(url.query)
    ]
    return urlunsplit(("unix", url.netloc, url.path, urlencode(query), ""))


def check_beat() -> int:
    import redis

    app = celery_app()
    client = redis.Redis.from_url(
        redis_py_url(app.conf.broker_url),
        socket_connect_timeout=ANSWER_SECONDS,
        socket_timeout=ANSWER_SECONDS,
        # A rediss:// broker: the same certificate checks as beat's own connection.
        **(app.conf.broker_use_ssl or {}),
    )
    # Beat's publishes are writes; a PING would pass on a broker that refuses them.
    key = f"senex:healthcheck:{socket.gethostname()}:{os.getpid()}"
    token = secrets.token_hex(8)
    try:
        client.set(key, token, ex=60)
        read = client.get(key)
        client.delete(key)
    finally:
        client.close()
    if read != token.encode():
        print("healthcheck: beat's broker did not return what was written", file=sys.stderr)
        return 1
    print("healthcheck: beat's broker took a write and returned it")
    return 0


def check_celery(role: str, args: list[str]) -> int:
    signal.signal(signal.SIGALRM, _deadline_passed)
    signal.setitimer(signal.ITIMER_REAL, DEADLINE_SECONDS)
    try:
        if role == "worker":
            return check_worker(worker_node(args))
        return check_beat()
    except DeadlinePassed:
        print(
            f"healthcheck: celery {role}: no answer within {DEADLINE_SECONDS:g} s", file=sys.stderr
        )
        return 1
    except Exception as error:
        # Redis and kombu errors name the host and port, never the password.
        print(f"healthcheck: celery {role}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pid", type=int, default=1, help="the process to check (default: PID 1, the server)"
    )
    pid = parser.parse_args(argv).pid
    command = process_command(pid)
    names = [Path(part).name for part in command[:3]]
    # gunicorn renames its master "gunicorn: master [...]" when setproctitle is installed.
    if any(name.startswith(WEB_SERVERS) for name in names):
        return check_http(os.environ.get("HEALTH_URL") or default_url())
    celery = celery_subcommand(command)
    if celery is not None and celery[0] in ("worker", "beat"):
        return check_celery(*celery)
    print(f"healthcheck: {' '.join(names) or f'PID {pid}'} is running; nothing else to check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
