#!/usr/bin/env python3
"""One table of the stack on this host, for the service user (status.yml runs it).

Each service of senex.target with its systemd state and its container's health and image
revision, the Celery queues' depths, the age of the last backup (and of the last off-site
snapshot), the edge certificate's expiry, and the disk use of the volumes. Reads only:
systemctl --user, podman, the backup directory, and one TLS handshake with the edge.
Usage: senex-status.py [--backup-dir DIR] [--env-file FILE] [--offsite SCRIPT]
"""

import argparse
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


def services() -> list[str]:
    """The services senex.target pulls in, in systemd's order, each once."""
    out = run("systemctl", "--user", "list-dependencies", "--plain", "--no-pager", "senex.target")
    names = [line.strip() for line in out.splitlines()]
    return list(dict.fromkeys(name for name in names if name.endswith(".service")))


def service_rows(units: list[str], containers: list[dict]) -> list[list[str]]:
    by_unit = {c.get("Labels", {}).get("PODMAN_SYSTEMD_UNIT"): c for c in containers}
    # One call for every unit: systemctl prints a block for each, blank lines between.
    show = run("systemctl", "--user", "show", "--property=Id,ActiveState,SubState", *units)
    blocks = [
        dict(line.split("=", 1) for line in block.splitlines()) for block in show.split("\n\n")
    ]
    states = {block.get("Id"): block for block in blocks}
    rows = []
    for unit in units:
        state = states.get(unit, {})
        container = by_unit.get(unit, {})
        health = re.search(r"\((\w+)\)", container.get("Status", ""))
        rows.append(
            [
                unit.removesuffix(".service"),
                f"{state.get('ActiveState', '?')}/{state.get('SubState', '?')}",
                health.group(1) if health else ("-" if container else "no container"),
                (container.get("Labels") or {}).get(REVISION, "-"),
            ]
        )
    return rows


def queue_rows(containers: list[dict], env_file: Path) -> list[list[str]]:
    redis = next((c for c in containers if (c.get("Command") or [""])[0] == "redis-server"), None)
    if redis is None:
        return [["(no Redis on this host)", "-"]]
    # The broker's database number, from the app's own setting (redis://...:6379/N).
    text = env_file.read_text() if env_file.is_file() else ""
    broker = re.search(r"^CELERY_BROKER_URL=\S*?/(\d+)\s*$", text, re.MULTILINE)
    database = broker.group(1) if broker else "0"
    out = run("podman", "exec", redis["Names"][0], "sh", "-c", QUEUES, "queues", database)
    return [line.split(" ", 1) for line in sorted(out.splitlines())] or [["(no queue)", "-"]]


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def backup_rows(backup_dir: Path, offsite: Path) -> list[list[str]]:
    dumps = sorted(backup_dir.glob("*.dump"), key=lambda p: p.stat().st_mtime)
    rows = [
        [
            f"last dump in {backup_dir}",
            f"{dumps[-1].name}, {age(time.time() - dumps[-1].stat().st_mtime)} ago"
            if dumps
            else "none",
        ]
    ]
    if offsite.is_file():
        out = run(str(offsite), "status") or "none"
        seconds = re.search(r"age_seconds (\d+)", out)
        rows.append(
            ["last off-site snapshot", f"{age(int(seconds.group(1)))} ago" if seconds else out]
        )
    return rows


def certificate_rows() -> list[list[str]]:
    """The certificate the edge serves: one handshake on loopback with the site's name."""
    caddyfile = Path.home() / ".config/senex/edge/Caddyfile"
    if not caddyfile.is_file():
        return [["(no edge on this host)", "-"]]
    text = caddyfile.read_text()
    name = re.search(r"^\s*default_sni (\S+)", text, re.MULTILINE)
    port = re.search(r"^\s*https_port (\d+)", text, re.MULTILINE)
    if not (name and port):
        return [["edge", "no default_sni or https_port in its Caddyfile"]]
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", int(port.group(1))), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=name.group(1)) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as error:
        return [[name.group(1), f"no handshake: {error}"]]
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
        pem.write(ssl.DER_cert_to_PEM_cert(der))
        pem.flush()
        # The standard library's own certificate decoder (no third-party package on the host).
        decoded = ssl._ssl._test_decode_cert(pem.name)
    expires = ssl.cert_time_to_seconds(decoded["notAfter"])
    return [[name.group(1), f"expires {decoded['notAfter']}, in {age(expires - time.time())}"]]


def volume_rows() -> list[list[str]]:
    """The rows of podman's "Local Volumes space usage" (its JSON output has no volumes)."""
    out = run("podman", "system", "df", "--verbose").split("Local Volumes space usage:")[-1]
    rows = [line.split() for line in out.strip().splitlines()[1:] if line.strip()]
    return [[row[0], row[-1]] for row in rows if len(row) >= 3] or [["(none)", "-"]]


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [title, "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += [
        "  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backup-dir", type=Path, default=Path.home() / "backups")
    parser.add_argument("--env-file", type=Path, default=Path.home() / ".config/senex/senex.env")
    parser.add_argument(
        "--offsite", type=Path, default=Path.home() / ".local/libexec/senex/senex-offsite.sh"
    )
    args = parser.parse_args()
    out = run("podman", "ps", "--all", "--format", "json")
    containers = json.loads(out) if out else []
    print(
        table(
            "Services",
            ["service", "state", "health", "revision"],
            service_rows(services(), containers),
        )
    )
    print(table("Queues", ["queue", "messages"], queue_rows(containers, args.env_file)))
    print(table("Backups", ["what", "last"], backup_rows(args.backup_dir, args.offsite)))
    print(table("Certificate", ["name", "expiry"], certificate_rows()))
    print(table("Volumes", ["volume", "disk use"], volume_rows()))


if __name__ == "__main__":
    main()
