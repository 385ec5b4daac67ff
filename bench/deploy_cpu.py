"""Where a deploy's time and CPU go, task by task, on a test host that already runs the stack.

Runs the playbook once more (by default `make sandbox` again: a no-op deploy of the running
sandbox) with the callback in bench/callbacks/ and prints its wall time, changed count, the CPU
it cost the controller and the test host (the host's cgroup, less what the idle stack's health
checks used in as many seconds, measured just before), and the tasks that cost the host most.
Writes everything as JSON to bench/results/. Nothing is asserted. Needs root (the test host's
cgroup); the host must be up and deployed (`make sandbox`).
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from callbacks.host_cpu import host_seconds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CGROUP = Path("/sys/fs/cgroup/unified")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="sandbox", help="the test host's name")
    parser.add_argument("--inventory", default="inventories/sandbox/hosts.yml")
    parser.add_argument("--playbook", default="ansible/sandbox.yml")
    parser.add_argument(
        "--vault-password-file", default="inventories/sandbox/SANDBOX-ONLY-vault-password"
    )
    parser.add_argument("--idle-seconds", type=int, default=30, help="baseline before the run")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    cgroup = CGROUP / f"senex-testhost-{args.host}"
    if not (cgroup / "cpu.stat").exists():
        sys.exit(f"no test host {args.host} runs here ({cgroup}): run `make sandbox` first")

    print(f"Measuring {args.host} idle for {args.idle_seconds} s", flush=True)
    before = host_seconds(cgroup)
    time.sleep(args.idle_seconds)
    idle_per_second = (host_seconds(cgroup) - before) / args.idle_seconds

    tasks_json = Path(tempfile.mkstemp(prefix="senex-deploy-cpu-", suffix=".json")[1])
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "bench" / "callbacks"),
        "ANSIBLE_CALLBACKS_ENABLED": "host_cpu",
        "ANSIBLE_NOCOLOR": "true",
        "HOST_CPU_CGROUP": str(cgroup),
        "HOST_CPU_JSON": str(tasks_json),
    }
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "--inventory",
        args.inventory,
        "--vault-password-file",
        args.vault_password_file,
        args.playbook,
    ]
    print(f"Running {args.playbook} against {args.host}", flush=True)
    host_before, controller_before = host_seconds(cgroup), children_seconds()
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    host = host_seconds(cgroup) - host_before - idle_per_second * wall
    controller = children_seconds() - controller_before
    if result.returncode != 0:
        sys.exit(f"the playbook failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    recap = re.findall(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)", result.stdout, re.MULTILINE)
    tasks = json.loads(tasks_json.read_text())
    tasks_json.unlink()

    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": args.host,
        "playbook": args.playbook,
        "cores": os.cpu_count(),
        "wall_seconds": round(wall, 1),
        "ok_changed": [[int(ok), int(changed)] for ok, changed in recap],
        "controller_cpu_seconds": round(controller, 1),
        "host_cpu_seconds": round(host, 1),
        "host_idle_cpu_per_second": round(idle_per_second, 3),
        "tasks": tasks,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"deploy-cpu-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=1))

    print(f"\n{args.playbook} on {args.host} ({os.cpu_count()} cores)")
    print(f"  wall {wall:.1f} s; ok/changed per host {report['ok_changed']}")
    print(f"  CPU: controller {controller:.1f} s, test host {host:.1f} s (idle stack excluded)")
    print(f"\nTasks by the test host's CPU (top {args.top}; the idle stack not excluded)")
    print(f"{'host s':>7} {'ctl s':>6} {'wall s':>7}  task")
    rows = sorted(tasks.items(), key=lambda item: -item[1]["host"])[: args.top]
    for name, row in rows:
        print(f"{row['host']:7.2f} {row['controller']:6.2f} {row['wall']:7.2f}  {name}")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
