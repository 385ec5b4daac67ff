"""Paths, locks and checks shared by the test-host tooling."""

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

# The tools this machine needs, and the Debian package that provides each.
REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "nsenter": "util-linux",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
# What labs need besides: namespaces, forwarders, and the registry with its TLS and passwords.
LAB_TOOLS = {
    "ip": "iproute2",
    "socat": "socat",
    "openssl": "openssl",
    "htpasswd": "apache2-utils",
    "docker-registry": "docker-registry",
}
MIRROR = os.environ.get("SENEX_TESTHOST_MIRROR", "http://deb.debian.org/debian")
SUITE = "trixie"


class TesthostError(Exception):
    """A problem the caller can fix; the message says what and how."""


def state_dir() -> Path:
    return Path(os.environ.get("SENEX_TESTHOST_DIR", "/var/lib/senex-testhost"))


def cache_dir() -> Path:
    return Path(os.environ.get("SENEX_TESTHOST_CACHE", "/var/cache/senex-testhost"))


def check_machine(lab: bool = False) -> None:
    """Refuse early, naming the fix, when this machine cannot boot test hosts (or run labs)."""
    if os.geteuid() != 0:
        raise TesthostError(
            "must run as root: test hosts boot with systemd-nspawn (try: sudo ... or run as root)"
        )
    required = REQUIRED_TOOLS | (LAB_TOOLS if lab else {})
    missing = sorted({pkg for tool, pkg in required.items() if not shutil.which(tool)})
    if missing:
        tools = ", ".join(t for t, p in required.items() if p in missing)
        raise TesthostError(
            f"missing {tools}; install with: apt-get install -y {' '.join(missing)}"
        )


def run(*argv: str | os.PathLike, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, failing with its output when it fails."""
    kwargs.setdefault("check", True)
    try:
        return subprocess.run([str(a) for a in argv], **kwargs)
    except subprocess.CalledProcessError as error:
        output = (error.stderr or error.stdout or "").strip()
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        raise TesthostError(
            f"{' '.join(map(str, argv))!r} failed ({error.returncode}): {output}"
        ) from None


@contextlib.contextmanager
def locked(name: str, directory: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock so concurrent callers never build or boot the same thing twice."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# Documentation is never read on a test host or in a stand-in image: leaving it out keeps
# both small and every copy fast.
DPKG_OPTIONS = [
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
]
