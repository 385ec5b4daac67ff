#!/usr/bin/env python3
"""One table of the stack on this host, for the service user (status.yml runs it).

Each service of senex.target with its systemd state and its container's health and image
revision, the Celery queues' depths, the age of the last backup (and of the last off-site
snapshot), the edge certificate's expiry, and the disk use of the volumes. Reads only:
systemctl --user, podman, the backup directory, and one TLS handshake with the edge.
With --serve ADDRESS:PORT it serves the same facts as metrics in Prometheus's text format at
/metrics instead (the unit senex-host-exporter runs it so), each scrape reading them anew.
Usage: senex-status.py [--backup-dir DIR] [--env-file FILE] [--offsite SCRIPT] [--serve ADDR:PORT]
"""

import argparse
import http.server
import json
import re
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

REVISION = "org.opencontainers.image.revision"
# Queue depths: every queue Celery declared on the broker's database ($1), read in the Redis
# container with the password of its own config file (never on a command line); the fanout
# exchanges of Celery's events and remote control are no queues.
QUEUES = (
    'export REDISCLI_AUTH="$(sed -n "s/^requirepass //p" /run/secrets/redis.conf)";'
    ' for key in $(redis-cli -n "$1" --scan --pattern "_kombu.binding.*"); do'
    ' queue="${key#_kombu.binding.}"; case "$queue" in *pidbox|celeryev) continue ;; esac;'
    ' echo "$queue $(redis-cli -n "$1" llen "$queue")"; done'
)


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)  # noqa: S603
    return result.stdout if result.returncode == 0 else ""


def podman_containers() -> list[dict]:
    """Every container of the service user, as `podman ps --all` describes it."""
    out = run("podman", "ps", "--all", "--format", "json")
    return json.loads(out) if out else []


def services() -> list[str]:
    """The services senex.target pulls in, in systemd's order, each once."""
    out = run("systemctl", "--user", "list-dependencies", "--plain", "--no-pager", "senex.target")
    names = [line.strip() for line in out.splitlines()]
    return list(dict.fromkeys(name for name in names if name.endswith(".service")))


def service_states(units: list[str], containers: list[dict]) -> list[dict[str, str]]:
    """Each unit's systemd state, its container's health and its image's revision."""
    by_unit = {c.get("Labels", {}).get("PODMAN_SYSTEMD_UNIT"): c for c in containers}
    # One call for every unit: systemctl prints a block for each, blank lines between.
    show = run("systemctl", "--user", "show", "--property=Id,ActiveState,SubState", *units)
    blocks = [
        dict(line.split("=", 1) for line in block.splitlines()) for block in show.split("\n\n")
    ]
    states = {block.get("Id"): block for block in blocks}
    found = []
    for unit in units:
        state = states.get(unit, {})
        container = by_unit.get(unit, {})
        health = re.search(r"\((\w+)\)", container.get("Status", ""))
        found.append(
            {
                "service": unit.removesuffix(".service"),
                "active": state.get("ActiveState", "?"),
                "sub": state.get("SubState", "?"),
                "health": health.group(1) if health else ("-" if container else "no container"),
                "revision": (container.get("Labels") or {}).get(REVISION, "-"),
            }
        )
    return found


def service_rows(states: list[dict[str, str]]) -> list[list[str]]:
    return [[s["service"], f"{s['active']}/{s['sub']}", s["health"], s["revision"]] for s in states]


def queues(containers: list[dict], env_file: Path) -> list[list[str]] | None:
    """[queue, messages] for each Celery queue; None when this host runs no Redis."""
    redis = next((c for c in containers if (c.get("Command") or [""])[0] == "redis-server"), None)
    if redis is None:
        return None
    # The broker's database number, from the app's own setting (redis://...:6379/N, or over the
    # socket redis+socket://...redis.sock?virtual_host=N).
    text = env_file.read_text() if env_file.is_file() else ""
    broker = re.search(r"^CELERY_BROKER_URL=\S*?(?:/|virtual_host=)(\d+)\s*$", text, re.MULTILINE)
    database = broker.group(1) if broker else "0"
    out = run("podman", "exec", redis["Names"][0], "sh", "-c", QUEUES, "queues", database)
    return [line.split(" ", 1) for line in sorted(out.splitlines())]


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def last_dump(backup_dir: Path) -> Path | None:
    dumps = sorted(backup_dir.glob("*.dump"), key=lambda p: p.stat().st_mtime)
    return dumps[-1] if dumps else None


def offsite_age(offsite: Path) -> tuple[int | None, str]:
    """The newest off-site snapshot's age in seconds (None: unknown), and what the script said."""
    out = run(str(offsite), "status") or "none"
    seconds = re.search(r"age_seconds (\d+)", out)
    return (int(seconds.group(1)) if seconds else None), out


def backup_rows(backup_dir: Path, offsite: Path) -> list[list[str]]:
    dump = last_dump(backup_dir)
    last = f"{dump.name}, {age(time.time() - dump.stat().st_mtime)} ago" if dump else "none"
    rows = [[f"last dump in {backup_dir}", last]]
    if offsite.is_file():
        seconds, out = offsite_age(offsite)
        rows.append(
            ["last off-site snapshot", f"{age(seconds)} ago" if seconds is not None else out]
        )
    return rows


