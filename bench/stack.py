"""Benchmark the deployed stack against the same software run bare, side by side in one run.

Deploys a fresh sandbox-like test host (bench1: SSH 2281, web 18081) with deploy.yml, then
measures inside it, on loopback only, every load bounded in requests and in time:

- web: requests per second and p50/p99 latency (ApacheBench, no keep-alive, like a reverse
  proxy's default upstream connections) of /health/simple/ (no dependency) and
  /trading/heartbeats/ (reads the database through the full middleware stack), for Daphne and
  for Gunicorn with uvicorn workers, each bare (the image's own virtual environment and code
  copied to the host, against a bare PostgreSQL and Redis), in the container through the
  published port, and through systemd socket activation when the deployed stack has a
  senex-web.socket;
- PostgreSQL: pgbench TPS from a container on the stack's network to the Quadlet container,
  against pgbench on the host to the same PostgreSQL version installed bare from Debian;
- Redis: redis-benchmark the same way;
- memory: each service's resident memory once the stack is idle, and the stack's total;
- deployment: image size, bare host to healthy stack, a no-op re-deploy and its changed count.

Pairs run back to back, several rounds, in alternating order; the table shows the median and
the spread (min-max), and the machine's load average. The table is printed and written with
every sample as JSON (bench/results/). Nothing is asserted. Needs root (systemd-nspawn).
"""

import argparse
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "molecule" / "testhost"))

from imagehost import BASE_IMAGE, ROOT, ImageHost, testhost

HOST_NAME = os.environ.get("SENEX_STACK_BENCH_HOST", "bench1")
SSH_PORT = int(os.environ.get("SENEX_STACK_BENCH_SSH_PORT", "2281"))
WEB_PORT = int(os.environ.get("SENEX_STACK_BENCH_WEB_PORT", "18081"))
# The test host shares this machine's loopback. Everything the benchmark starts besides the
# stack listens on addresses of its own in 127.0.81.0/24 (all of 127/8 is loopback), so it
# takes no port another test host might use.
NET = "127.0.81"
BARE_PG, BARE_REDIS = (f"{NET}.1", 15432), (f"{NET}.1", 16379)
USER = "senex"
SERVERS = {"daphne": ("Daphne", "web"), "gunicorn": ("Gunicorn+uvicorn", "gunicorn")}
ENDPOINTS = ("/health/simple/", "/trading/heartbeats/")
RESULTS = ROOT / "bench" / "results"
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


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


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


# ---------------------------------------------------------------------------- deployment


def deploy(log: Path) -> tuple[float, int]:
    """Runs the sandbox playbook against the host; returns its wall time and changed count."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_FORCE_COLOR": "false",
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
    return seconds, int(recap.group(1))


def image_sizes(host: BenchHost) -> dict:
    def size(image: str) -> int:
        return int(json.loads(host.user(f"podman image inspect {image}"))[0]["Size"])

    total, base = size("localhost/senex-trader:current"), size(BASE_IMAGE)
    return {"total_bytes": total, "base_bytes": base, "above_base_bytes": total - base}


# ---------------------------------------------------------------------------- memory


MEMORY_SCRIPT = r"""
import json, os, sys
root = sys.argv[1]
out = {}
for unit in sys.argv[2:]:
    group = os.path.join(root, unit)
    current = os.path.join(group, "memory.current")
    if os.path.exists(current):
        out[unit] = {"bytes": int(open(current).read()), "source": "memory.current"}
        continue
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
    out[unit] = {"bytes": total, "source": "PSS of the cgroup's processes"}
