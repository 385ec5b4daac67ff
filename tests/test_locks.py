"""The hash-locked requirements are what the human-edited ones compile to today.

The image installs app/requirements/production.lock and `make venv` installs
requirements-dev.lock, both with --require-hashes; a pin edited in app/requirements/*.txt or
pyproject.toml without `make lock` would never reach either. scripts/lock --check compiles
both from PyPI in a scratch copy of the sources and compares them byte for byte.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [ROOT / "app/requirements/production.lock", ROOT / "requirements-dev.lock"]


def test_locks_match_the_human_edited_requirements() -> None:
    result = subprocess.run(
        [ROOT / "scripts/lock", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_check_names_the_lock_a_changed_pin_makes_stale(tmp_path: Path) -> None:
    # The check prefers what the committed lock pins; a pin edited by hand must still win.
    for name in ["scripts/lock", "pyproject.toml", "requirements-dev.lock", "app/requirements"]:
        source, copy = ROOT / name, tmp_path / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy)
    production = tmp_path / "app/requirements/production.txt"
    pinned = production.read_text()
    # The pin this test edits; when it moves, move the test's two versions with it.
    assert "whitenoise==6.12.0" in pinned, "production.txt no longer pins whitenoise==6.12.0"
    production.write_text(pinned.replace("whitenoise==6.12.0", "whitenoise==6.11.0"))
    result = subprocess.run(
        [tmp_path / "scripts/lock", "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "UV": str(ROOT / ".venv/bin/uv")},
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "+whitenoise==6.11.0" in result.stdout
    assert "app/requirements/production.lock is stale" in result.stderr


def test_every_locked_requirement_carries_a_hash() -> None:
    for lock in LOCKS:
        # One requirement per entry: the name==version line and its continuation lines.
        entries = re.split(r"\n(?=\S)", lock.read_text())
        pins = [entry for entry in entries if not entry.startswith("#")]
        assert pins, f"{lock.name} names nothing"
        unhashed = [pin.split()[0] for pin in pins if "--hash=sha256:" not in pin]
        assert not unhashed, f"{lock.name}: no hash for {unhashed}"
