#!/usr/bin/env python3
"""Container health check for whichever role runs as PID 1.

Web servers (Daphne, Gunicorn): GET HEALTH_URL must answer 200; its default is
/health/simple/ on 127.0.0.1 and the port of WEB_BIND (8000). Under socket activation the
servers listen there too, next to the socket systemd passes, so the same check works.
Other roles (Celery worker and beat, one-shots) are healthy while PID 1
runs, which podman already knows; their deep checks belong to the deploy's gates.
"""

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

WEB_SERVERS = ("daphne", "gunicorn")


def pid1_command() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [Path(part).name for part in raw.decode(errors="replace").split("\0") if part]


def default_url() -> str:
    port = os.environ.get("WEB_BIND", "0.0.0.0:8000").rpartition(":")[2] or "8000"
    return f"http://127.0.0.1:{port}/health/simple/"


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


def main() -> int:
    command = pid1_command()
    # gunicorn renames its master "gunicorn: master [...]" when setproctitle is installed.
    if any(part.startswith(WEB_SERVERS) for part in command[:3]):
        return check_http(os.environ.get("HEALTH_URL") or default_url())
    print(f"healthcheck: {' '.join(command[:3]) or 'PID 1'} is running; no HTTP check for it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
