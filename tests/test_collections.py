"""The collections bundled by the pinned `ansible` package satisfy requirements.yml.

Galaxy is not reachable from every machine that deploys, so the install must work from PyPI
alone: this fails when an `ansible` pin bundles a collection version requirements.yml refuses.
"""

import json
import re
import subprocess
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.yml"
# A module (`namespace.collection.module:` as a task key) or a filter or test (`| fqcn`, `is fqcn`).
FQCN = re.compile(
    r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_]+:|(?:\||\bis)\s*([a-z_]+\.[a-z_]+)\.[a-z_]+",
    re.MULTILINE,
)


def requirements() -> list[dict]:
    return yaml.safe_load(REQUIREMENTS.read_text())["collections"]


def bundled_version(name: str) -> Version | None:
    namespace, collection = name.split(".")
    spec = find_spec("ansible_collections")
    assert spec is not None, "the ansible package is not installed: pip install --group dev"
    for root in spec.submodule_search_locations or []:
        manifest = Path(root, namespace, collection, "MANIFEST.json")
        if manifest.is_file():
            return Version(json.loads(manifest.read_text())["collection_info"]["version"])
    return None


def collections_used() -> set[str]:
    # Playbooks, roles and scenarios; inventories hold host names, not tasks.
    files = subprocess.run(
        ["git", "ls-files", "*.yml", "*.yaml", "*.j2", ":!inventories"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    used = set()
    for name in files:
        for module, plugin in FQCN.findall((ROOT / name).read_text()):
            used.add(module or plugin)
    return used - {"ansible.builtin"}


def test_requirements_name_exactly_the_collections_the_roles_use() -> None:
    assert {item["name"] for item in requirements()} == collections_used()


def test_the_scan_finds_modules_and_filters() -> None:
    text = '- name: x\n  community.general.ufw:\n    x: "{{ y | ansible.posix.z }}"\n'
    assert FQCN.findall(text) == [("community.general", ""), ("", "ansible.posix")]


@pytest.mark.parametrize("requirement", requirements(), ids=lambda item: item["name"])
def test_bundled_collection_satisfies_requirement(requirement: dict) -> None:
    version = bundled_version(requirement["name"])
    assert version is not None, f"{requirement['name']} is not bundled by the ansible package"
    wanted = SpecifierSet(requirement["version"])
    assert version in wanted, (
        f"{requirement['name']} {version} is bundled, requirements.yml wants {wanted}"
    )
