"""The stack model: the services `senex_stack_services` declares in the senex_stack role.

The role's defaults are the one place the services are written; benchmarks and tests read
them from there instead of listing them again. Values stay as written: a `route` may be a
Jinja expression that only the role evaluates. Needs PyYAML (the controller's virtual
environment), unlike the test-host command line next to it.
"""

from pathlib import Path
from typing import Any

import yaml

DEFAULTS = Path(__file__).resolve().parents[2] / "roles" / "senex_stack" / "defaults" / "main.yml"
# Kinds whose service runs once and exits; every other kind runs as long as the stack.
ONESHOT_KINDS = frozenset({"oneshot"})
# Kinds that run only where the inventory turns metrics on (senex_stack_metrics).
EXPORTER_KINDS = frozenset({"exporter", "host-exporter"})


def stack_services(defaults: Path = DEFAULTS) -> list[dict[str, Any]]:
    """Every service of the model in start order (the extra entries last), with the keys an
    entry leaves out taken from `senex_stack_service_defaults`, as the role does."""
    data = yaml.safe_load(defaults.read_text())
    fill = data["senex_stack_service_defaults"]
    entries = data["senex_stack_services"] + data["senex_stack_services_extra"]
    return [{**fill, **entry} for entry in entries]


def service_of_kind(kind: str) -> dict[str, Any]:
    """The one service of `kind` (database, cache, web, ...); fails unless there is exactly one."""
    found = [service for service in stack_services() if service["kind"] == kind]
    if len(found) != 1:
        names = ", ".join(service["name"] for service in found) or "none"
        raise LookupError(f"the stack model has not one service of kind {kind}: {names}")
    return found[0]


def unit_of_kind(kind: str) -> str:
    """The systemd unit name (without `.service`) of the one service of `kind`."""
    return service_of_kind(kind)["name"]


def long_running_units(metrics: bool = False) -> list[str]:
    """The units that are active once the stack is up, in start order (the exporters only
    with `metrics`)."""
    skip = ONESHOT_KINDS | (frozenset() if metrics else EXPORTER_KINDS)
    return [s["name"] for s in stack_services() if s["kind"] not in skip]


def container_name(unit: str) -> str:
    """The container a unit runs: named like the unit, or `<template>-<instance>` for an
    instance of a template (senex-worker@default runs senex-worker-default)."""
    return unit.replace("@", "-", 1)
