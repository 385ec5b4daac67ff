"""The cached bare Debian 13 root filesystem every test host is copied from."""

import hashlib
import shutil
from pathlib import Path

from common import DPKG_OPTIONS, MIRROR, SUITE, cache_dir, locked, run

# A bare server: what the roles expect to find. No podman: installing it is the roles' job.
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "dbus-user-session",
    "openssh-server",
    "python3",
    "sudo",
    "ca-certificates",
]

# Test-host-only settings (never part of the production roles):
# /proc/sys is read-only in an nspawn host, and the pids controller is bound to cgroups v1 on
# the build machines, so podman must not set sysctls or a pids limit.
CONTAINERS_CONF = """\
# Test host only: /proc/sys is read-only here and the pids controller belongs to cgroups v1.
[containers]
default_sysctls = []
pids_limit = 0
"""
# Rootless pasta opens /dev/net/tun as the unprivileged user.
TUN_TMPFILES = "z /dev/net/tun 0666 - - -\n"
SSHD_CONF = """\
# Test host only: reached by the controller on its own loopback port, with a key only.
ListenAddress 127.0.0.1
PasswordAuthentication no
PermitRootLogin prohibit-password
"""


# Lab hosts have no internet: their template already holds what the roles install, read from
# the roles themselves, so `package: state=present` finds it there and changes nothing.
ROLE_PACKAGE_VARS = Path(__file__).resolve().parents[2] / "roles/senex_host/vars/Debian.yml"
# Installed by other means than that list: restic by senex_backup (tasks/offsite.yml), and
# python3-apt by Ansible's apt module itself, on first use, when the host lacks it; and
# iproute2, whose `ss` the multi-host checks read listening sockets with.
LAB_EXTRA_PACKAGES = ["restic", "python3-apt", "iproute2"]


def template(role_packages: bool = False) -> Path:
    """Return the cached template, building it once (about 20 s) when missing or outdated.

    With ROLE_PACKAGES, the variant for lab hosts that also holds the roles' packages."""
    packages = PACKAGES + (role_package_names() if role_packages else [])
    definition = Path(__file__).read_bytes() + "\n".join(DPKG_OPTIONS + packages).encode()
    key = hashlib.sha256(definition).hexdigest()[:12]
    path = cache_dir() / f"rootfs-{SUITE}{'-roles' if role_packages else ''}-{key}"
    with locked("rootfs"):
        if not path.is_dir():
            _build(path, packages)
    return path


def role_package_names() -> list[str]:
    import yaml  # only lab hosts need it; plain test hosts stay standard library only

    names = yaml.safe_load(ROLE_PACKAGE_VARS.read_text())["__senex_host_packages"]
    return [*names, *LAB_EXTRA_PACKAGES]


def _build(path: Path, packages: list[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    argv = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(packages)}"]
    argv += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    run(*argv, SUITE, partial, MIRROR, capture_output=True, text=True)
    _customise(partial)
    partial.rename(path)


def _customise(root: Path) -> None:
    # Every host gets its own machine id and SSH host keys when it is created.
    (root / "etc/machine-id").write_text("")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/ssh/sshd_config.d/senex-testhost.conf").write_text(SSHD_CONF)
    # Quadlet's user units wait for network-online.target; nothing pulls it in on a bare host.
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "network-online.target").symlink_to("/usr/lib/systemd/system/network-online.target")
    drop_ins = root / "etc/containers/containers.conf.d"
    drop_ins.mkdir(parents=True, exist_ok=True)
    (drop_ins / "senex-testhost.conf").write_text(CONTAINERS_CONF)
    (root / "etc/tmpfiles.d/senex-testhost-tun.conf").write_text(TUN_TMPFILES)
