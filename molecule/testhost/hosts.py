"""Create, boot, power off and destroy test hosts booted with systemd-nspawn."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import lab as labs
import labhost
import rootfs
from common import TesthostError, check_machine, locked, run, state_dir

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# The VM mounts cgroups v1 next to a unified hierarchy; PID 1 is not systemd, so each host's
# launcher joins its own cgroup in both, otherwise all hosts share one and poweroff hangs.
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
# crun needs the keyring calls that nspawn filters out by default.
SYSCALLS = "add_key keyctl request_key"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Measured: nspawn 257 needs the mounts below /proc removed for rootless crun; 252 breaks if
# they are (podman then sees a different boot id), so only newer versions get the unit below.
PROC_UNMOUNT_SINCE = 257
PROC_UNIT = """\
# Test host only: rootless crun cannot mount proc under newer nspawn while these exist.
[Unit]
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'grep -o " /proc/[^ ]*" /proc/self/mounts | sort -r | xargs -r umount -l'

[Install]
WantedBy=sysinit.target
"""
BOOT_TIMEOUT = 120
POWEROFF_TIMEOUT = 120


class Host:
    """Files of one test host under the state directory."""

    def __init__(self, name: str) -> None:
        if not NAME.match(name):
            raise TesthostError(
                f"bad host name {name!r}: use lower-case letters, digits and '-', "
                "starting with a letter, at most 31 characters"
            )
        self.name = name
        self.dir = state_dir() / name
        self.root = self.dir / "rootfs"
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.config = self.dir / "host.json"
        self.pidfile = self.dir / "nspawn.pid"
        self.log = self.dir / "nspawn.log"
        self.cgroups = [base / f"senex-testhost-{name}" for base in CGROUP_ROOTS]

    def settings(self) -> dict | None:
        return json.loads(self.config.read_text()) if self.config.is_file() else None

    def info(self) -> dict:
        settings = self.settings()
        reach = {
            "name": self.name,
            "address": "127.0.0.1",
            "port": settings["port"],
            "user": "root",
            "identity_file": str(self.key),
            "known_hosts": str(self.known_hosts),
        }
        if "lab" not in settings:
            return reach
        forwards = {str(local): remote for local, remote in settings["forwards"]}
        lab = {"lab": settings["lab"], "lab_address": settings["address"], "forwards": forwards}
        return reach | lab

    def lab(self) -> labs.Lab | None:
        settings = self.settings()
        return labs.Lab(settings["lab"]) if settings and "lab" in settings else None

    def forwards(self) -> list[tuple[int, int]]:
        """Every forwarder of a lab host, sshd's first: (port on 127.0.0.1, port in the host)."""
        settings = self.settings()
        extra = [tuple(pair) for pair in settings["forwards"]]
        return [(settings["port"], labhost.SSH_PORT), *extra]


def create(
    name: str,
    ssh_port: int,
    lab: str | None = None,
    address: str | None = None,
    forwards: list[tuple[int, int]] = (),
) -> dict:
    """Boot NAME with sshd on 127.0.0.1:SSH_PORT unless it already runs; return how to reach it.

    With LAB, the host gets its own network namespace with ADDRESS on that lab's bridge, and
    127.0.0.1:SSH_PORT (and each LOCAL of FORWARDS) is a forwarder to it."""
    check_machine(lab=lab is not None)
    host = Host(name)
    wanted = _wanted(name, ssh_port, lab, address, list(forwards))
    with locked(f"host-{name}", state_dir() / ".locks"):
        settings = host.settings()
        if settings and settings["port"] != ssh_port:
            raise TesthostError(
                f"test host {name} exists with SSH port {settings['port']}, not {ssh_port}: "
                f"destroy it first (testhost.py destroy {name}) or ask for port {settings['port']}"
            )
        if settings and settings != wanted:
            raise TesthostError(
                f"test host {name} exists with {_describe(settings)}, not {_describe(wanted)}: "
                f"destroy it first (testhost.py destroy {name}) or ask for what it has"
            )
        if settings and _running(host):
            changed = _start_network(host) if host.lab() else False
            _wait_for_ssh(host)
            return host.info() | {"changed": changed}
        # Leftovers of a half-made host go; a stopped one loses what still runs in its cgroups
        # (its systemd survives when nspawn is killed) and boots again.
        _power_off(host)
        if not settings:
            _remove(host)
        for port in [ssh_port, *(local for local, _ in forwards)]:
            _check_port_free(port, name)
        try:
            if not settings:
                _prepare(host, wanted)
            if host.lab():
                labhost.attach(name, host.lab(), address)
            _boot(host)
            if host.lab():
                _start_network(host)
            _wait_for_ssh(host)
        except BaseException:
            # A failed create leaves nothing behind, so the next attempt starts clean; a host
            # that existed before (stopped, e.g. after this machine restarted) keeps its files.
            _power_off(host)
            if not settings:
                _remove(host)
            raise
        return host.info() | {"changed": True}


