"""Ansible callback: the CPU each task costs on the test host and on the controller.

Reads the test host's cgroup (`cpu.stat` of senex-testhost-NAME, HOST_CPU_CGROUP) and the
controller's own CPU (this process and its reaped children) at every task start, and writes
the totals per task name as JSON to HOST_CPU_JSON when the play ends. Used by
bench/deploy_cpu.py; nothing in a deploy loads it.
"""

import json
import os
import resource
import time
from pathlib import Path

from ansible.plugins.callback import CallbackBase


def host_seconds(cgroup: Path) -> float:
    for line in (cgroup / "cpu.stat").read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise RuntimeError(f"no usage_usec in {cgroup}/cpu.stat")


def controller_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "host_cpu"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.cgroup = Path(os.environ["HOST_CPU_CGROUP"])
        self.tasks: dict[str, dict[str, float]] = {}
        self.current: tuple[str, float, float, float] | None = None

    def _close(self) -> None:
        if self.current is None:
            return
        name, host, controller, wall = self.current
        row = self.tasks.setdefault(name, {"host": 0.0, "controller": 0.0, "wall": 0.0})
        row["host"] += host_seconds(self.cgroup) - host
        row["controller"] += controller_seconds() - controller
        row["wall"] += time.monotonic() - wall
        self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._close()
        now = (host_seconds(self.cgroup), controller_seconds(), time.monotonic())
        self.current = (task.get_name(), *now)

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats) -> None:
        self._close()
        Path(os.environ["HOST_CPU_JSON"]).write_text(json.dumps(self.tasks, indent=1))
