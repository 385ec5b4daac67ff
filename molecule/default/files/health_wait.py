#!/usr/bin/env python3
"""Run podman's health checks of containers until each is in the state asked for.

Standard library only; runs on the test host as the service user. Usage:
  health_wait.py healthy|unhealthy|failing TIMEOUT CONTAINER...

Each round runs `podman healthcheck run` on every container not there yet, all at once, then
reads podman's state back. Podman marks a container unhealthy after HealthRetries failed checks
in a row (failures inside HealthStartPeriod do not count), healthy after one that passes.
  healthy    the check just run passed and podman says healthy
  unhealthy  podman says unhealthy
  failing    the check just run failed, or there is no container (it exited and systemd has
             yet to start it again)
Every container's check runs at least once: a state from before the call proves nothing.
Prints, as JSON, a one-line summary and per container what was reached, after how many
seconds and the last check's output; exits 0 when every container got there within TIMEOUT
seconds, 1 otherwise.
"""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

STATES = ("healthy", "unhealthy", "failing")
ROUND_SECONDS = 1.0
# Podman stops a check after its HealthTimeout (10 s at most here); this only keeps a stuck
# podman from hanging the wait on a loaded host.
COMMAND_SECONDS = 60


def podman(*args: str) -> tuple[int, str]:
    try:
        done = subprocess.run(
            ["podman", *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"podman {args[0]} did not finish within {COMMAND_SECONDS} s"
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


def check(container: str, started: float) -> dict:
    """Run the container's check now; podman's state and the check's output after it."""
    exit_code, output = podman("healthcheck", "run", container)
    result = {"check_exit": exit_code, "seconds": round(time.monotonic() - started, 1)}
    code, inspected = podman("inspect", "--type", "container", "--format", "json", container)
    if code != 0:
        return result | {"status": "absent", "output": (output or inspected).strip()[-500:]}
    state = json.loads(inspected)[0]["State"]
    record = state.get("Health") or state.get("Healthcheck") or {}
    log = record.get("Log") or [{}]
    return result | {
        "status": record.get("Status", "none"),
        "failing_streak": record.get("FailingStreak", 0),
        "output": (log[-1].get("Output") or output or "").strip()[-500:],
    }


def reached(result: dict, wanted: str) -> bool:
    if wanted == "failing":
        return result.get("check_exit", 0) != 0
    if wanted == "healthy":
        return result.get("check_exit") == 0 and result["status"] == "healthy"
    return result["status"] == "unhealthy"


def last_line(result: dict) -> str:
    lines = [line for line in result.get("output", "").splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in STATES:
        print(__doc__, file=sys.stderr)
        return 2
    wanted, timeout, containers = argv[0], float(argv[1]), argv[2:]
    started = time.monotonic()
    results: dict[str, dict] = {name: {"status": "not checked"} for name in containers}
    with ThreadPoolExecutor(max_workers=len(containers)) as pool:
        while True:
            waiting = [name for name in containers if not reached(results[name], wanted)]
            if not waiting or time.monotonic() - started > timeout:
                break
            round_started = time.monotonic()
            checked = pool.map(lambda name: check(name, started), waiting)
            results.update(zip(waiting, checked, strict=True))
            time.sleep(max(0.0, ROUND_SECONDS - (time.monotonic() - round_started)))
    summary = ", ".join(
        f"{name} {results[name]['status'] if name in waiting else wanted}"
        f" after {results[name].get('seconds', 0)} s"
        + (" (timed out)" if name in waiting else "")
        + (f": {last_line(results[name])}" if wanted != "healthy" else "")
        for name in containers
    )
    print(json.dumps({"summary": summary, "containers": results}, indent=2, sort_keys=True))
    return 1 if waiting else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
