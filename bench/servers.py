"""CPU per 1,000 requests of the image's two web servers, each as one process on one core.

Runs the app from `app/` with the production settings under Daphne and under Gunicorn with the
image's configuration (`docker/gunicorn/gunicorn.conf.py`: uvicorn workers), one worker as one
core warrants, each pinned to the first core with ApacheBench on the second, and reads the
server's CPU time from /proc before and after each run. The servers take turns, the order
reversed every other round; the figures are the median and the spread. No container and no
network namespace: what the servers themselves cost, which bench/stack.py's figures add the
stack's paths to. `/health/simple/` needs no database. Prints a table and writes
bench/results/servers-<time>.json. Nothing is asserted. Needs the venv and ab.
"""

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
PATH = "/health/simple/"
# The entrypoint's commands (docker/entrypoint.sh), on a port of this run's own.
SERVERS = {
    "Daphne": [str(BIN / "daphne"), "--access-log", "/dev/null", "--port", "{port}"],
    "Gunicorn+uvicorn": [
        str(BIN / "gunicorn"),
        "--config",
        str(ROOT / "docker" / "gunicorn" / "gunicorn.conf.py"),
        "--bind",
        "127.0.0.1:{port}",
    ],
}


def environment() -> dict[str, str]:
    """The production settings with throwaway secrets, JSON logs and one Gunicorn worker."""
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "senextrader.settings.production",
        "PYTHONPATH": str(ROOT / "app"),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_WORKERS": "1",
    }


def cpu_seconds(pids: list[int]) -> float:
    """User and system time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(pid: int) -> list[int]:
    """The server and the processes it forked (Gunicorn's worker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def ab(port: int, requests: int, concurrency: int, core: str) -> dict:
    url = f"http://127.0.0.1:{port}{PATH}"
    command = ["taskset", "--cpu-list", core, "ab", "-q", "-r", "-s", "30"]
    out = subprocess.run(
        [*command, "-n", str(requests), "-c", str(concurrency), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    fields = {"rps": r"Requests per second:\s+([\d.]+)", "complete": r"Complete requests:\s+(\d+)"}
    found = {key: float(re.search(pattern, out).group(1)) for key, pattern in fields.items()}
    found["failed"] = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    return found


def wait_until_serving(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited ({process.returncode})")
        probe = ["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}{PATH}"]
        if subprocess.run(probe, check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not answer within 60 s")


def measure(name: str, port: int, args: argparse.Namespace, cores: tuple[str, str]) -> dict:
    argv = ["taskset", "--cpu-list", cores[0]] + [a.format(port=port) for a in SERVERS[name]]
    argv += ["senextrader.asgi:application"]
    quiet = subprocess.DEVNULL
    app = ROOT / "app"
    process = subprocess.Popen(argv, cwd=app, env=environment(), stdout=quiet, stderr=quiet)
    try:
        wait_until_serving(port, process)
        ab(port, args.warmup, args.concurrency, cores[1])
        pids = server_pids(process.pid)
        before = cpu_seconds(pids)
        result = ab(port, args.requests, args.concurrency, cores[1])
        used = cpu_seconds(pids) - before
    finally:
        process.terminate()
        process.wait(timeout=30)
    return result | {"cpu_per_1k": used / result["complete"] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=8000, help="per server and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    cores = ("0", "1") if os.cpu_count() and os.cpu_count() > 1 else ("0", "0")
    samples: dict[str, list[dict]] = {name: [] for name in SERVERS}
    port = 18790
    for number in range(args.rounds):
        order = list(SERVERS) if number % 2 == 0 else list(reversed(SERVERS))
        for name in order:
            port += 1
            samples[name].append(measure(name, port, args, cores))
            print(f"  round {number + 1} {name}: {samples[name][-1]['cpu_per_1k']:.3f} CPU s/1k")
    print(f"\n{args.rounds} rounds of {args.requests} requests to {PATH}, {args.concurrency} open")
    print(f"{'server':18} {'CPU s/1k [min-max]':>24} {'req/s':>7} {'failed':>7}")
    for name, runs in samples.items():
        cpu = [run["cpu_per_1k"] for run in runs]
        rps = statistics.median(run["rps"] for run in runs)
        failed = sum(run["failed"] for run in runs)
        spread = f"{statistics.median(cpu):.3f} [{min(cpu):.3f}-{max(cpu):.3f}]"
        print(f"{name:18} {spread:>24} {rps:7.0f} {failed:7d}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = RESULTS / f"servers-{stamp}.json"
    output.write_text(json.dumps({"date": stamp, "args": vars(args), "samples": samples}, indent=1))
    print(f"\nWritten: {output}")


if __name__ == "__main__":
    main()