print(json.dumps(out))
"""


def idle_memory(host: BenchHost, units: list[str]) -> dict:
    app_slice = f"/sys/fs/cgroup/user.slice/user-{host.uid}.slice/user@{host.uid}.service/app.slice"
    args = " ".join(shlex.quote(f"{u}.service") for u in units)
    command = f"python3 - {app_slice} {args}"
    return json.loads(host.root(command, stdin=MEMORY_SCRIPT.encode()))


# ---------------------------------------------------------------------------- bare setup


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
        f" apache2-utils postgresql-{pg_major} redis-server redis-tools >/dev/null"
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


def reset(host: BenchHost) -> None:
    """Removes what an earlier run on a reused host started, so the stack is as deployed."""
    host.root("systemctl stop 'senex-bench-*' 2>/dev/null; rm -rf /var/lib/senex-bench; true")
    host.user(
        "systemctl --user stop 'senex-bench-*' 2>/dev/null;"
        f" rm -f {quadlet_dir()}/senex-bench-* ~/.config/systemd/user/senex-bench-*;"
        " systemctl --user daemon-reload"
    )


def bare_app(host: BenchHost, command: str) -> str:
    return host.root(
        f"systemd-run --quiet --wait --pipe -p User={USER} -p WorkingDirectory=/app"
        f" -p EnvironmentFile=/etc/senex-bench/bare.env /bin/bash -c {shlex.quote(command)}"
    )


def start_bare_web(host: BenchHost, server: str, address: str) -> None:
    if server == "daphne":
        command = (
            f"/opt/venv/bin/daphne --bind {address} --port {WEB_PORT} senextrader.asgi:application"
        )
    else:
        command = (
            "/opt/venv/bin/gunicorn --config /etc/senex/gunicorn.conf.py"
            f" --bind {address}:{WEB_PORT} senextrader.asgi:application"
        )
    host.root(
        f"systemd-run --quiet --unit senex-bench-bare-{server} -p User={USER}"
        " -p WorkingDirectory=/app -p EnvironmentFile=/etc/senex-bench/bare.env"
        f" -p KillMode=mixed {command}"
    )


# ---------------------------------------------------------------------------- containers


def quadlet_dir() -> str:
    return f"/home/{USER}/.config/containers/systemd"


def socket_unit(host: BenchHost) -> str:
    """The deployed senex-web.socket, or '' when the stack does not use socket activation."""
    result = host.ssh(f"cd /home/{USER} && {host.as_user} systemctl --user cat senex-web.socket")
    return result.stdout if result.returncode == 0 else ""


def extra_web_unit(host: BenchHost, name: str, route: str, address: str, socket: str) -> None:
    """A copy of the deployed senex-web unit running `route`, reached on `address`: through a
    published port, or through a copy of the deployed socket unit when `socket` is given."""
    unit = host.root(f"cat {quadlet_dir()}/senex-web.container")
    lines = []
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key == "ContainerName":
            line = f"ContainerName={name}"
        elif key == "Exec":
            line = f"Exec={route}"
        elif key in ("PublishPort", "WantedBy") or value == "senex-web.socket":
            continue
        elif key == "Network" and not socket:
            lines.append(line)
            line = f"PublishPort={address}:{WEB_PORT}:8000"
        elif line == "[Container]" and socket:
            lines += [f"Requires={name}.socket", f"After={name}.socket", ""]
        lines.append(line)
    host.root(
        f"install -o {USER} -g {USER} -m 0644 /dev/stdin {quadlet_dir()}/{name}.container",
        stdin=("\n".join(lines) + "\n").encode(),
    )
    if socket:
        copy = [
            f"ListenStream={address}:{WEB_PORT}" if line.startswith("ListenStream=") else line
            for line in socket.splitlines()
            if not line.startswith("#") and not line.startswith("WantedBy")
        ]
        directory = f"/home/{USER}/.config/systemd/user"
        host.root(
            f"install -d -o {USER} -g {USER} {directory} && install -o {USER} -g {USER}"
            f" -m 0644 /dev/stdin {directory}/{name}.socket",
            stdin=("\n".join(copy) + "\n").encode(),
        )
    host.user("systemctl --user daemon-reload")
    host.user(f"systemctl --user start {name}.{'socket' if socket else 'service'}")


def wait_http(host: BenchHost, address: str, seconds: int = 180) -> None:
    host.root(
        f'for i in $(seq {seconds}); do python3 -c "import urllib.request;'
        f" urllib.request.urlopen('http://{address}:{WEB_PORT}/health/simple/', timeout=5)\""
        " 2>/dev/null && exit 0; sleep 1; done; exit 1"
    )


# ---------------------------------------------------------------------------- load


AB_FIELDS = {
    "rps": r"Requests per second:\s+([\d.]+)",
    "complete": r"Complete requests:\s+(\d+)",
    "failed": r"Failed requests:\s+(\d+)",
    "seconds": r"Time taken for tests:\s+([\d.]+)",
    "p50_ms": r"^\s+50%\s+(\d+)",
    "p99_ms": r"^\s+99%\s+(\d+)",
}


def ab(host: BenchHost, url: str, requests: int, concurrency: int, limit: int) -> dict:
    # -t first: it resets the request count that -n then bounds; -s bounds each request.
    out = host.root(
        f"ab -q -r -t {limit} -n {requests} -c {concurrency} -s 30 -H 'Host: 127.0.0.1' {url}"
    )
    result = {}
    for name, pattern in AB_FIELDS.items():
        found = re.search(pattern, out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"ab printed no {name} for {url}:\n{out}")
        result[name] = float(found.group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    # ab also counts a body whose length differs from the first one's; the heartbeat list
    # changes length when beat writes, so only connection errors count as failures.
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", out)
    result["failed"] = float(sum(int(n) for n in kinds.groups())) if kinds else 0.0
    if result["non_2xx"] or result["failed"]:
        # A finding, not a crash: the table shows every failed request.
        print(f"  {url}: {result['failed']:.0f} failed, {result['non_2xx']} non-2xx", flush=True)
    return result


def pgbench_tps(output: str) -> float:
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if found is None:
        raise RuntimeError(f"pgbench printed no TPS:\n{output}")
    return float(found.group(1))


def redis_rps(output: str) -> dict[str, float]:
    rows = [line.replace('"', "").split(",") for line in output.splitlines()]
    return {row[0]: float(row[1]) for row in rows if len(row) > 1 and row[0] in ("SET", "GET")}


# ---------------------------------------------------------------------------- table


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def pair_rows(what: str, unit: str, results: dict) -> list[str]:
    """Rows of bare against container: median [min-max] and the ratio of the medians."""

    def cell(d: dict) -> str:
        return f"{d['median']:.0f} [{d['min']:.0f}-{d['max']:.0f}]"

    rows = [f"{what:<24}{'bare ' + unit:>24}{'container ' + unit:>26}{'container/bare':>16}"]
    for name, pair in results.items():
        b, c = pair["bare"], pair["container"]
        rows.append(f"{name:<24}{cell(b):>24}{cell(c):>26}{ratio(c['median'], b['median']):>16}")
    return rows


def table(r: dict) -> str:
    out = []
    m = r["machine"]
    out.append(
        f"Senex Trader stack benchmark, {r['date']}, host {r['host']} ({m['cores']} cores,"
        f" shared), git {r['revision']}"
    )
    out.append(
        f"load average (1/5/15 min): before {m['load_before']}, after web {m['load_after_web']},"
        f" at the end {m['load_end']}"
    )
    w = r["web"]
    out.append("")
    out.append(
        f"Web: ApacheBench -n {w['requests']} -c {w['concurrency']} -t {w['time_limit']}"
        f" (no keep-alive), {w['rounds']} rounds; median [min-max]; stack web server:"
        f" {w['deployed_server']} via {w['deployed_path']}"
    )
    out.append(
        f"{'endpoint':<21}{'server':<18}{'path':<11}{'req/s':>8} {'[min-max]':<13}"
        f"{'p50 ms':>7}{'p99 ms':>7}{'vs bare':>9}{'vs Daphne':>11}{'failed':>8}"
    )
    for endpoint in ENDPOINTS:
        for server in SERVERS:
            for path in w["paths"]:
                cell = w["results"][endpoint][server][path]
                rps = cell["rps"]
                bare = w["results"][endpoint][server]["bare"]["rps"]["median"]
                daphne = w["results"][endpoint]["daphne"][path]["rps"]["median"]
                out.append(
                    f"{endpoint:<21}{SERVERS[server][0]:<18}{path:<11}{rps['median']:>8.0f}"
                    f" {f'[{rps["min"]:.0f}-{rps["max"]:.0f}]':<13}"
                    f"{cell['p50_ms']['median']:>7.0f}{cell['p99_ms']['median']:>7.0f}"
                    f"{ratio(rps['median'], bare):>9}{ratio(rps['median'], daphne):>11}"
                    f"{cell['failed']:>8.0f}"
                )
    p = r["postgres"]
    out.append("")
    out.append(
        f"PostgreSQL {p['version']}: pgbench scale {p['scale']}, {p['clients']} clients,"
        f" {p['rounds']} rounds; bare = host to bare server on loopback, container = a"
        " container on the stack's network to senex-postgres"
    )
    out.extend(pair_rows("workload", "TPS", p["results"]))
    d = r["redis"]
    out.append("")
    out.append(
        f"Redis {d['version']}: redis-benchmark -n {d['requests']} -c {d['clients']},"
        f" {d['rounds']} rounds; same paths as PostgreSQL"
    )
    out.extend(pair_rows("command", "req/s", d["results"]))
    mem = r["memory"]
    out.append("")
    out.append(f"Memory, idle after start ({mem['source']})")
    for unit, value in mem["units"].items():
        out.append(f"  {unit:<28}{value / 1e6:>8.1f} MB")
    out.append(f"  {'whole stack':<28}{mem['total'] / 1e6:>8.1f} MB")
    dep = r["deployment"]
    out.append("")
    out.append("Deployment")
    out.append(
        f"  image: {dep['image']['total_bytes'] / 1e6:.1f} MB total,"
        f" {dep['image']['above_base_bytes'] / 1e6:.1f} MB above the base"
        f" ({dep['image']['base_bytes'] / 1e6:.1f} MB)"
    )
    if "deploy_seconds" not in dep:
        out.append("  (an already deployed host was reused: no deployment timings)")
        return "\n".join(out)
    out.append(f"  bare test host booted (SSH answering): {dep['host_create_seconds']:.1f} s")
    out.append(
        f"  bare host -> healthy stack (deploy incl. image build): {dep['deploy_seconds']:.1f} s,"
        f" changed={dep['deploy_changed']}"
    )
    out.append(
        f"  no-op re-deploy: {dep['redeploy_seconds']:.1f} s, changed={dep['redeploy_changed']}"
    )
    return "\n".join(out)


# ---------------------------------------------------------------------------- main


def rounds_in_turn(items: list, rounds: int) -> list[list]:
    """Every round runs every item, in reverse order every other round to spread the drift."""
    return [items if n % 2 == 0 else items[::-1] for n in range(rounds)]


def measure_web(host: BenchHost, args: argparse.Namespace, paths: dict) -> dict:
    """paths: {server: {path: address}}."""
    url = "http://{address}:" + str(WEB_PORT) + "{endpoint}"
    targets = [
        (endpoint, server, path, address)
        for endpoint in ENDPOINTS
        for server, by_path in paths.items()
        for path, address in by_path.items()
    ]
    for endpoint, _, _, address in targets:  # warm up: imports, connections, caches
        ab(host, url.format(address=address, endpoint=endpoint), 300, args.concurrency, 30)
    samples: dict = {}
    for order in rounds_in_turn(targets, args.rounds):
        for endpoint, server, path, address in order:
            result = ab(
                host,
                url.format(address=address, endpoint=endpoint),
                args.requests,
                args.concurrency,
                args.time_limit,
            )
            samples.setdefault(endpoint, {}).setdefault(server, {}).setdefault(path, []).append(
                result
            )
            print(f"  {endpoint} {server} {path}: {result['rps']:.0f} req/s", flush=True)
    return {
        endpoint: {
            server: {
                path: {
                    key: spread([s[key] for s in runs])
                    for key in ("rps", "p50_ms", "p99_ms", "seconds")
                }
                | {"failed": sum(s["failed"] + s["non_2xx"] for s in runs)}
                for path, runs in by_path.items()
            }
            for server, by_path in by_server.items()
        }
        for endpoint, by_server in samples.items()
    }


def image_of(host: BenchHost, unit: str) -> str:
    text = host.root(f"cat {quadlet_dir()}/{unit}.container")
    return re.search(r"^Image=(.+)$", text, re.MULTILINE).group(1).strip()


def postgres_version(host: BenchHost) -> str:
    """The container's PostgreSQL version, e.g. 17.11."""
    out = host.user("podman exec senex-postgres postgres --version")
    return re.search(r"\(PostgreSQL\) (\S+)", out).group(1)


