"""The Compose stack, run rootless with podman-compose on the image tests' host.

One host serves both: the same unprivileged `builder` user with linger, the stand-in images
in its storage, and the images the image tests built (the Compose files name them in `.env`,
so `up` builds nothing). Adds podman-compose (Debian 13 packages it) and a project directory
of its own with the app, the Compose files and `.env`.
"""

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "molecule" / "testhost"))

from imagehost import BASE_IMAGE, BUILDER, ROOT, ImageHost, Result

PROJECT = "senex"
# The project's checkout on the host, apart from the image tests' build context.
PROJECT_DIR = f"/home/{BUILDER}/compose"
# A bound on one podman-compose command; `up -d` returns once every container is started.
COMPOSE_TIMEOUT = 600
VOLUMES = {f"{PROJECT}_postgres_data", f"{PROJECT}_redis_data", f"{PROJECT}_media"}


def dotenv_values(
    web_port: int, postgres_port: int, redis_port: int, image: str, dev_image: str
) -> dict[str, str]:
    """The `.env` a developer would write, pointing at the stand-ins; placeholders only."""
    return {
        "POSTGRES_IMAGE": "localhost/senex-standin-postgres:17",
        "REDIS_IMAGE": "localhost/senex-standin-redis:8",
        "BASE_IMAGE": BASE_IMAGE,
        "BUILD_PACKAGES": "",
        "SENEX_IMAGE": image,
        "SENEX_DEV_IMAGE": dev_image,
        "WEB_PORT": str(web_port),
        "POSTGRES_PORT": str(postgres_port),
        "REDIS_PORT": str(redis_port),
        "DB_PASSWORD": "compose-test-db-password",
        "REDIS_PASSWORD": "compose-test-redis-password",
        "SECRET_KEY": "compose-test-secret-key-not-used-anywhere-else-0123456789",
        "FIELD_ENCRYPTION_KEY": "Yl9kHqFqj4b1ZxGmUoYyVdJc6lK9qkJv0Wq1t5mXyPE=",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "LOG_LEVEL": "INFO",
        # The test host's user gets no cgroup controllers (nspawn on a cgroup v1 machine), and
        # a limit that cannot be applied keeps its container from starting.
        **{
            f"{service}_{resource}": "0"
            for service in ("POSTGRES", "REDIS", "WEB", "WORKER", "BEAT")
            for resource in ("CPUS", "MEMORY")
        },
    }


def dotenv(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


class ComposeHost(ImageHost):
    @classmethod
    def of(cls, host: ImageHost) -> "ComposeHost":
        """The same booted and prepared host, with the Compose methods."""
        compose = cls(host.name, host.ssh_port)
        compose.identity_file = host.identity_file
        return compose

    def prepare_compose(self) -> None:
        self.check(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
            " podman-compose >/dev/null"
        )
        self.load_standin("postgres")
        self.load_standin("redis")

    def upload_project(self, env: str) -> None:
        """The app, docker/, the Compose files and `.env`, as a checkout would have them."""
        self.upload_context(PROJECT_DIR)
        for path in sorted(ROOT.glob("docker-compose*.yml")):
            self.check(f"cat > {PROJECT_DIR}/{path.name}", user=BUILDER, stdin=path.read_bytes())
        self.check(f"umask 077 && cat > {PROJECT_DIR}/.env", user=BUILDER, stdin=env.encode())

    def compose(self, override: str, args: str) -> Result:
        # podman-compose 1.3 waits without end for a dependency that never becomes healthy.
        return self.ssh(
            f"cd {PROJECT_DIR} && timeout {COMPOSE_TIMEOUT}"
            f" podman-compose -f docker-compose.yml -f {override} {args}",
            user=BUILDER,
        )

    def containers(self) -> dict[str, dict]:
        """Service name to podman's view of its container (State, Status, ExitCode)."""
        listing = self.check(
            f"podman ps --all --format json --filter label=io.podman.compose.project={PROJECT}",
            user=BUILDER,
        ).stdout
        return {
            entry["Labels"]["com.docker.compose.service"]: entry
            for entry in json.loads(listing or "[]")
        }

    def volumes(self) -> set[str]:
        return set(self.check("podman volume ls --format '{{.Name}}'", user=BUILDER).stdout.split())


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_get(url: str, attempts: int = 15) -> tuple[int, str]:
    """Status and body, redirects not followed (a 302 is an answer here). Retries refused or
    reset connections: the port forwarder can lag a moment behind the container's health."""
    opener = urllib.request.build_opener(NoRedirect)
    for attempt in range(attempts):
        try:
            with opener.open(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (ConnectionError, urllib.error.URLError):
            if attempt == attempts - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")
