"""Local stand-ins for the official images, since no registry can be reached from here.

Each image's root filesystem is built from Debian packages with mmdebstrap on this machine,
then a short-lived container with podman turns it into an image (`podman import`) and saves
it as an OCI archive. Archives are cached under names that carry a hash of their definition.
"""

import hashlib
import json
import shutil
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import DPKG_OPTIONS, MIRROR, SUITE, cache_dir, check_machine, locked, run

IMAGES_DIR = Path(__file__).parent / "images"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PG_BIN = "/usr/lib/postgresql/17/bin"

# name: image tag, Debian packages, users created with uid/gid 999 before the packages are
# installed (so the packages keep that id, as in the official images), the entrypoint script
# from images/, and the `podman import --change` instructions.
IMAGES = {
    "python": {
        "tag": "localhost/senex-standin-python:trixie",
        "packages": ["python3", "python3-venv", "libpq5", "ca-certificates"],
        "user": None,
        "entrypoint": None,
        "changes": [f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'],
    },
    "postgres": {
        "tag": "localhost/senex-standin-postgres:17",
        "packages": ["postgresql-17"],
        "user": ("postgres", "/var/lib/postgresql"),
        "entrypoint": "postgres-entrypoint.sh",
        "changes": [
            f"ENV PATH={PG_BIN}:{PATH}",
            "ENV LANG=C.UTF-8",
            "ENV PGDATA=/var/lib/postgresql/data",
            'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
            'CMD ["postgres"]',
            "STOPSIGNAL SIGINT",
            "EXPOSE 5432",
            "VOLUME /var/lib/postgresql/data",
        ],
    },
    "redis": {
        "tag": "localhost/senex-standin-redis:8",
        "packages": ["redis-server"],
        "user": ("redis", "/data"),
        "entrypoint": "redis-entrypoint.sh",
        "changes": [
            f"ENV PATH={PATH}",
            'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
            'CMD ["redis-server"]',
            "WORKDIR /data",
            "EXPOSE 6379",
            "VOLUME /data",
        ],
    },
    # The official caddy image's layout: config in /etc/caddy, state (certificates, the
    # internal CA, ACME accounts) under XDG_DATA_HOME=/data.
    "caddy": {
        "tag": "localhost/senex-standin-caddy:2",
        "packages": ["caddy", "ca-certificates"],
        "user": None,
        "entrypoint": None,
        "changes": [
            f"ENV PATH={PATH}",
            "ENV XDG_CONFIG_HOME=/config",
            "ENV XDG_DATA_HOME=/data",
            'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]',
            "WORKDIR /srv",
            "EXPOSE 80",
            "EXPOSE 443",
            "VOLUME /data",
        ],
    },
    # The exporters: Debian's builds of the same projects, started as their images start them.
    "postgres-exporter": {
        "tag": "localhost/senex-standin-postgres-exporter:0",
        "packages": ["prometheus-postgres-exporter"],
        "user": None,
        "entrypoint": None,
        "changes": [
            f"ENV PATH={PATH}",
            'ENTRYPOINT ["/usr/bin/prometheus-postgres-exporter"]',
            "USER 65534:65534",
            "EXPOSE 9187",
        ],
    },
    "redis-exporter": {
        "tag": "localhost/senex-standin-redis-exporter:1",
        "packages": ["prometheus-redis-exporter"],
        "user": None,
        "entrypoint": None,
        "changes": [
            f"ENV PATH={PATH}",
            'ENTRYPOINT ["/usr/bin/prometheus-redis-exporter"]',
            "USER 65534:65534",
            "EXPOSE 9121",
        ],
    },
    # Flower is not packaged by Debian: its wheel from PyPI (the version of the official
    # image) on Debian's Celery, Tornado and Prometheus client.
    "flower": {
        "tag": "localhost/senex-standin-flower:2",
        "packages": [
            "celery",
            "python3-redis",
            "python3-tornado",
            "python3-humanize",
            "python3-prometheus-client",
            "python3-tz",
            "ca-certificates",
        ],
        "wheel": "flower==2.0.1",
        "user": None,
        "entrypoint": None,
        "changes": [
            f"ENV PATH={PATH}",
            "ENV PYTHONUNBUFFERED=1",
            'CMD ["celery", "flower"]',
            "WORKDIR /data",
            "USER 1000:1000",
            "EXPOSE 5555",
        ],
    },
}
BUILDER_PACKAGES = ["podman", "ca-certificates"]


def build() -> dict[str, str]:
    """Return {name: OCI archive path}, building the archives that are missing."""
    check_machine()
    archives = {name: _archive(name) for name in IMAGES}
    with locked("standins"):
        missing = [name for name, path in archives.items() if not path.is_file()]
        if missing:
            _build(missing, archives)
    return {name: str(path) for name, path in archives.items()}


def _archive(name: str) -> Path:
    definition = IMAGES[name]
    digest = hashlib.sha256(json.dumps([definition, MIRROR, DPKG_OPTIONS]).encode())
    if definition["entrypoint"]:
        digest.update((IMAGES_DIR / definition["entrypoint"]).read_bytes())
    tag = definition["tag"].removeprefix("localhost/").replace(":", "-")
    return cache_dir() / "standins" / f"{tag}-{digest.hexdigest()[:12]}.oci.tar"


def _build(names: list[str], archives: dict[str, Path]) -> None:
    work = cache_dir() / "standins" / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        # mmdebstrap mostly waits on downloads and dpkg; running the builds side by side
        # takes about half the time of one after the other.
        with ThreadPoolExecutor() as pool:
            builder_ready = pool.submit(_builder)
            list(pool.map(lambda name: _rootfs_tarball(name, work), names))
            builder = builder_ready.result()
        script = "set -e\n" + "".join(_import_and_save(name) for name in names)
        # Not booted: the builder only needs podman's storage, never a running container.
        run("systemd-nspawn", "--quiet", f"--directory={builder}", "--register=no",
            "--keep-unit", f"--bind={work}:/build", "--", "/bin/sh", "-c", script,
            capture_output=True, text=True)  # fmt: skip
        for name in names:
            (work / f"{name}.oci.tar").rename(archives[name])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _rootfs_tarball(name: str, work: Path) -> None:
    definition = IMAGES[name]
    root = work / name
    argv = ["mmdebstrap", "--quiet", "--variant=minbase"]
    argv += [f"--include={','.join(definition['packages'])}"]
    argv += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    if definition["user"]:
        user, home = definition["user"]
        # Before the packages: their maintainer scripts then keep uid/gid 999.
        passwd = f"{user}:x:999:999::{home}:/usr/sbin/nologin"
        hook = f"echo '{passwd}' >> \"$1/etc/passwd\" && echo '{user}:x:999:' >> \"$1/etc/group\""
        argv.append(f"--essential-hook={hook}")
    run(*argv, SUITE, root, MIRROR, capture_output=True, text=True)
    if definition["entrypoint"]:
        target = root / "usr/local/bin/docker-entrypoint.sh"
        shutil.copy(IMAGES_DIR / definition["entrypoint"], target)
        target.chmod(0o755)
    if name == "postgres":
        # The package creates a cluster; the entrypoint creates one in PGDATA instead.
        shutil.rmtree(root / "var/lib/postgresql/17", ignore_errors=True)
        shutil.rmtree(root / "etc/postgresql/17", ignore_errors=True)
    if name == "redis":
        (root / "data").mkdir(exist_ok=True)
        shutil.chown(root / "data", 999, 999)
    if definition.get("wheel"):
        _install_wheel(definition["wheel"], root, work)
    if name == "caddy":
        for directory in ("config", "data", "srv"):
            (root / directory).mkdir(exist_ok=True)
    (root / "etc/machine-id").unlink(missing_ok=True)
    # Device nodes stay out: rootless podman cannot create them when it loads the image.
    run("tar", "--numeric-owner", "--xattrs", "-C", root, "--exclude=./dev/*",
        "-cf", work / f"{name}.tar", ".")  # fmt: skip
    shutil.rmtree(root)


def _install_wheel(requirement: str, root: Path, work: Path) -> None:
    """Unpack a pure-Python wheel (without its dependencies: Debian's packages are those)
    into the root's Python path, its entry points with it."""
    wheels = work / f"wheels-{root.name}"
    run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--dest", wheels, requirement, capture_output=True, text=True)  # fmt: skip
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root / "usr/lib/python3/dist-packages")
    shutil.rmtree(wheels)


def _import_and_save(name: str) -> str:
    definition = IMAGES[name]
    changes = " ".join(f"--change '{change}'" for change in definition["changes"])
    podman = "podman --storage-driver=vfs --root=/build/storage --runroot=/build/run"
    return (
        f"{podman} import {changes} /build/{name}.tar {definition['tag']} >/dev/null\n"
        f"{podman} save --format=oci-archive -o /build/{name}.oci.tar {definition['tag']}\n"
    )


def _builder() -> Path:
    """A cached root filesystem with podman, used only to import and save images."""
    key = hashlib.sha256(json.dumps([BUILDER_PACKAGES, MIRROR]).encode()).hexdigest()[:12]
    path = cache_dir() / f"builder-{SUITE}-{key}"
    if not path.is_dir():
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run("mmdebstrap", "--quiet", "--variant=minbase",
            f"--include={','.join(BUILDER_PACKAGES)}", SUITE, partial, MIRROR,
            capture_output=True, text=True)  # fmt: skip
        partial.rename(path)
    return path