@contextlib.contextmanager
def _held(name: str, existing: bool = False) -> Iterator[Host]:
    """NAME's host under its lock on a machine that can run it; EXISTING refuses a new name."""
    check_machine()
    host = Host(name)
    with locked(f"host-{name}", state_dir() / ".locks"):
        if existing and not host.settings():
            raise TesthostError(f"no test host {name}: create it first (testhost.py create {name})")
        yield host


def destroy(name: str) -> dict:
    """Power NAME off cleanly and remove its files; nothing to do when it does not exist."""
    with _held(name) as host:
        existed = host.dir.exists() or labhost.netns.exists(labhost.netns_name(name))
        _power_off(host)
        _remove(host)
        return {"name": name, "changed": existed}


def reboot(name: str) -> dict:
    """Power NAME off and boot the same root filesystem again."""
    with _held(name, existing=True) as host:
        _power_off(host)
        _boot(host)
        if host.lab():
            _start_network(host)
        _wait_for_ssh(host)
        return host.info()


def poweroff(name: str) -> dict:
    """Power NAME off and keep its files (`reboot` boots it again, `destroy` removes it)."""
    with _held(name, existing=True) as host:
        running = _running(host)
        _power_off(host)
        return {"name": name, "changed": running}


def lab_down(name: str) -> dict:
    """Destroy every test host of lab NAME, then the lab itself; nothing to do when it is gone."""
    check_machine(lab=True)
    with locked(f"lab-{name}", state_dir() / ".locks"):
        for host in in_lab(name):
            destroy(host)
        return {"name": name, "changed": labs.remove(name)}


def in_lab(name: str) -> list[str]:
    """The test hosts on lab NAME."""
    labs.Lab(name)  # checks the name
    settings = {c.parent.name: json.loads(c.read_text()) for c in state_dir().glob("*/host.json")}
    return sorted(host for host, values in settings.items() if values.get("lab") == name)


def run_command(name: str, argv: list[str]) -> int:
    """Run ARGV as root inside NAME with a clean environment; return its exit code."""
    check_machine()
    host = Host(name)
    if not _running(host):
        raise TesthostError(f"test host {name} is not running: create or reboot it first")
    # A transient unit of the host's own systemd: the command gets a proper cgroup and login
    # context (loginctl refuses callers outside the host's cgroups) and dies with the host.
    io = "--pty" if sys.stdin.isatty() else "--pipe"
    runner = ["systemd-run", "--quiet", "--wait", "--collect", io, "--"]
    return subprocess.run([*_nsenter(host), *runner, *argv], check=False).returncode


def hosts() -> list[dict]:
    check_machine()
    found = []
    for config in sorted(state_dir().glob("*/host.json")):
        host = Host(config.parent.name)
        found.append(host.info() | {"running": _running(host)})
    return found


def _check_port_number(port: int) -> None:
    if not 1024 <= port <= 65535:
        raise TesthostError(f"port {port} is out of range: choose one in 1024-65535")


def _check_port_free(port: int, name: str) -> None:
    for config in state_dir().glob("*/host.json"):
        other = json.loads(config.read_text())
        taken = [other["port"], *(local for local, _ in other.get("forwards", []))]
        if config.parent.name != name and port in taken:
            raise TesthostError(
                f"port {port} belongs to test host {config.parent.name}: "
                "choose another --ssh-port or destroy that host"
            )
    with socket.socket() as probe:
        # SO_REUSEADDR so a recently closed connection does not count; a listener still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise TesthostError(
                f"port {port} on 127.0.0.1 is taken by another process "
                f"(see: ss -ltnp 'sport = :{port}'): choose another --ssh-port or --forward port"
            ) from None