def certificate() -> tuple[str, float | str] | None:
    """The certificate the edge serves, from one handshake on loopback with the site's name:
    (name, its expiry as a Unix time, or why there is none); None without an edge here."""
    caddyfile = Path.home() / ".config/senex/edge/Caddyfile"
    if not caddyfile.is_file():
        return None
    text = caddyfile.read_text()
    name = re.search(r"^\s*default_sni (\S+)", text, re.MULTILINE)
    port = re.search(r"^\s*https_port (\d+)", text, re.MULTILINE)
    if not (name and port):
        return "edge", "no default_sni or https_port in its Caddyfile"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", int(port.group(1))), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=name.group(1)) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as error:
        return name.group(1), f"no handshake: {error}"
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
        pem.write(ssl.DER_cert_to_PEM_cert(der))
        pem.flush()
        # The standard library's own certificate decoder (no third-party package on the host).
        decoded = ssl._ssl._test_decode_cert(pem.name)
    return name.group(1), ssl.cert_time_to_seconds(decoded["notAfter"])


def certificate_rows() -> list[list[str]]:
    found = certificate()
    if found is None:
        return [["(no edge on this host)", "-"]]
    name, expires = found
    if isinstance(expires, str):
        return [[name, expires]]
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires))
    return [[name, f"expires {when}, in {age(expires - time.time())}"]]


def volumes() -> list[list[str]]:
    """[volume, disk use as podman prints it] from "Local Volumes space usage" (its JSON output
    has no volumes)."""
    out = run("podman", "system", "df", "--verbose").split("Local Volumes space usage:")[-1]
    rows = [line.split() for line in out.strip().splitlines()[1:] if line.strip()]
    return [[row[0], row[-1]] for row in rows if len(row) >= 3]


def size_bytes(text: str) -> float:
    """podman's sizes (12.3kB, 1.5MB, 0B) in bytes: decimal units, as go-units writes them."""
    number = re.fullmatch(r"([\d.]+)\s*([kMGTP]?)B", text)
    if not number:
        return float("nan")
    return float(number.group(1)) * 1000 ** " kMGTP".index(number.group(2) or " ")


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [title, "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += [
        "  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    ]
    return "\n".join(lines)


# The metrics --serve answers with, each a gauge: name and help text.
METRICS = {
    "senex_service_up": "1 when the service's unit is active.",
    "senex_container_healthy": "1 when the service's container passes its health check.",
    "senex_queue_messages": "Messages waiting in a Celery queue.",
    "senex_backup_last_success_timestamp_seconds": "When the newest dump was written; 0: none.",
    "senex_offsite_last_snapshot_timestamp_seconds": "When the newest off-site snapshot was taken.",
    "senex_edge_certificate_expiry_timestamp_seconds": "When the edge's certificate expires.",
    "senex_volume_size_bytes": "Disk use of a volume.",
}


def samples(args: argparse.Namespace):
    """(metric, labels, value) for every fact of the table."""
    containers = podman_containers()
    for state in service_states(services(), containers):
        labels = {"service": state["service"]}
        yield "senex_service_up", labels, state["active"] == "active"
        if state["health"] in ("healthy", "unhealthy", "starting"):
            yield "senex_container_healthy", labels, state["health"] == "healthy"
    for queue, messages in queues(containers, args.env_file) or []:
        if messages.isdigit():
            yield "senex_queue_messages", {"queue": queue}, int(messages)
    dump = last_dump(args.backup_dir)
    yield "senex_backup_last_success_timestamp_seconds", {}, dump.stat().st_mtime if dump else 0
    if args.offsite.is_file() and (seconds := offsite_age(args.offsite)[0]) is not None:
        yield "senex_offsite_last_snapshot_timestamp_seconds", {}, time.time() - seconds
    if (found := certificate()) is not None and not isinstance(found[1], str):
        yield "senex_edge_certificate_expiry_timestamp_seconds", {"name": found[0]}, found[1]
    for volume, size in volumes():
        yield "senex_volume_size_bytes", {"volume": volume}, size_bytes(size)


def metrics(args: argparse.Namespace) -> str:
    """Every fact of the table as a gauge in Prometheus's text format."""
    by_name: dict[str, list[str]] = {name: [] for name in METRICS}
    for name, labels, value in samples(args):
        text = ",".join(f'{key}="{label}"' for key, label in labels.items())
        by_name[name].append(
            f"{name}{{{text}}} {float(value)}" if text else f"{name} {float(value)}"
        )
    lines = []
    for name, help_text in METRICS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *by_name[name]]
    return "\n".join(lines) + "\n"


def serve(args: argparse.Namespace) -> None:
    address, _, port = args.serve.rpartition(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "metrics are at /metrics")
                return
            body = metrics(args).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass  # a scrape every few seconds is no news for the journal

    server = http.server.ThreadingHTTPServer((address.strip("[]"), int(port)), Handler)
    print(f"serving metrics at http://{args.serve}/metrics", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backup-dir", type=Path, default=Path.home() / "backups")
    parser.add_argument("--env-file", type=Path, default=Path.home() / ".config/senex/senex.env")
    parser.add_argument(
        "--offsite", type=Path, default=Path.home() / ".local/libexec/senex/senex-offsite.sh"
    )
    parser.add_argument("--serve", metavar="ADDRESS:PORT", help="serve metrics instead")
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    containers = podman_containers()
    states = service_states(services(), containers)
    print(table("Services", ["service", "state", "health", "revision"], service_rows(states)))
    found = queues(containers, args.env_file)
    rows = [["(no Redis on this host)", "-"]] if found is None else found or [["(no queue)", "-"]]
    print(table("Queues", ["queue", "messages"], rows))
    print(table("Backups", ["what", "last"], backup_rows(args.backup_dir, args.offsite)))
    print(table("Certificate", ["name", "expiry"], certificate_rows()))
    print(table("Volumes", ["volume", "disk use"], volumes() or [["(none)", "-"]]))


if __name__ == "__main__":
    main()
