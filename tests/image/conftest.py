"""Fixtures: one test host (img1) with a rootless build of the production image and of the
development image, shared by the image tests and the Compose tests."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The host tooling the tests share with the benchmarks; the test modules import it too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "molecule" / "testhost"))

from imagehost import TESTHOST, ImageHost

HOST_NAME = os.environ.get("SENEX_IMAGE_TEST_HOST", "img1")
SSH_PORT = int(os.environ.get("SENEX_IMAGE_TEST_SSH_PORT", "2211"))
# Published on the test host's loopback, which it shares with this machine.
WEB_PORT = int(os.environ.get("SENEX_IMAGE_TEST_WEB_PORT", "18011"))
IMAGE = "localhost/senex-trader:test"
DEV_IMAGE = "localhost/senex-trader:dev"
CODE_CHANGE_IMAGE = "localhost/senex-trader:code-change"
DEPENDENCIES_IMAGE = "localhost/senex-trader:dependencies-stage"
# The production settings' required variables: placeholders, only for these containers.
APP_ENV = {
    "SECRET_KEY": "image-test-secret-key-not-used-anywhere-else-0123456789",
    "FIELD_ENCRYPTION_KEY": "Yl9kHqFqj4b1ZxGmUoYyVdJc6lK9qkJv0Wq1t5mXyPE=",
    "ALLOWED_HOSTS": "localhost,127.0.0.1",
    "DB_PASSWORD": "image-test",
}


def env_flags(**extra: str) -> str:
    return " ".join(f"-e {key}={value}" for key, value in {**APP_ENV, **extra}.items())


@pytest.fixture(scope="session")
def host() -> Iterator[ImageHost]:
    if os.geteuid() != 0:
        pytest.fail("the image tests boot a test host with systemd-nspawn: run them as root")
    if not TESTHOST.exists():
        pytest.fail(f"{TESTHOST} is missing: the image tests need the test-host tooling")
    image_host = ImageHost(HOST_NAME, SSH_PORT)
    image_host.create()
    try:
        image_host.prepare()
        yield image_host
    finally:
        # Kept on request, to look around after a failure; `testhost.py destroy` removes it.
        if os.environ.get("SENEX_IMAGE_TEST_KEEP_HOST") != "1":
            image_host.destroy()


@pytest.fixture(scope="session")
def build_output(host: ImageHost) -> str:
    """Builds the image once for the session; returns podman build's output."""
    host.upload_context()
    return host.build(IMAGE, VERSION="1.2.3", REVISION="abc1234", CREATED="2026-11-23").output


@pytest.fixture(scope="session")
def dev_image(host: ImageHost, build_output: str) -> str:
    """Builds the development image once for the session (after the build context is on the
    host); returns its name."""
    host.build(DEV_IMAGE, dockerfile="docker/Dockerfile.dev", BUILD_PACKAGES="")
    return DEV_IMAGE