def _wanted(
    name: str, ssh_port: int, lab: str | None, address: str | None, forwards: list[tuple[int, int]]
) -> dict:
    """The settings asked for, checked before anything changes."""
    for port in [ssh_port, *(local for local, _ in forwards)]:
        _check_port_number(port)
    if lab is None:
        if address or forwards:
            raise TesthostError("--address and --forward need --lab: only lab hosts have them")
        return {"port": ssh_port}
    if address is None:
        raise TesthostError(f"a lab host needs its address on lab {lab}: add --address")
    checked, _ = labs.host_address(lab, address)
    locals_ = [ssh_port, *(local for local, _ in forwards)]
    if len(set(locals_)) != len(locals_):
        raise TesthostError(f"ports on 127.0.0.1 repeat in {locals_}: give each forward its own")
    for other in in_lab(lab):
        if other != name and Host(other).settings()["address"] == str(checked):
            raise TesthostError(
                f"address {checked} belongs to test host {other} on lab {lab}: choose another"
            )
    pairs = [list(pair) for pair in forwards]
    return {"port": ssh_port, "lab": lab, "address": str(checked), "forwards": pairs}


def _describe(settings: dict) -> str:
    if "lab" not in settings:
        return "no lab"
    forwards = ",".join(f"{local}:{remote}" for local, remote in settings["forwards"]) or "none"
    return f"lab {settings['lab']}, address {settings['address']}, forwards {forwards}"


def _start_network(host: Host) -> bool:
    """Make sure a lab host's namespace and forwarders exist; True if any had to be made."""
    settings = host.settings()
    had_netns = labhost.netns.has_link(labhost.netns_name(host.name), "eth0")
    labhost.attach(host.name, host.lab(), settings["address"])
    started = labhost.forward(host.dir, host.lab(), settings["address"], host.forwards())
    return started or not had_netns


