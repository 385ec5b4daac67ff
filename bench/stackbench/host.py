"""The bench host: boot and deploy it, reset it, read its image sizes and idle memory, and
run the bare services (PostgreSQL, Redis, the app's own virtual environment) next to the
deployed stack."""

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path

from imagehost import BASE_IMAGE, ROOT, ImageHost, testhost
from stackmodel import long_running_units

HOST_NAME = os.environ.get("SENEX_STACK_BENCH_HOST", "bench1")
SSH_PORT = int(os.environ.get("SENEX_STACK_BENCH_SSH_PORT", "2281"))
WEB_PORT = int(os.environ.get("SENEX_STACK_BENCH_WEB_PORT", "18081"))
# The test host shares this machine's loopback. Everything the benchmark starts besides the
# stack listens on addresses of its own in 127.0.81.0/24 (all of 127/8 is loopback), so it
# takes no port another test host might use; two bench hosts running at once each need their
# own (SENEX_STACK_BENCH_NET, the first three numbers).
NET = os.environ.get("SENEX_STACK_BENCH_NET", "127.0.81")
BARE_PG, BARE_REDIS = (f"{NET}.1", 15432), (f"{NET}.1", 16379)
USER = "senex"
PLAYBOOK = [
    # The tools of the virtual environment running this script (make's VENV).
    str(Path(sys.executable).parent / "ansible-playbook"),
    "-i",
    str(ROOT / "inventories" / "sandbox" / "hosts.yml"),
    "--vault-password-file",
    str(ROOT / "inventories" / "sandbox" / "SANDBOX-ONLY-vault-password"),
    str(ROOT / "ansible" / "sandbox.yml"),
    "-e",
    f"senex_sandbox_name={HOST_NAME}",
    "-e",
    f"senex_sandbox_ssh_port={SSH_PORT}",
    "-e",
    f"senex_sandbox_web_port={WEB_PORT}",
]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class BenchHost(ImageHost):
    """The deployed test host, reached as root; `user()` runs a command as the service user."""

    uid = 0

    @property
    def as_user(self) -> str:
        # The user manager's bus, or podman falls back to cgroupfs and cannot join its cgroups.
        run = f"/run/user/{self.uid}"
        return (
            f"runuser -u {USER} -- env XDG_RUNTIME_DIR={run}"
            f" DBUS_SESSION_BUS_ADDRESS=unix:path={run}/bus"
        )

    def user(self, command: str) -> str:
        return self.check(
            f"cd /home/{USER} && {self.as_user} bash -c {shlex.quote(command)}"
        ).stdout

    def root(self, command: str, stdin: bytes | None = None) -> str:
        return self.check(command, stdin=stdin).stdout


def quadlet_dir() -> str:
    return f"/home/{USER}/.config/containers/systemd"


# Where a deploy's seconds go: ansible.posix's profile_tasks prints every task's wall time
# at the end ("name ---- 1.23s", slowest first).
SLOWEST_TASK = re.compile(r"^(\S.*?) -+ (\d+\.\d+)s$", re.MULTILINE)


def slowest_tasks(output: str, count: int = 8) -> list[tuple[str, float]]:
    """The tasks that took longest, from profile_tasks' recap at the end of the output."""
    recap = output.rsplit("TASKS RECAP", 1)[-1] if "TASKS RECAP" in output else ""
    return [(name, float(seconds)) for name, seconds in SLOWEST_TASK.findall(recap)][:count]


