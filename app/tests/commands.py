"""Command lines that run the app in subprocesses, as the image runs it."""

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

APP_DIR = Path(__file__).resolve().parents[1]


def manage(*args: str) -> list[str]:
    """The command line of `manage.py ARGS` with this interpreter."""
    return [sys.executable, str(APP_DIR / "manage.py"), *args]


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `manage.py ARGS` with only `env` as its environment; its output captured."""
    return subprocess.run(
        manage(*args), env=env, cwd=APP_DIR, capture_output=True, text=True, check=False
    )


# `celery --app senextrader` with this interpreter.
CELERY = [sys.executable, "-m", "celery", "--app", "senextrader"]


def celery_command(*args: str) -> list[str]:
    """The command line of `celery --app senextrader ARGS` for a worker or beat."""
    return [*CELERY, *args, "--loglevel", "INFO"]


def daphne(port: int, *args: str) -> list[str]:
    """The command line serving the app's ASGI application on 127.0.0.1:PORT."""
    return [
        sys.executable,
        "-m",
        "daphne",
        *args,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "senextrader.asgi:application",
    ]


def gunicorn(port: int) -> list[str]:
    """The same application under Gunicorn with uvicorn's worker class (the image's other route)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        "--workers",
        "1",
        # Gunicorn 27 opens a control socket by default; parallel test servers would collide.
        "--no-control-socket",
        "senextrader.asgi:application",
    ]


ASGI_SERVERS = {"daphne": daphne, "gunicorn": gunicorn}

# The image's Gunicorn configuration (the entrypoint's `gunicorn` route reads it).
GUNICORN_CONFIG = APP_DIR.parent / "docker" / "gunicorn" / "gunicorn.conf.py"


def image_gunicorn(port: int, *, workers: int = 1) -> list[str]:
    """Gunicorn serving the app on 127.0.0.1:PORT with the image's configuration."""
    return [
        *(sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        "senextrader.asgi:application",
    ]


def http_ready(url: str) -> Callable[[], None]:
    """A readiness probe: the server answers /health/simple/."""

    def probe() -> None:
        with urllib.request.urlopen(f"{url}/health/simple/", timeout=2):  # noqa: S310
            pass

    return probe


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object) -> None:
        return None


def http_get(url: str, headers: dict[str, str] | None = None) -> Answer:
    """One GET, redirects not followed (the answer is the redirect), errors as answers."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (http:// only)
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read().decode())


def log_says(log: Path, text: str) -> Callable[[], None]:
    """A readiness probe: the process's log contains `text` (Celery's worker says "ready.")."""

    def probe() -> None:
        if text not in log.read_text():
            raise RuntimeError(f"{log.name} does not say {text!r} yet")

    return probe
