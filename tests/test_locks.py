"""The hash-locked requirements are what the human-edited ones compile to today.

The image installs app/requirements/production.lock and `make venv` installs
requirements-dev.lock, both with --require-hashes; a pin edited in app/requirements/*.txt or
pyproject.toml without `make lock` would never reach either. scripts/lock --check compiles
both afresh from PyPI in a scratch copy of the sources and compares them byte for byte.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [ROOT / "app/requirements/production.lock", ROOT / "requirements-dev.lock"]


def test_locks_match_the_human_edited_requirements() -> None:
    result = subprocess.run(
        [ROOT / "scripts/lock", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_locked_requirement_carries_a_hash() -> None:
    for lock in LOCKS:
        # One requirement per entry: the name==version line and its continuation lines.
        entries = re.split(r"\n(?=\S)", lock.read_text())
        pins = [entry for entry in entries if not entry.startswith("#")]
        assert pins, f"{lock.name} names nothing"
        unhashed = [pin.split()[0] for pin in pins if "--hash=sha256:" not in pin]
        assert not unhashed, f"{lock.name}: no hash for {unhashed}"