def _prepare(host: Host, settings: dict) -> None:
    ssh_port = settings["port"]
    template = rootfs.template(role_packages="lab" in settings)
    host.dir.mkdir(parents=True)
    run("cp", "-a", "--reflink=auto", template, host.root)
    (host.root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (host.root / "etc/hostname").write_text(host.name + "\n")
    run("ssh-keygen", "-q", "-A", "-f", host.root, capture_output=True)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"senex-testhost-{host.name}",
        "-f", host.key)  # fmt: skip
    ssh_dir = host.root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(host.key.with_suffix(".pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)
    sshd_dir = host.root / "etc/ssh/sshd_config.d"
    if "lab" in settings:
        # Reached through a forwarder in the lab: sshd's usual port on the lab address.
        labhost.adapt_root(host.root, host.name, settings["address"])
        (sshd_dir / "senex-testhost-port.conf").write_text(f"Port {labhost.SSH_PORT}\n")
    else:
        (sshd_dir / "senex-testhost-port.conf").write_text(f"Port {ssh_port}\n")
    host_keys = sorted((host.root / "etc/ssh").glob("ssh_host_*_key.pub"))
    # Key type and key, without the comment: "[127.0.0.1]:PORT TYPE KEY".
    lines = [" ".join(key.read_text().split()[:2]) for key in host_keys]
    host.known_hosts.write_text("".join(f"[127.0.0.1]:{ssh_port} {line}\n" for line in lines))
    if _nspawn_version() >= PROC_UNMOUNT_SINCE:
        unit = host.root / "etc/systemd/system/senex-testhost-proc.service"
        unit.write_text(PROC_UNIT)
        wants = host.root / "etc/systemd/system/sysinit.target.wants"
        wants.mkdir(exist_ok=True)
        (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    host.config.write_text(json.dumps(settings) + "\n")


def _nspawn_version() -> int:
    output = run("systemd-nspawn", "--version", capture_output=True, text=True).stdout
    return int(output.split()[1])


def _boot(host: Host) -> None:
    for cgroup in host.cgroups:
        cgroup.mkdir(exist_ok=True)
    host.pidfile.unlink(missing_ok=True)
    # The launcher records its pid and joins the host's cgroups, then becomes nspawn, so the
    # pid file names nspawn itself; setsid detaches it from the caller.
    launcher = 'echo $$ > "$1"; echo $$ > "$2"; echo $$ > "$3"; shift 3; exec "$@"'
    argv = ["systemd-nspawn", "--quiet", f"--directory={host.root}", "--boot",
            "--register=no", "--keep-unit", f"--machine={host.name}",
            f"--system-call-filter={SYSCALLS}"]  # fmt: skip
    if host.lab():
        # Its own namespace: its firewall (nftables needs CAP_NET_ADMIN) filters only its own
        # traffic, and its resolver is the one labhost.adapt_root wrote.
        argv += [f"--network-namespace-path=/run/netns/{labhost.netns_name(host.name)}",
                 "--capability=CAP_NET_ADMIN", "--resolv-conf=off"]  # fmt: skip
    procs = [str(c / "cgroup.procs") for c in host.cgroups]
    # Unified hierarchy: Quadlet runs containers with --cgroups=split. Writable /proc/sys/net:
    # netavark sets sysctls in the rootless network namespace of every podman network.
    env = dict(
        os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1", SYSTEMD_NSPAWN_API_VFS_WRITABLE="network"
    )
    with open(host.log, "ab") as log:
        subprocess.run(
            ["setsid", "--fork", "sh", "-c", launcher, "sh", str(host.pidfile), *procs, *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, check=True,
        )  # fmt: skip
    deadline = time.monotonic() + BOOT_TIMEOUT
    while _init_pid(host) is None:
        if time.monotonic() > deadline or _launcher_exited(host):
            raise TesthostError(f"test host {host.name} did not boot: {_log_tail(host)}")
        time.sleep(0.2)
    # "degraded" still means booted; the exit code is not the point, waiting is.
    subprocess.run(
        [*_nsenter(host), "systemctl", "is-system-running", "--wait"],
        capture_output=True, timeout=BOOT_TIMEOUT, check=False,
    )  # fmt: skip


def _log_tail(host: Host, lines: int = 5) -> str:
    """The end of the host's console, kept in the message: a failed create removes the file."""
    try:
        return " | ".join(host.log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no console output)"


def _nspawn_pid(host: Host) -> int | None:
    try:
        return int(host.pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _launcher_exited(host: Host) -> bool:
    """True once the launcher (the shell that becomes nspawn) has died, e.g. nspawn failed."""
    pid = _nspawn_pid(host)
    return pid is not None and not Path(f"/proc/{pid}").exists()


def _running(host: Host) -> bool:
    pid = _nspawn_pid(host)
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    # The pid may have been reused since: it must still be this host's nspawn.
    return cmdline[0].endswith(b"systemd-nspawn") and f"--directory={host.root}".encode() in cmdline


def _init_pid(host: Host) -> int | None:
    """The host's systemd: the child of its nspawn process."""
    parent = _nspawn_pid(host)
    if parent is None or not _running(host):
        return None
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(parent) and fields["Name"].strip() == "systemd":
            return int(status.parent.name)
    return None


def _nsenter(host: Host) -> list[str]:
    pid = _init_pid(host)
    if pid is None:
        raise TesthostError(f"test host {host.name} has no running init; see {host.log}")
    # A clean environment: nothing of the caller's (venv, secrets in env) leaks into the host.
    return ["nsenter", f"--target={pid}", "--all", "--", "env", "-i", f"PATH={HOST_PATH}",
            "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]  # fmt: skip


def _wait_for_ssh(host: Host) -> None:
    info = host.info()
    argv = ["ssh", "-i", info["identity_file"], "-p", str(info["port"]), "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={host.known_hosts}", "root@127.0.0.1", "true"]  # fmt: skip
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise TesthostError(
                f"SSH to test host {host.name} on port {info['port']} did not answer: "
                f"{result.stderr.strip()}; its console said: {_log_tail(host)}"
            )
        time.sleep(0.5)


def _power_off(host: Host) -> None:
    pid = _nspawn_pid(host)
    if _running(host):
        subprocess.run([*_nsenter(host), "systemctl", "poweroff"], capture_output=True, check=False)
        if not _wait_gone(host, POWEROFF_TIMEOUT):
            # nspawn turns SIGTERM into an orderly shutdown of a booted host.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(host, 30):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(host, 10)
    _remove_cgroups(host)
    host.pidfile.unlink(missing_ok=True)


def _wait_gone(host: Host, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _running(host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _remove_cgroups(host: Host) -> None:
    for cgroup in host.cgroups:
        if not cgroup.is_dir():
            continue
        # Leftovers (a command still running from `run`) would keep the cgroup busy.
        for procs in cgroup.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        for directory in sorted(
            (p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            _rmdir_when_empty(directory)
        _rmdir_when_empty(cgroup)


def _rmdir_when_empty(directory: Path) -> None:
    for _ in range(50):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    raise TesthostError(f"cgroup {directory} stays busy; kill what runs in it and retry")


def _remove(host: Host) -> None:
    """Remove the host's files and, for a lab host, its forwarders and network namespace."""
    if _running(host):
        raise TesthostError(f"test host {host.name} still runs; not removing its files")
    labhost.stop_forwards(host.dir)
    labhost.detach(host.name)
    if host.dir.exists():
        shutil.rmtree(host.dir)
