"""Background processes of the tooling (forwarders, the lab registry), each known by a pid file."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from common import TesthostError


def start(argv: list[str], pidfile: Path, log: Path) -> int:
    """Start ARGV detached in a session of its own and record its pid; return the pid."""
    with open(log, "ab") as output:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        )
    pidfile.write_text(f"{process.pid}\n")
    # A daemon that cannot start (a taken port, a bad config) exits at once: say so now.
    time.sleep(0.3)
    if process.poll() is not None:
        pidfile.unlink(missing_ok=True)
        tail = " | ".join(log.read_text(errors="replace").splitlines()[-3:])
        raise TesthostError(f"{argv[0]} exited at once ({process.returncode}): {tail}")
    return process.pid


def running(pidfile: Path, marker: str) -> int | None:
    """The pid in PIDFILE while that process still runs and its command line holds MARKER."""
    try:
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (FileNotFoundError, ValueError):
        return None
    # The pid may have been reused by something else since.
    return pid if marker.encode() in cmdline else None


def stop(pidfile: Path, marker: str) -> bool:
    """Stop PIDFILE's process and its session (a forwarder's connections); True if it ran."""
    pid = running(pidfile, marker)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while running(pidfile, marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        # Reap it when this process started it (lab-up then lab-down in one test run).
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        # A killed process takes a moment to leave (a busy machine, many threads): wait for it,
        # so that what comes next (removing its network namespace) does not find it there.
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return pid is not None


def _gone(pid: int) -> bool:
    """True once PID has exited (no longer listed, or a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
