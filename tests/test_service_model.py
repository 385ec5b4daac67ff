"""The stack's services are declared once, in senex_stack's model; nothing else lists them.

Every list of services (restart order, checks, backups, the benchmark) must be derived from
`senex_stack_services`, so adding or removing a service is one edit. A file that names two
or more of the model's services in one line, or in one YAML list, lists them again.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "molecule" / "testhost"))

from stackmodel import DEFAULTS, stack_services  # noqa: E402 (after the path above)

MODEL = DEFAULTS.relative_to(ROOT)
KINDS = {
    "database",
    "cache",
    "oneshot",
    "web",
    "worker",
    "scheduler",
    "edge",
    "exporter",
    "host-exporter",
}
# Prose describes the services; only what runs or configures must derive them.
PROSE = (".md",)


def model_names() -> set[str]:
    # A worker instance stands for the template: senex-worker@default counts as senex-worker.
    return {service["name"].split("@")[0] for service in stack_services()}


def service_pattern(names: set[str]) -> re.Pattern:
    # A name followed by a letter or digit is another word (senex-webhook), not the service;
    # `@instance`, `-instance` (container names), `.service` and `.container` are the service.
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives})(?![a-z0-9])")


def named(text: str, pattern: re.Pattern) -> set[str]:
    return set(pattern.findall(text))


def yaml_lists(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from yaml_lists(value)
    elif isinstance(node, list):
        yield node
        for value in node:
            yield from yaml_lists(value)


def python_lists(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            yield [e.value for e in node.elts if isinstance(e, ast.Constant)]


def listings(path: Path, text: str, pattern: re.Pattern) -> list[str]:
    found = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if len(named(line, pattern)) >= 2
    ]
    lists = []
    if path.suffix in (".yml", ".yaml"):
        try:
            lists = list(yaml_lists(yaml.safe_load(text)))
        except yaml.YAMLError:
            lists = []
    elif path.suffix == ".py":
        lists = list(python_lists(text))
    for items in lists:
        strings = [item for item in items if isinstance(item, str)]
        # A single string naming two is a line, counted above.
        single = any(len(named(item, pattern)) >= 2 for item in strings)
        if len(named(" ".join(strings), pattern)) >= 2 and not single:
            found.append(f"list: {strings}")
    return found


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [Path(line) for line in out.stdout.splitlines()]


def test_the_model_names_every_kind_of_service_once() -> None:
    names = [service["name"] for service in stack_services()]
    assert len(names) == len(set(names))
    assert {service["kind"] for service in stack_services()} == KINDS


def test_the_check_finds_a_list_of_services() -> None:
    pattern = service_pattern({"app-web", "app-db", "app-worker"})
    assert listings(Path("x.yml"), "a: [app-web, app-worker@default]\n", pattern)
    assert listings(Path("x.yml"), "a:\n  - app-web\n  - app-db\n", pattern)
    assert listings(Path("x.py"), "A = (\n  'app-web',\n  'app-db',\n)\n", pattern)
    assert listings(Path("x.j2"), "Wants=app-db.service app-web.service\n", pattern)
    one = "a: [app-web.socket, app-web.service, app-webhook]\n"
    assert not listings(Path("x.yml"), one, pattern)


def test_no_file_but_the_model_lists_the_services() -> None:
    pattern = service_pattern(model_names())
    offenders = {}
    for path in tracked_files():
        full = ROOT / path
        if path == MODEL or path.suffix in PROSE or not full.is_file() or full.is_symlink():
            continue
        try:
            text = full.read_text()
        except UnicodeDecodeError:
            continue
        if found := listings(path, text, pattern):
            offenders[str(path)] = found
    assert offenders == {}, f"derive these from {MODEL}"
