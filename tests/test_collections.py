"""The collections bundled by the pinned `ansible` package satisfy requirements.yml.

Galaxy is not reachable from every machine that deploys, so the install must work from PyPI
alone: this fails when an `ansible` pin bundles a collection version requirements.yml refuses.
"""

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.yml"


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


def test_requirements_name_the_collections_deploy_uses() -> None:
    names = {item["name"] for item in requirements()}
    assert {"containers.podman", "ansible.posix", "community.general"} <= names


@pytest.mark.parametrize("requirement", requirements(), ids=lambda item: item["name"])
def test_bundled_collection_satisfies_requirement(requirement: dict) -> None:
    version = bundled_version(requirement["name"])
    assert version is not None, f"{requirement['name']} is not bundled by the ansible package"
    wanted = SpecifierSet(requirement["version"])
    assert version in wanted, (
        f"{requirement['name']} {version} is bundled, requirements.yml wants {wanted}"
    )
