"""Print how long test hosts take to create, reboot and destroy; nothing is asserted.

Uses the test-host tooling as its callers do (the command line, as root), with hosts
th-bench-1.. on SSH ports 2205.. by default. The first create also pays for the cached
root filesystem when it is missing; its figure is printed separately.
"""

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TESTHOST = Path(__file__).resolve().parents[1] / "molecule" / "testhost" / "testhost.py"
FIRST_PORT = int(os.environ.get("SENEX_TESTHOST_BENCH_SSH_PORT", "2205"))
ROUNDS = int(os.environ.get("SENEX_TESTHOST_BENCH_ROUNDS", "3"))


def timed(*args: str) -> float:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(TESTHOST), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"testhost.py {' '.join(args)} failed: {result.stderr.strip()}")
    return time.monotonic() - start


def once(label: str, seconds: float) -> None:
    print(f"{label:<34} {seconds:6.2f} s")


def line(label: str, seconds: list[float]) -> None:
    figures = " ".join(f"{s:.2f}" for s in seconds)
    print(f"{label:<34} median {statistics.median(seconds):6.2f} s   ({figures})")


def main() -> None:
    name, port = "th-bench-1", str(FIRST_PORT)
    timed("destroy", name)
    once("first create (fills caches if empty)", timed("create", name, "--ssh-port", port))
    creates, reboots, destroys, idempotent = [], [], [], []
    for _ in range(ROUNDS):
        reboots.append(timed("reboot", name))
        idempotent.append(timed("create", name, "--ssh-port", port))
        destroys.append(timed("destroy", name))
        creates.append(timed("create", name, "--ssh-port", port))
    timed("destroy", name)
    line("create (bare host, SSH answering)", creates)
    line("create again (already running)", idempotent)
    line("reboot (poweroff + boot + SSH)", reboots)
    line("destroy (poweroff + remove)", destroys)

    # Several hosts at once, as a database host and two app hosts would be.
    names = [f"th-bench-{i}" for i in range(1, 4)]
    with ThreadPoolExecutor(len(names)) as pool:
        start = time.monotonic()
        list(pool.map(lambda i: timed("create", names[i], "--ssh-port", str(FIRST_PORT + i)),
                      range(len(names))))  # fmt: skip
        together = time.monotonic() - start
        start = time.monotonic()
        list(pool.map(lambda n: timed("destroy", n), names))
        apart = time.monotonic() - start
    once("create 3 hosts at once", together)
    once("destroy 3 hosts at once", apart)
    once("stand-in images (cached or built)", timed("standins"))


if __name__ == "__main__":
    main()
