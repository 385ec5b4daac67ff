"""The Compose files and the CI workflow validate against their published schemas, and the
Compose files carry no secret values."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILES = sorted(ROOT.glob("docker-compose*.yml"))
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN", re.IGNORECASE)


def check_jsonschema(*paths: str, schema: str = "vendor.compose-spec"):
    # The virtual environment's bin directory first: pytest may run without it on PATH.
    executable = shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    ) or shutil.which("check-jsonschema")
    assert executable, "check-jsonschema is missing: run `make venv`"
    return subprocess.run(
        [executable, "--builtin-schema", schema, *paths],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_three_compose_files_exist():
    names = {path.name for path in COMPOSE_FILES}
    assert {"docker-compose.yml", "docker-compose.dev.yml", "docker-compose.prod.yml"} <= names


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_follows_the_specification(path):
    result = check_jsonschema(str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_misspelt_key(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    imagee: senex\n")
    result = check_jsonschema(str(broken))
    assert result.returncode != 0
    assert "imagee" in result.stdout


def environment_values(document: dict):
    for name, service in document.get("services", {}).items():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for key, value in environment.items():
            yield name, key, str(value)


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_secrets_come_from_the_environment_not_the_file(path):
    document = yaml.safe_load(path.read_text())
    literal = [
        f"{service}.{key}"
        for service, key, value in environment_values(document)
        if SECRET_NAME.search(key) and "${" not in value
    ]
    assert literal == [], f"secret values written into {path.name}: {literal}"


def test_every_base_service_has_a_health_check_and_waits_on_healthy_dependencies():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert [name for name, service in services.items() if "healthcheck" not in service] == []
    for name in ("web", "celery_worker", "celery_beat"):
        conditions = {dep["condition"] for dep in services[name]["depends_on"].values()}
        assert conditions == {"service_healthy"}, name


def test_the_ci_workflow_follows_the_github_workflow_schema():
    workflow = ROOT / ".github/workflows/build-and-push.yml"
    result = check_jsonschema(str(workflow), schema="vendor.github-workflows")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_health_check_tests_are_shell_strings_so_overrides_replace_them(path):
    # podman-compose 1.3 appends an override's list to the base file's list, which would run
    # the base command with the override's words as arguments; a string replaces it.
    services = yaml.safe_load(path.read_text())["services"]
    lists = [
        name
        for name, service in services.items()
        if not isinstance(service.get("healthcheck", {}).get("test", ""), str)
    ]
    assert lists == [], f"list-form health check tests in {path.name}: {lists}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_no_environment_entry_interpolates_its_own_name(path):
    # podman-compose 1.3 resolves ${NAME} inside a service from that service's own environment
    # first, so `NAME: ${NAME:-default}` stays the literal text when NAME is not in .env.
    document = yaml.safe_load(path.read_text())
    own = [
        f"{service}.{key}"
        for service, key, value in environment_values(document)
        if re.search(r"\$\{" + re.escape(key) + r"\b", value)
    ]
    assert own == [], f"environment entries that interpolate their own name in {path.name}: {own}"
