"""Runs the test-host tooling for its tests. They boot real hosts, so they run as root; as
any other user every call fails with the tooling's own "must run as root".

Not named conftest.py: tests/image has one too, and `from conftest import` would pick either.
"""

import json
import subprocess
import sys
from pathlib import Path

TESTHOST = Path(__file__).resolve().parents[2] / "molecule" / "testhost" / "testhost.py"


def run_testhost(
    *args: str,
    env: dict | None = None,
    runner: tuple[str, ...] = (sys.executable,),
    stdin: str | None = None,
):
    """Run testhost.py with RUNNER (a python, maybe behind setpriv); never raises on failure."""
    return subprocess.run(
        [*runner, str(TESTHOST), *args],
        capture_output=True, text=True, check=False, env=env, input=stdin,
    )  # fmt: skip


def run_json(*args: str):
    result = run_testhost(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ssh(host: dict, command: str) -> str:
    """Run COMMAND over SSH on a host as `create` described it; its output, stripped."""
    argv = ["ssh", "-i", host["identity_file"], "-p", str(host["port"]), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={host['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
            f"{host['user']}@{host['address']}", command]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
