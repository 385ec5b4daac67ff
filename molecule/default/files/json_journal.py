"""Checks a unit's container lines in the journal: each one JSON object, a request's with its id.

Reads the journal as root (the service user's units included) since SINCE, for the user unit
UNIT, long fields whole. Lines the container wrote in pieces (CONTAINER_PARTIAL_MESSAGE) are
joined first.
Prints what it found as one JSON object; exits 1 naming the first line that is no JSON
object, or when no line carries a request_id.
Usage: json_journal.py UNIT SINCE
"""

import json
import subprocess
import sys


def container_lines(unit: str, since: str):
    out = subprocess.run(
        # --all: without it, journalctl writes a field longer than 4096 bytes as null.
        ["journalctl", f"_SYSTEMD_USER_UNIT={unit}", "--output", "json", "--all", "--since", since],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pending = ""
    for entry in map(json.loads, out.splitlines()):
        if "CONTAINER_NAME" not in entry:
            continue  # systemd's own lines about the unit
        message = entry.get("MESSAGE") or ""
        if isinstance(message, list):  # journald's form for bytes that are not text
            message = bytes(message).decode(errors="replace")
        pending += message
        if entry.get("CONTAINER_PARTIAL_MESSAGE") == "true":
            continue
        yield entry, pending.strip()
        pending = ""


def main() -> None:
    unit, since = sys.argv[1:3]
    count, requests = 0, []
    for entry, text in container_lines(unit, since):
        if not text:
            continue
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            sys.exit(f"{unit}: a line is no JSON object: {text!r}")
        count += 1
        if "request_id" in line:
            requests.append({"tag": entry.get("CONTAINER_TAG"), "revision": line.get("revision")})
    if not requests:
        sys.exit(f"{unit}: none of its {count} lines since {since} carries a request_id")
    print(json.dumps({"lines": count, "requests": len(requests), "first": requests[0]}))


if __name__ == "__main__":
    main()
