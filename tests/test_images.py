"""The official images run in production are pinned, one version each, at the tested majors.

Every reference to the official PostgreSQL, Redis and Python images in the repository (role
defaults, Compose files, Dockerfiles, examples, docs) is the same tag pinned by digest, so
what a deploy pulls cannot move under it and a Renovate update changes all of them at once.
PostgreSQL's and Redis's majors are those of the test stand-ins, which the tests run.
"""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "molecule" / "testhost"))

from standins import IMAGES  # noqa: E402

# An official image with a tag (a placeholder such as `:<major>` in the docs is none).
OFFICIAL = re.compile(r"docker\.io/library/(postgres|redis|python):\w[\w.-]*(@sha256:[0-9a-f]+)?")
PINNED = re.compile(r":(\d+)[\w.-]*@sha256:[0-9a-f]{64}$")


def tracked_texts() -> Iterator[tuple[str, str]]:
    """Each tracked regular file but the locks, by name, with its text."""
    files = subprocess.run(
        ["git", "ls-files", ":!*.lock"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        path = ROOT / name
        if not path.is_symlink() and path.is_file():
            yield name, path.read_text(errors="replace")


def references() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for _, text in tracked_texts():
        for match in OFFICIAL.finditer(text):
            found.setdefault(match.group(1), set()).add(match.group(0))
    return found


@pytest.mark.parametrize("image", ["postgres", "redis", "python"])
def test_one_reference_pinned_by_digest_with_its_tag(image: str) -> None:
    refs = references()[image]
    assert len(refs) == 1, f"{image} is referenced as {sorted(refs)}: make them one"
    assert PINNED.search(refs.pop()), f"docker.io/library/{image} needs name:tag@sha256:digest"


@pytest.mark.parametrize("image", ["postgres", "redis"])
def test_production_runs_the_major_the_stand_in_tests(image: str) -> None:
    (ref,) = references()[image]
    standin_major = IMAGES[image]["tag"].rsplit(":", 1)[1]
    assert PINNED.search(ref).group(1) == standin_major, (
        f"production runs {ref}, the tests run {IMAGES[image]['tag']}"
    )
