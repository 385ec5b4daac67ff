"""Runs the test-host tooling for its tests. They boot real hosts, so they run as root; as
any other user every call fails with the tooling's own "must run as root".

Not named conftest.py: tests/image has one too, and `from conftest import` would pick either.
"""

import json
import subprocess
import sys
from pathlib import Path

TESTHOST = Path(__file__).resolve().parents[2] / "molecule" / "testhost" / "testhost.py"


def run_testhost(*args: str, env: dict | None = None, runner: tuple[str, ...] = (sys.executable,)):
    """Run testhost.py with RUNNER (a python, maybe behind setpriv); never raises on failure."""
    return subprocess.run(
        [*runner, str(TESTHOST), *args], capture_output=True, text=True, check=False, env=env
    )


def run_json(*args: str):
    result = run_testhost(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