def measure_postgres(host: BenchHost, args: argparse.Namespace, bare: dict) -> dict:
    image = image_of(host, "senex-postgres")
    version = postgres_version(host)
    scale, clients = 4, 4
    inside = (
        f"podman run --rm --network senex --secret senex-db-password,type=env,target=PGPASSWORD"
        f" --entrypoint pgbench {image} -h senex-postgres -U senex"
    )
    outside = f"PGPASSWORD={bare['db_password']} pgbench -h {BARE_PG[0]} -p {BARE_PG[1]} -U senex"
    host.user(
        "podman exec senex-postgres psql -q -U senex -d postgres"
        " -c 'DROP DATABASE IF EXISTS bench' -c 'CREATE DATABASE bench'"
    )
    host.user(f"{inside} -i -q -s {scale} bench 2>&1")
    host.root(f"{outside} -i -q -s {scale} bench 2>&1")
    workloads = {
        "select-only (-S)": f"-S -c {clients} -j 2 -t {args.pg_transactions * 10}",
        "TPC-B-like (default)": f"-c {clients} -j 2 -t {args.pg_transactions}",
    }
    samples: dict = {mode: {"bare": [], "container": []} for mode in workloads}
    for order in rounds_in_turn(list(workloads.items()), args.rounds):
        for mode, options in order:
            for where in (
                ("bare", "container")
                if len(samples[mode]["bare"]) % 2 == 0
                else (
                    "container",
                    "bare",
                )
            ):
                if where == "bare":
                    out = host.root(f"timeout 300 env {outside} {options} bench 2>&1")
                else:
                    out = host.user(f"timeout 300 env {inside} {options} bench 2>&1")
                samples[mode][where].append(pgbench_tps(out))
            print(f"  pgbench {mode}: {samples[mode]}", flush=True)
    host.user("podman exec senex-postgres psql -q -U senex -d postgres -c 'DROP DATABASE bench'")
    return {
        "version": version,
        "image": image,
        "scale": scale,
        "clients": clients,
        "rounds": args.rounds,
        "results": {
            mode: {where: spread(values) for where, values in by.items()}
            for mode, by in samples.items()
        },
    }


