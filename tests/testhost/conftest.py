"""Helpers for the test-host tooling's tests: they boot real hosts, so they run as root."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session", autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the test-host tests boot hosts with systemd-nspawn: run them as root")
