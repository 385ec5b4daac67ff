"""Every environment variable the app reads is documented, with a comment, in both examples."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
EXAMPLES = [ROOT / ".env.example", ROOT / ".env.production.example"]
# `NAME=value`, or `# NAME=value` for an optional variable shown with an example value.
DEFINITION = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=")
# Below this line an example lists what the Compose files read, not the app.
COMPOSE_SECTION = "# ---- Read by docker-compose*.yml (not by the app) ----"


def _string_arg(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def variables_read(source: str) -> set[str]:
    """Names read through the django-environ `env` object, os.environ or os.getenv."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            through_env = (isinstance(func, ast.Name) and func.id == "env") or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "env"
            )
            through_os = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and _is_os_environ(func.value)
            ) or (
                isinstance(func, ast.Attribute)
                and func.attr == "getenv"
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
            )
            if (through_env or through_os) and (name := _string_arg(node)):
                names.add(name)
        elif (
            isinstance(node, ast.Subscript)
            and _is_os_environ(node.value)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


def app_sources() -> list[Path]:
    return [
        path
        for path in APP.rglob("*.py")
        if not {"tests", "migrations"} & set(path.relative_to(APP).parts)
    ]


def documented(example: Path, *, compose: bool = False) -> dict[str, str]:
    """Variable name -> the comment right above its definition (empty when missing): the
    app's variables, or with `compose` those of the Compose section."""
    found = {}
    previous = ""
    app_part, _, compose_part = example.read_text().partition(COMPOSE_SECTION)
    for line in (compose_part if compose else app_part).splitlines():
        match = DEFINITION.match(line)
        if match:
            comment = (
                previous if previous.startswith("#") and not DEFINITION.match(previous) else ""
            )
            found[match.group(1)] = comment.lstrip("# ").strip()
        previous = line
    return found


def test_the_scan_finds_what_settings_read() -> None:
    # Guards the scanner itself: if it found nothing, every check below would pass.
    read = set().union(*(variables_read(path.read_text()) for path in app_sources()))

    assert {"SECRET_KEY", "DB_PASSWORD", "REDIS_URL", "ENVIRONMENT"} <= read


def test_the_scan_sees_every_way_of_reading() -> None:
    source = (
        'env("A")\nenv.bool("B", default=False)\nos.environ.get("C")\n'
        'os.getenv("D")\nx = os.environ["E"]\nos.environ.setdefault("F", "1")\n'
    )

    assert variables_read(source) == {"A", "B", "C", "D", "E"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_variable_the_app_reads_is_documented(example: Path) -> None:
    docs = documented(example)
    for path in app_sources():
        missing = variables_read(path.read_text()) - docs.keys()
        assert not missing, (
            f"{path.relative_to(ROOT)} reads {sorted(missing)}, which {example.name} does not "
            "document: add `# what it does` and `NAME=value` (or `# NAME=value`) lines there."
        )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_documented_variable_has_a_comment_and_is_read(example: Path) -> None:
    read = set().union(*(variables_read(path.read_text()) for path in app_sources()))
    for name, comment in documented(example).items():
        assert comment, f"{example.name}: put a comment line right above {name}."
        assert name in read, f"{example.name} documents {name}, which the app never reads."


def test_compose_variables_are_documented_and_used() -> None:
    compose = "".join(path.read_text() for path in ROOT.glob("docker-compose*.yml"))
    docs = documented(ROOT / ".env.example", compose=True)
    for name, comment in docs.items():
        assert comment, f".env.example: put a comment line right above {name}."
        assert f"${{{name}" in compose, f".env.example lists {name}, which no Compose file reads."