def measure_redis(host: BenchHost, args: argparse.Namespace, bare: dict) -> dict:
    image = image_of(host, "senex-redis")
    version = re.search(r"v=(\S+)", host.user("podman exec senex-redis redis-server --version"))
    env = host.root(f"cat /home/{USER}/.config/senex/senex.env")
    password = re.search(r"^REDIS_URL=redis://:([^@]*)@", env, re.MULTILINE).group(1)
    options = f"-n {args.redis_requests} -c 16 -t set,get --csv"
    # redis-benchmark reads its password from -a only; both are this test host's own.
    inside = (
        f"podman run --rm --network senex --entrypoint redis-benchmark {image}"
        f" -h senex-redis -a {password} {options}"
    )
    outside = (
        f"redis-benchmark -h {BARE_REDIS[0]} -p {BARE_REDIS[1]} -a {bare['redis_password']}"
        f" {options}"
    )
    samples: dict = {"SET": {"bare": [], "container": []}, "GET": {"bare": [], "container": []}}
    for order in rounds_in_turn(["bare", "container"], args.rounds):
        for where in order:
            run: Callable[[str], str] = host.root if where == "bare" else host.user
            found = redis_rps(run(f"timeout 120 env {outside if where == 'bare' else inside}"))
            for op, value in found.items():
                samples[op][where].append(value)
        print(f"  redis-benchmark: {samples}", flush=True)
    return {
        "version": version.group(1) if version else "?",
        "image": image,
        "requests": args.redis_requests,
        "clients": 16,
        "rounds": args.rounds,
        "results": {
            op: {where: spread(values) for where, values in by.items()}
            for op, by in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "5")))
    parser.add_argument("--requests", type=int, default=2000, help="per ab run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--time-limit", type=int, default=30, help="seconds per ab run")
    parser.add_argument("--pg-transactions", type=int, default=500, help="per pgbench client")
    parser.add_argument("--redis-requests", type=int, default=50000)
    parser.add_argument(
        "--reuse", action="store_true", help="keep an already deployed host (no deploy figures)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the test host running")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": HOST_NAME,
        "revision": subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "machine": {"cores": os.cpu_count(), "load_before": loadavg()},
    }
    host = BenchHost(HOST_NAME, SSH_PORT)
    log = Path(tempfile.mkdtemp(prefix=f"senex-bench-{stamp}-"))
    deployment: dict = {}
    if not args.reuse:
        print(f"Deploying a fresh {HOST_NAME} (logs in {log})", flush=True)
        testhost("destroy", HOST_NAME)
        start = time.monotonic()
        testhost("create", HOST_NAME, "--ssh-port", str(SSH_PORT))
        deployment["host_create_seconds"] = time.monotonic() - start
        deployment["deploy_seconds"], deployment["deploy_changed"] = deploy(log / "deploy.log")
        deployment["redeploy_seconds"], deployment["redeploy_changed"] = deploy(
            log / "redeploy.log"
        )
    host.create()
    host.uid = int(host.root(f"id -u {USER}"))
    try:
        if args.reuse:
            reset(host)
        deployment["image"] = image_sizes(host)
        report["deployment"] = deployment

        services = ["senex-postgres", "senex-redis", "senex-web", "senex-worker", "senex-beat"]
        time.sleep(20)  # let the fresh stack settle before reading idle memory
        memory = idle_memory(host, services)
        report["memory"] = {
            "source": next(iter(memory.values()))["source"],
            "units": {u: v["bytes"] for u, v in memory.items()},
            "total": sum(v["bytes"] for v in memory.values()),
        }

        print("Setting up the bare services and the extra web units", flush=True)
        pg_major = postgres_version(host).split(".")[0]
        install_bare_packages(host, pg_major)
        copy_app_from_image(host)
        bare = start_bare_services(host, pg_major)

        socket = socket_unit(host)
        unit = host.root(f"cat {quadlet_dir()}/senex-web.container")
        deployed_route = re.search(r"^Exec=(\S+)", unit, re.MULTILINE).group(1)
        deployed = next(s for s, (_, route) in SERVERS.items() if route == deployed_route)
        deployed_path = "socket" if socket else "published"
        paths: dict = {}
        number = 0
        for server, (_, route) in SERVERS.items():
            number += 1
            address = f"{NET}.{number}"
            start_bare_web(host, server, address)
            paths[server] = {"bare": address}
            for path in ("published", "socket") if socket else ("published",):
                if server == deployed and path == deployed_path:
                    paths[server][path] = "127.0.0.1"
                    continue
                number += 1
                address = f"{NET}.{number}"
                extra_web_unit(
                    host,
                    f"senex-bench-{server}-{path}",
                    route,
                    address,
                    socket if path == "socket" else "",
                )
                paths[server][path] = address
        for by_path in paths.values():
            for address in by_path.values():
                wait_http(host, address)
        print(f"Web servers: {paths}", flush=True)

        print("Measuring the web servers", flush=True)
        report["web"] = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "time_limit": args.time_limit,
            "rounds": args.rounds,
            "deployed_server": SERVERS[deployed][0],
            "deployed_path": deployed_path,
            "paths": list(paths["daphne"]),
            "addresses": paths,
            "results": measure_web(host, args, paths),
        }
        report["machine"]["load_after_web"] = loadavg()
        print("Measuring PostgreSQL", flush=True)
        report["postgres"] = measure_postgres(host, args, bare)
        print("Measuring Redis", flush=True)
        report["redis"] = measure_redis(host, args, bare)
        report["machine"]["load_end"] = loadavg()
    finally:
        if not args.keep:
            testhost("destroy", HOST_NAME)
    text = table(report)
    (RESULTS / f"stack-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"stack-{stamp}.txt").write_text(text + "\n")
    print()
    print(text)
    print(f"\nWritten: {RESULTS / f'stack-{stamp}.json'}")


if __name__ == "__main__":
    main()