def deploy(log: Path) -> tuple[float, int, list[tuple[str, float]]]:
    """Runs the sandbox playbook against the host; returns its wall time, changed count and
    slowest tasks."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    }
    start = time.monotonic()
    result = subprocess.run(PLAYBOOK, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"deploy failed (exit {result.returncode}); its output is in {log}")
    recap = re.search(rf"^{HOST_NAME}\s*:\s*ok=\d+\s+changed=(\d+)", result.stdout, re.MULTILINE)
    if recap is None:
        sys.exit(f"no PLAY RECAP line for {HOST_NAME} in {log}")
    return seconds, int(recap.group(1)), slowest_tasks(result.stdout)


def boot_and_deploy(log: Path) -> dict:
    """Boots a fresh bare host, deploys the stack and deploys it again (a no-op); returns the
    wall times and changed counts."""
    print(f"Deploying a fresh {HOST_NAME} (logs in {log})", flush=True)
    testhost("destroy", HOST_NAME)
    start = time.monotonic()
    testhost("create", HOST_NAME, "--ssh-port", str(SSH_PORT))
    deployment: dict = {"host_create_seconds": time.monotonic() - start}
    deployment["deploy_seconds"], deployment["deploy_changed"], _ = deploy(log / "deploy.log")
    (
        deployment["redeploy_seconds"],
        deployment["redeploy_changed"],
        deployment["redeploy_slowest"],
    ) = deploy(log / "redeploy.log")
    return deployment


def reset(host: BenchHost) -> None:
    """Removes what an earlier run on a reused host started, so the stack is as deployed."""
    host.root("systemctl stop 'senex-bench-*' 2>/dev/null; rm -rf /var/lib/senex-bench; true")
    host.user(
        "systemctl --user stop 'senex-bench-*' 2>/dev/null;"
        f" rm -f {quadlet_dir()}/senex-bench-* ~/.config/systemd/user/senex-bench-*;"
        " systemctl --user daemon-reload"
    )


def image_sizes(host: BenchHost) -> dict:
    def size(image: str) -> int:
        return int(json.loads(host.user(f"podman image inspect {image}"))[0]["Size"])

    total, base = size("localhost/senex-trader:current"), size(BASE_IMAGE)
    return {"total_bytes": total, "base_bytes": base, "above_base_bytes": total - base}


def image_of(host: BenchHost, unit: str) -> str:
    text = host.root(f"cat {quadlet_dir()}/{unit}.container")
    return re.search(r"^Image=(.+)$", text, re.MULTILINE).group(1).strip()


# A cgroup's memory, as Python source that runs on the host (this one and the WebSocket client).
MEMORY_FUNCTION = r"""
import os

def cgroup_memory(group):
    current = os.path.join(group, "memory.current")
    if os.path.exists(current):
        return int(open(current).read()), "memory.current"
    # No memory controller (nested cgroups without delegation): sum each process's PSS,
    # which shares the pages forked workers have in common instead of counting them twice.
    total = 0
    for directory, _, files in os.walk(group):
        if "cgroup.procs" in files:
            for pid in open(os.path.join(directory, "cgroup.procs")).read().split():
                try:
                    for line in open(f"/proc/{pid}/smaps_rollup"):
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    pass
    return total, "PSS of the cgroup's processes"
"""
# Arguments: pairs of a unit and its cgroup directory.
MEMORY_SCRIPT = (
    MEMORY_FUNCTION
    + r"""
import json, sys
out = {}
for unit, group in zip(sys.argv[1::2], sys.argv[2::2]):
    size, source = cgroup_memory(group)
    out[unit] = {"bytes": size, "source": source}
print(json.dumps(out))
"""
)


def unit_cgroup(host: BenchHost, unit: str, user: bool = True) -> str:
    """The cgroup directory of a running unit, the service user's or (user=False) the system's.
    Asked rather than spelled out: an instance of a template runs in a slice of its own."""
    show = f"systemctl {'--user ' if user else ''}show --property=ControlGroup --value {unit}"
    group = (host.user(show) if user else host.root(show)).strip()
    if not group:
        raise RuntimeError(f"{unit} has no cgroup on {host.name}: it is not running")
    return f"/sys/fs/cgroup{group}"


def idle_memory(host: BenchHost) -> dict:
    """The resident memory of every long-running unit of the stack model, and their total."""
    args = []
    for unit in (f"{u}.service" for u in long_running_units()):
        args += [unit, unit_cgroup(host, unit)]
    command = "python3 - " + " ".join(shlex.quote(arg) for arg in args)
    memory = json.loads(host.root(command, stdin=MEMORY_SCRIPT.encode()))
    return {
        "source": next(iter(memory.values()))["source"],
        "units": {u: v["bytes"] for u, v in memory.items()},
        "total": sum(v["bytes"] for v in memory.values()),
    }


def install_bare_packages(host: BenchHost, pg_major: str) -> None:
    """ApacheBench, and PostgreSQL and Redis from Debian, with none of their services started:
    this machine's own PostgreSQL and Redis may hold the default ports."""
    host.root(
        "install -d /etc/postgresql-common/createcluster.d"
        " && echo 'create_main_cluster = false'"
        " > /etc/postgresql-common/createcluster.d/senex-bench.conf"
        " && printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d"
        " && chmod 0755 /usr/sbin/policy-rc.d"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends"
        f" apache2-utils wrk postgresql-{pg_major} redis-server redis-tools >/dev/null"
        " ; status=$? ; rm -f /usr/sbin/policy-rc.d"
        " ; systemctl disable --now --quiet redis-server.service 2>/dev/null ; exit $status"
    )


