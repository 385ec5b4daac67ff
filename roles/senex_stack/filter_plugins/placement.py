"""Where each service of the stack's model runs, from the inventory's groups."""


def senex_placement(
    model: list[dict], groups: dict, host: str = "", everyone: str = "senex"
) -> dict:
    """{service name: [hosts]}: the hosts of `everyone` that are in the service's group, in
    inventory order, or all of them when the inventory has no such group (one host runs
    everything unless the inventory splits the stack). A service with `once` runs on the first
    of those hosts in its group's order only (the migrations: exactly once per deploy, on the
    host deploy.yml's rollout reaches first). `host`, when given, counts as one of `everyone`
    even if the inventory does not put it there."""
    hosts = list(groups.get(everyone, []))
    placement = {}
    if host and host not in hosts:
        hosts.append(host)
    for service in model:
        group = service["group"]
        if group not in groups:
            placed = hosts
        elif service.get("once"):
            placed = [host for host in groups[group] if host in hosts]
        else:
            placed = [host for host in hosts if host in groups[group]]
        placement[service["name"]] = placed[:1] if service.get("once") else placed
    return placement


def senex_host_services(model: list[dict], groups: dict, host: str) -> list[dict]:
    """The services of the model that `host` runs, in the model's (start) order."""
    placement = senex_placement(model, groups, host)
    return [service for service in model if host in placement[service["name"]]]


def senex_kind_hosts(model: list[dict], groups: dict) -> dict:
    """{kind: [hosts]}: the hosts that run a service of each kind, in inventory order."""
    placement = senex_placement(model, groups)
    hosts = list(groups.get("senex", []))
    kinds = {}
    for service in model:
        kinds.setdefault(service["kind"], set()).update(placement[service["name"]])
    return {kind: [host for host in hosts if host in placed] for kind, placed in kinds.items()}


def senex_misplaced(
    model: list[dict], groups: dict, kinds: list[str], least: int = 1
) -> list[dict]:
    """The services of `kinds` that would not run on exactly one host (at least `least`, at most
    one): [{name, group, hosts}]."""
    placement = senex_placement(model, groups)
    return [
        {"name": service["name"], "group": service["group"], "hosts": placement[service["name"]]}
        for service in model
        if service["kind"] in kinds and not least <= len(placement[service["name"]]) <= 1
    ]


class FilterModule:
    def filters(self) -> dict:
        return {
            "senex_placement": senex_placement,
            "senex_host_services": senex_host_services,
            "senex_kind_hosts": senex_kind_hosts,
            "senex_misplaced": senex_misplaced,
        }
