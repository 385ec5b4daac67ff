"""Renovate's configuration is valid and its image pattern reaches every pinned image.

An official image named in a file Renovate's custom manager does not read would keep its old
digest when the others move, and tests/test_images.py would then fail on the next update.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_images import OFFICIAL, tracked_texts  # noqa: E402

CONFIG = json.loads((ROOT / "renovate.json").read_text())


def test_the_configuration_matches_renovates_schema() -> None:
    executable = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [executable, "--builtin-schema", "vendor.renovate", ROOT / "renovate.json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_manager_reads_every_file_that_names_an_official_image() -> None:
    (manager,) = (m for m in CONFIG["customManagers"] if m["customType"] == "regex")
    files = [re.compile(pattern.strip("/")) for pattern in manager["managerFilePatterns"]]
    # The official images are the first pattern's; Renovate writes named groups the JavaScript way.
    match_string = manager["matchStrings"][0].replace("(?<", "(?P<")
    for name, text in tracked_texts():
        named = {match.group(0) for match in OFFICIAL.finditer(text)}
        if not named:
            continue
        assert any(pattern.search(name) for pattern in files), f"Renovate never reads {name}"
        found = {match.group(0) for match in re.finditer(match_string, text)}
        assert named <= found, f"{name}: Renovate's pattern misses {sorted(named - found)}"


def test_workflow_actions_are_pinned_by_commit_with_their_release_beside() -> None:
    for workflow in sorted((ROOT / ".github/workflows").glob("*.yml")):
        for line in workflow.read_text().splitlines():
            if "uses:" in line and not line.strip().startswith("#"):
                assert re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d", line), (
                    f"{workflow.name}: `{line.strip()}` is not pinned by commit"
                )