def copy_app_from_image(host: BenchHost) -> None:
    """The bare servers run the image's own virtual environment and code at the same paths."""
    host.user(
        "podman rm --force senex-bench-copy >/dev/null"
        " && podman create --name senex-bench-copy localhost/senex-trader:current >/dev/null"
    )
    for source, parent in (("/opt/venv", "/opt"), ("/app", "/"), ("/etc/senex", "/etc")):
        host.root(
            f"rm -rf {shlex.quote(str(Path(parent) / Path(source).name))}"
            f" && cd /home/{USER} && {host.as_user} podman cp senex-bench-copy:{source} -"
            f" | tar -x -C {parent} --no-same-owner"
        )
    host.user("podman rm senex-bench-copy >/dev/null")


def start_bare_services(host: BenchHost, pg_major: str) -> dict:
    db_password, redis_password = secrets.token_hex(16), secrets.token_hex(16)
    pg_bin = f"/usr/lib/postgresql/{pg_major}/bin"
    state = "/var/lib/senex-bench"
    host.root(
        f"install -d -m 0755 {state} /etc/senex-bench"
        f" && install -d -o postgres -g postgres -m 0700 {state}/postgres"
        f" && install -d -o redis -g redis -m 0750 {state}/redis"
        f" && runuser -u postgres -- {pg_bin}/initdb -D {state}/postgres --auth-local=peer"
        " --auth-host=scram-sha-256 >/dev/null"
    )
    host.root(
        f"systemd-run --quiet --unit senex-bench-bare-postgres -p User=postgres"
        f" {pg_bin}/postgres -D {state}/postgres -c listen_addresses={BARE_PG[0]}"
        f" -c port={BARE_PG[1]} -c unix_socket_directories=/var/run/postgresql"
    )
    host.root(
        f"for i in $(seq 60); do runuser -u postgres -- {pg_bin}/pg_isready -q -p {BARE_PG[1]}"
        " -h /var/run/postgresql && exit 0; sleep 1; done; exit 1"
    )
    sql = (
        f"CREATE ROLE senex LOGIN SUPERUSER PASSWORD '{db_password}';"
        " CREATE DATABASE senex OWNER senex; CREATE DATABASE bench OWNER senex;"
    )
    host.root(
        f"runuser -u postgres -- psql -q -h /var/run/postgresql -p {BARE_PG[1]} -d postgres",
        stdin=sql.encode(),
    )
    redis_conf = (
        f"requirepass {redis_password}\nport {BARE_REDIS[1]}\nbind {BARE_REDIS[0]}\n"
        f"dir {state}/redis\nappendonly yes\n"
    )
    host.root(
        "install -o redis -g redis -m 0600 /dev/stdin /etc/senex-bench/redis.conf",
        stdin=redis_conf.encode(),
    )
    host.root(
        "systemd-run --quiet --unit senex-bench-bare-redis -p User=redis"
        " /usr/bin/redis-server /etc/senex-bench/redis.conf"
    )
    # The app's environment file, pointing at the bare services instead of the containers.
    env = host.root(f"cat /home/{USER}/.config/senex/senex.env")
    redis = f"redis://:{redis_password}@{BARE_REDIS[0]}:{BARE_REDIS[1]}"
    overrides = {
        "DB_HOST": BARE_PG[0],
        "DB_PORT": str(BARE_PG[1]),
        "DB_PASSWORD_FILE": "/etc/senex-bench/db-password",
        "REDIS_URL": f"{redis}/0",
        "CELERY_BROKER_URL": f"{redis}/1",
        "CELERY_RESULT_BACKEND": f"{redis}/2",
        # What the image's ENV sets for every container.
        "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": "/opt/venv",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    kept = [line for line in env.splitlines() if line.split("=", 1)[0].strip() not in overrides]
    bare_env = "\n".join([*kept, *(f"{k}={v}" for k, v in overrides.items())]) + "\n"
    host.root(
        f"install -o root -g {USER} -m 0640 /dev/stdin /etc/senex-bench/bare.env",
        stdin=bare_env.encode(),
    )
    host.root(
        f"install -o root -g {USER} -m 0640 /dev/stdin /etc/senex-bench/db-password",
        stdin=db_password.encode(),
    )
    bare_app(host, "python manage.py migrate --noinput")
    # The same rows the containers' database holds: beat's heartbeat.
    bare_app(
        host,
        "python manage.py shell -c"
        " 'from trading.services import heartbeat_record; heartbeat_record()'",
    )
    return {"db_password": db_password, "redis_password": redis_password}


def bare_app(host: BenchHost, command: str) -> str:
    return host.root(
        f"systemd-run --quiet --wait --pipe -p User={USER} -p WorkingDirectory=/app"
        f" -p EnvironmentFile=/etc/senex-bench/bare.env /bin/bash -c {shlex.quote(command)}"
    )
