"""A test host with rootless Podman that builds the production image.

Shared by the image and Compose tests and the benchmarks (`bench/`), which import it from
here rather than from each other. It drives the test-host tooling (`testhost.py`, next to
this file): boots a bare Debian 13 host, installs Podman, creates an unprivileged `builder`
user, loads the stand-in Python base image into that user's storage, copies the build
context over SSH and builds there as that user.
"""

import hashlib
import io
import json
import shlex
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTHOST = Path(__file__).resolve().with_name("testhost.py")
BASE_IMAGE = "localhost/senex-standin-python:trixie"
BUILDER = "builder"
CONTEXT = f"/home/{BUILDER}/context"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Debian 13's podman needs aardvark-dns and nftables besides these (see the test-host notes).
PODMAN_PACKAGES = "podman uidmap passt dbus-user-session aardvark-dns nftables"
# The tests' build: every pinned dependency ships a wheel, so libpq-dev stands in for the
# production compilers; it is small and leaves headers to look for in the runtime stage.
TEST_BUILD_PACKAGES = "libpq-dev"
# The file a code-only change touches: any module of the app.
BUILD_CONTEXT_CHANGE = "app/senextrader/urls.py"
# The host that builds the shared production image (`testhost.py appimage`) and its SSH port.
APP_IMAGE_HOST = ("appimage", 2219)
APP_IMAGE = "localhost/senex-trader"


