"""testhost.py refuses bad input early, with a message naming the problem and the fix."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hostcli import TESTHOST, run_testhost

SSH_PORT = int(os.environ.get("SENEX_TESTHOST_TEST_SSH_PORT_FREE", "2209"))


def test_refuses_to_run_unprivileged():
    # A python the unprivileged user may execute (a virtual environment may live in /root).
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    as_nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python)
    result = run_testhost("list", runner=as_nobody)
    assert result.returncode == 2
    assert "must run as root" in result.stderr


def test_names_the_package_of_a_missing_tool(tmp_path: Path):
    # A PATH with every tool the tooling needs except systemd-nspawn and mmdebstrap.
    for tool in ("nsenter", "ssh", "ssh-keygen", "setsid", "cp", "tar"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    result = run_testhost("list", env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "missing systemd-nspawn, mmdebstrap" in result.stderr
    assert "apt-get install -y mmdebstrap systemd-container" in result.stderr


def test_refuses_a_port_another_process_listens_on():
    with socket.create_server(("127.0.0.1", SSH_PORT)):
        result = run_testhost("create", "th-taken", "--ssh-port", str(SSH_PORT))
    assert result.returncode == 2
    assert f"port {SSH_PORT} on 127.0.0.1 is taken" in result.stderr
    assert "choose another --ssh-port" in result.stderr
    assert "th-taken" not in run_testhost("list").stdout


def test_refuses_a_bad_host_name():
    result = run_testhost("create", "Bad_Name", "--ssh-port", str(SSH_PORT))
    assert result.returncode == 2
    assert "bad host name 'Bad_Name'" in result.stderr


def test_refuses_a_privileged_port():
    result = run_testhost("create", "th-low", "--ssh-port", "22")
    assert result.returncode == 2
    assert "choose one in 1024-65535" in result.stderr


def test_refuses_to_reboot_a_missing_host():
    result = run_testhost("reboot", "th-missing")
    assert result.returncode == 2
    assert "no test host th-missing: create it first" in result.stderr


def test_destroying_a_missing_host_changes_nothing():
    result = run_testhost("destroy", "th-missing")
    assert result.returncode == 0
    assert '"changed": false' in result.stdout


def test_a_failed_create_leaves_nothing_behind():
    # Kill nspawn as soon as it runs: the create must fail and clean up after itself.
    state = Path(os.environ.get("SENEX_TESTHOST_DIR", "/var/lib/senex-testhost")) / "th-fail"
    create = subprocess.Popen(
        [sys.executable, str(TESTHOST), "create", "th-fail", "--ssh-port", str(SSH_PORT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    while create.poll() is None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int((state / "nspawn.pid").read_text())
            if b"systemd-nspawn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    _, stderr = create.communicate(timeout=300)
    assert create.returncode == 2
    assert "test host th-fail did not boot" in stderr or "did not answer" in stderr
    assert not state.exists()
    assert not Path("/sys/fs/cgroup/unified/senex-testhost-th-fail").exists()