def testhost(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(TESTHOST), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"testhost.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class ImageHost:
    """One booted test host, reached over SSH as root or as the builder user."""

    def __init__(self, name: str, ssh_port: int) -> None:
        self.name = name
        self.ssh_port = ssh_port
        self.identity_file = ""

    def create(self) -> None:
        info = json.loads(testhost("create", self.name, "--ssh-port", str(self.ssh_port)))
        self.identity_file = info["identity_file"]

    def destroy(self) -> None:
        testhost("destroy", self.name)

    def _ssh_argv(self, user: str) -> list[str]:
        return [
            "ssh",
            "-i",
            self.identity_file,
            "-p",
            str(self.ssh_port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"{user}@127.0.0.1",
        ]

    def ssh(self, command: str, user: str = "root", stdin: bytes | None = None) -> Result:
        result = subprocess.run(
            [*self._ssh_argv(user), command],
            input=stdin,
            capture_output=True,
            check=False,
        )
        return Result(
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )

    def check(self, command: str, user: str = "root", stdin: bytes | None = None) -> Result:
        result = self.ssh(command, user=user, stdin=stdin)
        if result.returncode != 0:
            raise RuntimeError(
                f"on {self.name} as {user}: {command}\nexit {result.returncode}\n{result.output}"
            )
        return result

    def podman(self, args: str) -> Result:
        """Runs `podman ARGS` as the unprivileged builder (rootless)."""
        return self.ssh(f"podman {args}", user=BUILDER)

    def prepare(self) -> None:
        """Installs podman, creates the builder user and loads the stand-in base image."""
        self.check(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"--no-install-recommends {PODMAN_PACKAGES} >/dev/null"
        )
        self.check(
            f"(id {BUILDER} || useradd --create-home --shell /bin/bash {BUILDER})"
            f" && install -d -o {BUILDER} -g {BUILDER} -m 0700 /home/{BUILDER}/.ssh"
            f" && install -o {BUILDER} -g {BUILDER} -m 0600 /root/.ssh/authorized_keys"
            f" /home/{BUILDER}/.ssh/authorized_keys"
            f" && loginctl enable-linger {BUILDER}"
        )
        self.load_standin("python")
        self.check(f"cat > /home/{BUILDER}/ca.crt", user=BUILDER, stdin=CA_BUNDLE.read_bytes())

    def load_standin(self, name: str) -> None:
        """Loads a stand-in image (python, postgres, redis) into the builder's storage."""
        archive = json.loads(testhost("standins"))[name]
        self.check(
            "cat > standin.tar && podman load --quiet --input standin.tar && rm standin.tar",
            user=BUILDER,
            stdin=Path(archive).read_bytes(),
        )

    def upload_context(self, destination: str = CONTEXT, change: str = "") -> None:
        """Copies app/, docker/ and .dockerignore; `change` appends a comment to that file."""
        self.check(
            f"rm -rf {destination} && mkdir -p {destination} && tar -x -C {destination}",
            user=BUILDER,
            stdin=build_context(change),
        )

    def save(self, image: str, destination: Path) -> None:
        """Saves IMAGE as an OCI archive into DESTINATION on this machine, streamed."""
        self.check(f"podman save --quiet --format oci-archive -o image.tar {image}", user=BUILDER)
        partial = destination.with_name(destination.name + ".partial")
        with open(partial, "wb") as out:
            copied = subprocess.run(
                [*self._ssh_argv(BUILDER), "cat image.tar && rm image.tar"],
                stdout=out,
                stderr=subprocess.PIPE,
                check=False,
            )
        if copied.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"copying {image} from {self.name} failed: {copied.stderr!r}")
        partial.rename(destination)

    def build(
        self,
        tag: str,
        context: str = CONTEXT,
        target: str = "",
        dockerfile: str = "docker/Dockerfile",
        **build_args: str,
    ) -> Result:
        args = {"BASE_IMAGE": BASE_IMAGE, "BUILD_PACKAGES": TEST_BUILD_PACKAGES, **build_args}
        flags = " ".join(f"--build-arg {k}={shlex.quote(v)}" for k, v in args.items())
        if target:
            flags += f" --target {target}"
        return self.check(
            f"cd {context} && podman build --format docker -f {dockerfile} {flags}"
            f" --secret id=ca_bundle,src=/home/{BUILDER}/ca.crt -t {tag} .",
            user=BUILDER,
        )

    def timed_build(self, tag: str, context: str = CONTEXT, **build_args: str) -> float:
        start = time.monotonic()
        self.build(tag, context, **build_args)
        return time.monotonic() - start


def build_context(change: str = "") -> bytes:
    """The build context as a tar: app/, docker/ and .dockerignore, without caches."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in ("app", "docker", ".dockerignore"):
            tar.add(ROOT / path, arcname=path, filter=_skip_caches)
        if change:
            data = (ROOT / change).read_bytes() + b"\n# A code-only change.\n"
            info = tar.gettarinfo(str(ROOT / change), arcname=change)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def context_key() -> str:
    """A hash of the build context's paths and contents, not their times: same sources, same key."""
    digest = hashlib.sha256(BASE_IMAGE.encode())
    with tarfile.open(fileobj=io.BytesIO(build_context())) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            digest.update(f"{member.name} {member.mode} {member.type!r}\n".encode())
            if member.isfile():
                digest.update(tar.extractfile(member).read())
    return digest.hexdigest()[:12]


def app_image(cache: Path) -> dict[str, str]:
    """Builds the production image once per build context on a test host of its own, saves it
    as an OCI archive in CACHE and removes the host; the scenarios that deploy a built image
    (a registry, several hosts) share it. Returns the archive, its image name and version."""
    version = context_key()
    image = f"{APP_IMAGE}:{version}"
    archive = cache / f"senex-trader-{version}.oci.tar"
    if not archive.exists():
        host = ImageHost(*APP_IMAGE_HOST)
        host.create()
        try:
            host.prepare()
            host.upload_context()
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            host.build(image, VERSION=version, REVISION=version, CREATED=created)
            host.save(image, archive)
        finally:
            host.destroy()
        for old in cache.glob("senex-trader-*.oci.tar"):
            if old != archive:
                old.unlink()
    return {"archive": str(archive), "image": image, "version": version}


def _skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = Path(info.name).name
    if name in ("__pycache__", ".pytest_cache", ".ruff_cache") or name.endswith(".pyc"):
        return None
    return info
