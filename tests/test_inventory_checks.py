"""deploy.yml's checks before any change: each bad inventory stops the real playbook in its
pre_tasks, named, and without printing a secret; good inventories pass them.

The host is this machine over the local connection, so nothing may run on it: facts are not
gathered, become is off, the host's Python does not exist (a module that ran would fail at
once) and every run is --check. The good inventories stop after the checks (--tags).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SANDBOX_VAULT_PASSWORD = ROOT / "inventories/sandbox/SANDBOX-ONLY-vault-password"
SECRETS_TEMPLATE = ROOT / "roles/senex_secrets/templates/senex.env.j2"
SECRETS_DEFAULTS = ROOT / "roles/senex_secrets/defaults/main.yml"
SECRETS_VARS = ROOT / "roles/senex_secrets/vars/main.yml"
HOST = "checkhost"

# The failing pre_task of each check, as ansible-playbook names it.
NAMES_TASK = "Check that every senex_ variable is one a role or a play reads"
SPEC_TASK = "Check every role's variables before changing anything"
ADDRESS_TASK = "Check that the plain-HTTP web port stays on loopback unless a reason is given"
EDGE_TASK = "Check the edge's settings before changing anything"
METRICS_TASK = "Check that the metrics listen on loopback or a private address"
SECRETS_TASK = "senex_secrets : Stop when a secret or a setting of the env file is unusable"
POOLS_TASK = (
    "senex_stack : Check that the database pools of every host fit PostgreSQL's max_connections"
)
TOPOLOGY_TASKS = (
    "senex_stack : Check that the hosts of the stack's groups are hosts of senex",
    "senex_stack : Check that beat runs on exactly one host, the database and Redis on one at most",
    "senex_stack : Check that every host that serves another has a private address",
    "senex_stack : Check that a build host with app services is the host that runs the migrations",
)
IMAGE_TASK = "senex_image : Check the image delivery settings"
# The checks' own tasks that come from a role.
CHECK_TASKS = (
    # The model and unit list set as facts (roles/senex_stack/tasks/model.yml): data, no change.
    "senex_stack : Work out this host's",
    *TOPOLOGY_TASKS,
    IMAGE_TASK,
    "senex_secrets : Find",
    SECRETS_TASK,
    "senex_stack : Count the app processes of this host that connect to the database",
    POOLS_TASK,
)


def good_vars() -> dict:
    return {
        "senex_secrets_secret_key": secrets.token_urlsafe(50),
        "senex_secrets_field_encryption_key": Fernet.generate_key().decode(),
        "senex_secrets_db_password": secrets.token_urlsafe(24),
        "senex_secrets_redis_password": secrets.token_urlsafe(24),
        "senex_secrets_allowed_hosts": ["trader.example.com"],
        "senex_domain": "trader.example.com",
    }


def run_deploy(
    tmp_path: Path,
    group_vars: dict,
    *args: str,
    host_vars: dict | None = None,
    group_vars_dir: Path | None = None,
    groups: dict | None = None,
    hosts: dict | None = None,
) -> subprocess.CompletedProcess:
    """ansible-playbook deploy.yml --check against this machine as HOST, from the repo root;
    `groups` (or `hosts`) is the inventory, by default HOST alone in senex: every host of it
    stands for this machine too, and HOST's entry gets host_vars."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars/senex").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    if group_vars_dir:
        for source in group_vars_dir.iterdir():
            (inventory / "group_vars/senex" / source.name).write_bytes(source.read_bytes())
    (inventory / "group_vars/senex/test.yml").write_text(yaml.safe_dump(group_vars))
    guard = {
        "ansible_connection": "local",
        "ansible_become": False,
        "ansible_python_interpreter": str(tmp_path / "no-python-here"),
    }
    groups = groups or hosts or {"senex": {"hosts": {HOST: None}}}
    for host in {host for group in groups.values() for host in group.get("hosts") or {}}:
        own = (host_vars or {}) if host == HOST else {}
        (inventory / f"host_vars/{host}.yml").write_text(yaml.safe_dump({**own, **guard}))
    (inventory / "hosts.yml").write_text(yaml.safe_dump(groups, sort_keys=False))
    env = {
        **os.environ,
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }
    return subprocess.run(
        [
            *(ANSIBLE_PLAYBOOK, "-i", str(inventory / "hosts.yml"), "deploy.yml", "--check"),
            *(
                ("--limit", HOST)
                if any(HOST in (g.get("hosts") or {}) for g in groups.values())
                else ()
            ),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith(f"{HOST} "))
    return {key: int(value) for key, value in (pair.split("=") for pair in line.split()[2:])}


def role_tasks_run(output: str) -> list[str]:
    """Tasks of the roles' main entry points that ran (the roles' own argument checks and the
    secrets check aside)."""
    return [
        line
        for line in output.splitlines()
        if line.startswith("TASK [senex_")
        and "Validating arguments against arg spec" not in line
        and not line.startswith(tuple(f"TASK [{task}" for task in CHECK_TASKS))
    ]


def assert_stopped_before_any_change(output: str, task: str) -> None:
    failed_task = output.split("fatal: ")[0].rsplit("TASK [", 1)[-1].split("]")[0]
    assert failed_task == task, output
    assert recap(output)["failed"] == 1
    assert recap(output)["changed"] == 0
    assert role_tasks_run(output) == []


def assert_not_shown(output: str, *values: str) -> None:
    for value in values:
        for part in value.splitlines():
            assert part not in output, "a secret reached the output"


BAD_INPUTS = {
    "newline in SECRET_KEY": (
        {"senex_secrets_secret_key": secrets.token_urlsafe(30) + "\nDEBUG=true\n" + "x" * 20},
        SECRETS_TASK,
        "senex_secrets_secret_key (vault_senex_secret_key): contains a line break",
    ),
    "control character in the database password": (
        {"senex_secrets_db_password": secrets.token_urlsafe(20) + "\x1b"},
        SECRETS_TASK,
        "senex_secrets_db_password (vault_senex_db_password): contains a line break",
    ),
    "changeme repeated": (
        {"senex_secrets_secret_key": "changeme" * 7},
        SECRETS_TASK,
        "senex_secrets_secret_key (vault_senex_secret_key): fewer than 16 distinct characters",
    ),
    "development key": (
        {"senex_secrets_secret_key": "django-insecure-" + secrets.token_urlsafe(50)},
        SECRETS_TASK,
        "senex_secrets_secret_key (vault_senex_secret_key): starts with django-insecure-",
    ),
    "redis password equal to the database's": (
        {
            "senex_secrets_redis_password": "same-" + "9XwQ4bT7zK2mP8vR" * 2,
            "senex_secrets_db_password": "same-" + "9XwQ4bT7zK2mP8vR" * 2,
        },
        SECRETS_TASK,
        "senex_secrets_db_password (vault_senex_db_password) and senex_secrets_redis_password"
        " (vault_senex_redis_password): the same value for two uses",
    ),
    "SECRET_KEY equal to the database password": (
        {
            "senex_secrets_secret_key": "K" + "aB3dE5gH7jK9mN1pQ" * 4,
            "senex_secrets_db_password": "K" + "aB3dE5gH7jK9mN1pQ" * 4,
        },
        SECRETS_TASK,
        "senex_secrets_secret_key (vault_senex_secret_key) and senex_secrets_db_password"
        " (vault_senex_db_password): the same value for two uses",
    ),
    "empty allowed hosts": (
        {"senex_secrets_allowed_hosts": []},
        SECRETS_TASK,
        "senex_secrets_allowed_hosts: empty, so the app answers every request with 400",
    ),
    "comma inside an allowed host": (
        {"senex_secrets_allowed_hosts": ["trader.example.com,evil.example.net"]},
        SECRETS_TASK,
        "senex_secrets_allowed_hosts: an entry contains a comma",
    ),
    "newline in a setting": (
        {"senex_secrets_db_host": "senex-postgres\nSECRET_KEY=x"},
        SECRETS_TASK,
        "senex_secrets_db_host: contains a line break",
    ),
    "extra variable replacing SECRET_KEY": (
        {"senex_secrets_extra_env": {"SECRET_KEY": "x", "FEATURE_FLAG": "on"}},
        SECRETS_TASK,
        "senex_secrets_extra_env.SECRET_KEY: the role writes this variable already",
    ),
    "misspelt variable": (
        {"senex_stack_web_prot": 8001},
        NAMES_TASK,
        "senex_stack_web_prot (did you mean senex_stack_web_port?)",
    ),
    "unknown variable nothing resembles": (
        {"senex_zzz": 1},
        NAMES_TASK,
        f"Nothing reads these variables of {HOST} (inventory or extra vars): senex_zzz.",
    ),
    "wrong type": (
        {"senex_stack_web_port": "eighty"},
        SPEC_TASK,
        "senex_stack_web_port",
    ),
    "database pools beyond max_connections": (
        # 24 per process for web, two worker processes, beat and migrate (no facts here: one
        # web process) is 120, above the 95 that PostgreSQL's 100 leave the app.
        {"senex_stack_db_pool_size": 24},
        POOLS_TASK,
        "The app's processes may hold 120 database connections, 24 (senex_stack_db_pool_size)"
        " for each of 5 processes (checkhost: ",
    ),
    "database pools beyond a lowered max_connections": (
        {"senex_stack_db_max_connections": 20},
        POOLS_TASK,
        "but PostgreSQL admits 20 (senex_stack_db_max_connections), 5 of them kept",
    ),
    "edge name the app refuses": (
        {"senex_domain": "trader.example.org"},
        EDGE_TASK,
        "The edge serves trader.example.org (senex_stack_edge_domain, from senex_domain), which"
        " the app would refuse: it is not in senex_secrets_allowed_hosts (trader.example.com).",
    ),
    "given certificate without its key": (
        {"senex_stack_edge_tls": "files", "senex_secrets_edge_tls_certificate": "-----BEGIN CERT"},
        EDGE_TASK,
        "senex_stack_edge_tls is files, but the vault gives no key (senex_secrets_edge_tls_key).",
    ),
    "unknown certificate source": (
        {"senex_stack_edge_tls": "letsencrypt"},
        SPEC_TASK,
        "senex_stack_edge_tls",
    ),
    "metrics on a public address": (
        {"senex_stack_metrics": True, "senex_stack_metrics_address": "203.0.113.7"},
        METRICS_TASK,
        "senex_stack_metrics_address 203.0.113.7 is not a loopback or private address",
    ),
    "metrics port that is no number": (
        {
            "senex_stack_metrics_ports": {
                "flower": "x",
                "postgres": 9187,
                "redis": 9121,
                "host": 9199,
            }
        },
        SPEC_TASK,
        "senex_stack_metrics_ports",
    ),
    "unknown image delivery": (
        {"senex_image_delivery": "ftp"},
        SPEC_TASK,
        "senex_image_delivery must be one of: host, registry, archive",
    ),
    "registry delivery without a registry or an account": (
        {"senex_image_delivery": "registry"},
        IMAGE_TASK,
        "senex_image_delivery is registry, but senex_image_registry_repository,"
        " senex_image_registry_username, senex_image_registry_password is empty",
    ),
    "registry delivery without a repository": (
        {
            "senex_image_delivery": "registry",
            "senex_image_registry_username": "deployer",
            "senex_image_registry_password": secrets.token_urlsafe(24),
        },
        IMAGE_TASK,
        "senex_image_delivery is registry, but senex_image_registry_repository is empty",
    ),
    "registry repository with a tag": (
        {
            "senex_image_delivery": "registry",
            "senex_image_registry_repository": "registry.example.com/senex/senex-trader:1.0",
            "senex_image_registry_username": "deployer",
            "senex_image_registry_password": secrets.token_urlsafe(24),
        },
        IMAGE_TASK,
        "senex_image_registry_repository registry.example.com/senex/senex-trader:1.0 is not"
        " REGISTRY[:PORT]/PATH without a tag or digest",
    ),
    "registry digest that is a tag": (
        {
            "senex_image_delivery": "registry",
            "senex_image_registry_repository": "registry.example.com/senex/senex-trader",
            "senex_image_registry_username": "deployer",
            "senex_image_registry_password": secrets.token_urlsafe(24),
            "senex_image_registry_digest": "v1.4.0",
        },
        IMAGE_TASK,
        "senex_image_registry_digest v1.4.0 is not a digest",
    ),
    "registry digest without registry delivery": (
        {"senex_image_registry_digest": "sha256:" + "ab" * 32},
        IMAGE_TASK,
        "senex_image_registry_digest is set, but senex_image_delivery is host",
    ),
    "build host outside the inventory": (
        {"senex_image_delivery": "archive", "senex_image_build_host": "build9"},
        IMAGE_TASK,
        "senex_image_build_host build9 is not a host of the inventory",
    ),
    "web port on every interface": (
        {"senex_stack_web_address": "0.0.0.0"},  # noqa: S104 (the refused input)
        ADDRESS_TASK,
        "senex_stack_web_address 0.0.0.0 is not a loopback address",
    ),
}


@pytest.mark.parametrize(("override", "task", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_bad_input_stops_before_any_change(
    tmp_path: Path, override: dict, task: str, message: str
) -> None:
    group_vars = {**good_vars(), **override}

    result = run_deploy(tmp_path, group_vars)

    assert result.returncode != 0
    assert_stopped_before_any_change(result.stdout, task)
    assert message in result.stdout
    secret_values = [
        value for name, value in group_vars.items() if "password" in name or "key" in name
    ]
    assert_not_shown(result.stdout + result.stderr, *secret_values)


def test_web_address_message_names_both_variables(tmp_path: Path) -> None:
    result = run_deploy(tmp_path, {**good_vars(), "senex_stack_web_address": "192.0.2.10"})

    assert_stopped_before_any_change(result.stdout, ADDRESS_TASK)
    assert "senex_stack_web_address 192.0.2.10" in result.stdout
    assert "senex_stack_web_public_reason" in result.stdout


def test_unknown_extra_var_stops_too(tmp_path: Path) -> None:
    result = run_deploy(tmp_path, good_vars(), "-e", "senex_secrets_alowed_hosts=[]")

    assert_stopped_before_any_change(result.stdout, NAMES_TASK)
    assert "senex_secrets_alowed_hosts (did you mean senex_secrets_allowed_hosts?)" in result.stdout


GOOD_INPUTS = {
    "plain": {},
    # django-environ would have read this key as the name of another variable; the app now
    # reads it as it is (app/tests/test_production_settings.py) and the env file carries it.
    "SECRET_KEY starting with $": {
        "senex_secrets_secret_key": "$" + secrets.token_urlsafe(50) + " #'\"\\"
    },
    "public address with a reason": {
        "senex_stack_web_address": "0.0.0.0",  # noqa: S104 (with its reason)
        "senex_stack_web_public_reason": "TLS proxy on another host of the private network",
    },
    "loopback other than 127.0.0.1": {"senex_stack_web_address": "127.0.0.2"},
    "play-level names": {"senex_user": "trader", "senex_domain": "trader.example.com"},
    "no database pool": {"senex_stack_db_pool_size": 0},
    "edge name under an allowed parent domain": {
        "senex_domain": "trader.example.com",
        "senex_secrets_allowed_hosts": [".example.com"],
    },
    "edge with a given certificate and key": {
        "senex_stack_edge_tls": "files",
        "senex_secrets_edge_tls_certificate": "-----BEGIN CERTIFICATE-----",
        "senex_secrets_edge_tls_key": "-----BEGIN PRIVATE KEY-----",
    },
    "no edge, another name": {"senex_stack_edge": False, "senex_domain": "other.example.org"},
    "metrics on a private address": {
        "senex_stack_metrics": True,
        "senex_stack_metrics_address": "10.0.0.12",
    },
    "registry delivery": {
        "senex_image_delivery": "registry",
        "senex_image_registry_repository": "10.213.7.1:5000/senex/senex-trader",
        "senex_image_registry_username": "deployer",
        "senex_image_registry_password": secrets.token_urlsafe(24),
    },
    "archive delivery built on the one host": {
        "senex_image_delivery": "archive",
        "senex_image_build_host": HOST,
    },
    "database pools within a raised max_connections": {
        "senex_stack_db_pool_size": 24,
        "senex_stack_db_max_connections": 125,
    },
}


@pytest.mark.parametrize("override", GOOD_INPUTS.values(), ids=GOOD_INPUTS)
def test_good_input_passes_the_checks(tmp_path: Path, override: dict) -> None:
    group_vars = {**good_vars(), **override}

    result = run_deploy(tmp_path, group_vars, "--tags", "senex_checks")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"TASK [{SECRETS_TASK}]" in result.stdout
    assert recap(result.stdout)["failed"] == 0
    assert recap(result.stdout)["changed"] == 0
    assert role_tasks_run(result.stdout) == []
    assert_not_shown(result.stdout + result.stderr, group_vars["senex_secrets_secret_key"])


@pytest.mark.parametrize("scenario", ["default", "operations", "contract"])
def test_sandbox_and_molecule_inventories_pass_the_checks(tmp_path: Path, scenario: str) -> None:
    # The names Molecule's scenarios and the sandbox set must all be known.
    host_vars = yaml.safe_load(
        next((ROOT / "molecule" / scenario / "host_vars").glob("*.yml")).read_text()
    )

    result = run_deploy(
        tmp_path,
        {},
        "--tags",
        "senex_checks",
        "--vault-password-file",
        str(SANDBOX_VAULT_PASSWORD),
        host_vars=host_vars,
        group_vars_dir=ROOT / "inventories/sandbox/group_vars/senex",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert recap(result.stdout)["failed"] == 0


def test_every_role_default_is_an_option_of_its_argument_spec() -> None:
    # deploy.yml's list of known names comes from the argument specs alone.
    for defaults in ROOT.glob("roles/*/defaults/main.yml"):
        spec = yaml.safe_load((defaults.parents[1] / "meta/argument_specs.yml").read_text())
        options = {
            name for entry in spec["argument_specs"].values() for name in entry.get("options", {})
        }
        assert set(yaml.safe_load(defaults.read_text()) or {}) <= options, defaults


def test_closest_name() -> None:
    sys.path.insert(0, str(ROOT / "filter_plugins"))
    try:
        from senex_names import closest_name
    finally:
        sys.path.pop(0)
    known = ["senex_stack_web_port", "senex_stack_web_address", "senex_secrets_allowed_hosts"]

    assert closest_name("senex_stack_web_prot", known) == "senex_stack_web_port"
    assert closest_name("senex_stak_web_adress", known) == "senex_stack_web_address"
    assert closest_name("senex_zzz", [*known, "senex_user"]) == ""


def podman_env_file(text: str) -> dict[str, str]:
    """Podman's reading of --env-file (pkg/env ParseFile, 5.x): line by line, the trailing CR
    dropped, leading blanks trimmed, `#` lines skipped, the value everything after the first
    `=` as it is (no quotes, no expansion)."""
    env = {}
    for raw in text.split("\n"):
        line = raw.removesuffix("\r").lstrip(" \t")
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.lstrip(" \t")] = value
    return env


def render_env_file(
    tmp_path: Path, values: dict, hosts: dict | None = None, host: str = "localhost"
) -> dict[str, str]:
    """The role's template, rendered by Ansible into tmp_path only, then read as Podman reads it;
    for `host` of the inventory `hosts` (each host this machine) when given."""
    inventory = "localhost,"
    if hosts:
        inventory = str(tmp_path / "hosts.yml")
        Path(inventory).write_text(yaml.safe_dump(hosts))
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": host,
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {
                        **yaml.safe_load(SECRETS_DEFAULTS.read_text()),
                        **yaml.safe_load(SECRETS_VARS.read_text()),
                        # What previous.yml finds on a host deployed before: one earlier key each.
                        "__senex_secrets_secret_key_fallbacks": ["earlier-key"],
                        "__senex_secrets_field_encryption_keys": [
                            values["senex_secrets_field_encryption_key"],
                            "earlier-field-key",
                        ],
                        **values,
                    },
                    "tasks": [
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ lookup('ansible.builtin.template', '"
                                + str(SECRETS_TEMPLATE)
                                + "') }}",
                                "dest": str(tmp_path / "senex.env"),
                                "mode": "0600",
                            },
                            "no_log": True,
                        }
                    ],
                }
            ]
        )
    )
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp")}

    result = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            inventory,
            str(playbook),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    return podman_env_file((tmp_path / "senex.env").read_text())


def test_env_file_carries_a_dollar_key_literally(tmp_path: Path) -> None:
    values = {
        **good_vars(),
        "senex_secrets_secret_key": "$HOME" + secrets.token_urlsafe(50) + " \\$x #'\"=",
        "senex_secrets_extra_env": {"FEATURE": "$PATH"},
    }

    read = render_env_file(tmp_path, values)

    assert read["SECRET_KEY"] == values["senex_secrets_secret_key"]
    assert read["FEATURE"] == "$PATH"


def test_env_file_delivers_the_database_password_as_a_file_by_default(tmp_path: Path) -> None:
    values = good_vars()

    read = render_env_file(tmp_path, values)

    assert read["DB_PASSWORD_FILE"] == "/run/secrets/senex-db-password"  # noqa: S105 (a path)
    assert "DB_PASSWORD" not in read
    assert read["SECRET_KEY"] == values["senex_secrets_secret_key"]
    assert json.loads(read["SECRET_KEY_FALLBACKS"]) == ["earlier-key"]
    field_keys = read["FIELD_ENCRYPTION_KEY"].split(",")
    assert field_keys == [values["senex_secrets_field_encryption_key"], "earlier-field-key"]
    assert read["ENVIRONMENT"] == "production"
    assert "DJANGO_SETTINGS_MODULE" not in read


def test_env_file_delivers_each_secret_as_the_inventory_chooses(tmp_path: Path) -> None:
    values = {
        **good_vars(),
        "senex_secrets_db_password_delivery": "env",
        "senex_secrets_secret_key_delivery": "file",
        "senex_secrets_field_encryption_key_delivery": "file",
        "senex_secrets_environment": "staging",
        "senex_secrets_settings_module": "project.settings.staging",
    }

    read = render_env_file(tmp_path, values)

    assert read["DB_PASSWORD"] == values["senex_secrets_db_password"]
    assert "DB_PASSWORD_FILE" not in read
    assert read["SECRET_KEY_FILE"] == "/run/secrets/senex-secret-key"  # noqa: S105 (a path)
    assert read["SECRET_KEY_FALLBACKS_FILE"] == "/run/secrets/senex-secret-key-fallbacks"  # noqa: S105
    assert read["FIELD_ENCRYPTION_KEY_FILE"] == "/run/secrets/senex-field-encryption-key"
    assert {"SECRET_KEY", "SECRET_KEY_FALLBACKS", "FIELD_ENCRYPTION_KEY"}.isdisjoint(read)
    assert read["ENVIRONMENT"] == "staging"
    assert read["DJANGO_SETTINGS_MODULE"] == "project.settings.staging"


def test_env_file_reaches_the_stacks_own_data_services_over_their_sockets(tmp_path: Path) -> None:
    from celery import Celery
    from kombu import Connection
    from redis import ConnectionPool

    values = good_vars()
    password = values["senex_secrets_redis_password"]

    read = render_env_file(tmp_path, values)

    assert (read["DB_HOST"], read["DB_PORT"]) == ("/run/senex-sockets", "5432")
    # Each URL as the library that reads it takes it apart: redis-py (cache, channel layer),
    # kombu (the broker) and Celery's result backend.
    cache = ConnectionPool.from_url(read["REDIS_URL"]).connection_kwargs
    assert (cache["path"], cache["db"], cache["password"]) == (
        "/run/senex-sockets/redis.sock",
        0,
        password,
    )
    broker = Connection(read["CELERY_BROKER_URL"])
    assert broker.transport_cls == "redis"
    assert broker.hostname.startswith("socket://")
    assert broker.hostname.endswith("/run/senex-sockets/redis.sock?virtual_host=1")
    # As the app's Celery picks its backend from the URL (redis+socket: Redis, over a socket).
    backend = Celery(backend=read["CELERY_RESULT_BACKEND"]).backend.connparams
    assert (backend["path"], backend["password"]) == ("/run/senex-sockets/redis.sock", password)
    assert str(backend["db"]) == "2"


@pytest.mark.parametrize(
    "change",
    [
        {"senex_stack_data_sockets": False},
        {"senex_secrets_db_host": "10.0.0.5", "senex_secrets_redis_host": "10.0.0.5"},
    ],
    ids=["sockets off", "data services on another host"],
)
def test_env_file_reaches_the_data_services_over_tcp_otherwise(
    tmp_path: Path, change: dict
) -> None:
    values = {**good_vars(), **change}
    host = values.get("senex_secrets_db_host", "senex-postgres")
    redis = values.get("senex_secrets_redis_host", "senex-redis")
    password = values["senex_secrets_redis_password"]

    read = render_env_file(tmp_path, values)

    assert (read["DB_HOST"], read["DB_PORT"]) == (host, "5432")
    assert read["REDIS_URL"] == f"redis://:{password}@{redis}:6379/0"
    assert read["CELERY_BROKER_URL"] == f"redis://:{password}@{redis}:6379/1"
    assert read["CELERY_RESULT_BACKEND"] == f"redis://:{password}@{redis}:6379/2"


def split(**extra: dict) -> dict:
    """A split inventory: db (PostgreSQL, Redis, the edge), web1 (web, a worker, beat), web2."""
    hosts = {
        "senex": {
            "hosts": {
                name: {"senex_private_address": address}
                for name, address in (
                    ("db", "10.0.0.11"),
                    ("web1", "10.0.0.12"),
                    ("web2", "10.0.0.13"),
                )
            }
        },
        "senex_db": {"hosts": {"db": None}},
        "senex_edge": {"hosts": {"db": None}},
        "senex_web": {"hosts": {"web1": None, "web2": None}},
        "senex_worker": {"hosts": {"web1": None}},
        "senex_beat": {"hosts": {"web1": None}},
    }
    return hosts | extra


def test_split_inventory_passes_the_checks_and_deploys_the_database_host_first(
    tmp_path: Path,
) -> None:
    # web2 comes first in the inventory; the database's host and then the host of the
    # migrations (the first web host) go before it.
    groups = split(senex_web={"hosts": {"web2": None, "web1": None}})
    groups["senex"]["hosts"] = dict(reversed(list(groups["senex"]["hosts"].items())))

    checked = run_deploy(tmp_path, good_vars(), "--tags", "senex_checks", groups=groups)
    listed = run_deploy(tmp_path / "list", good_vars(), "--list-hosts", groups=groups)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "failed=0" in checked.stdout
    assert "failed=1" not in checked.stdout
    # The play runs its hosts in the order of its pattern (--list-hosts prints them sorted).
    rollout = listed.stdout.split("play #2")[1].split("pattern: ")[1].splitlines()[0]
    assert rollout == "['db', 'web2', 'web1']", listed.stdout


SPLIT_MISTAKES = {
    "two beats": (
        {"senex_beat": {"hosts": {"web1": None, "web2": None}}},
        TOPOLOGY_TASKS[1],
        "senex-beat would run on 2 hosts (web1, web2)",
    ),
    "no groups on three hosts": (
        {key: {"hosts": {}} for key in ()},
        TOPOLOGY_TASKS[1],
        "would run on 3 hosts (db, web1, web2)",
    ),
    "a build host that runs web but not the migrations": (
        {"senex_build": {"hosts": {"web2": None}}},
        TOPOLOGY_TASKS[3],
        "web2 (the first host of senex_build) runs app services, but the migrations run on web1",
    ),
    "a web host outside senex": (
        {"senex_web": {"hosts": {"web1": None, "web2": None, "web3": None}}},
        TOPOLOGY_TASKS[0],
        "web3 is in a group of the stack",
    ),
}


@pytest.mark.parametrize(("change", "task", "message"), SPLIT_MISTAKES.values(), ids=SPLIT_MISTAKES)
def test_split_inventory_mistakes_stop_before_any_change(
    tmp_path: Path, change: dict, task: str, message: str
) -> None:
    groups = split(**change) if change else {"senex": split()["senex"]}

    result = run_deploy(tmp_path, good_vars(), groups=groups)

    assert result.returncode != 0
    failed_task = result.stdout.split("fatal: ")[0].rsplit("TASK [", 1)[-1].split("]")[0]
    assert failed_task == task, result.stdout
    assert message in result.stdout, result.stdout
    assert "changed=1" not in result.stdout
    assert role_tasks_run(result.stdout) == []


def test_web_host_behind_another_hosts_edge_needs_a_private_address(tmp_path: Path) -> None:
    groups = split()
    groups["senex"]["hosts"]["web2"] = None

    result = run_deploy(tmp_path, good_vars(), groups=groups)

    assert result.returncode != 0
    assert "web2 serves other hosts" in result.stdout, result.stdout
    assert "no senex_private_address" in result.stdout
    assert role_tasks_run(result.stdout) == []


# Three hosts: the database on db1, the app on app1 and app2, on a private network.
SPLIT = {
    "senex": {
        "hosts": {
            "db1": {"senex_private_address": "10.213.0.2"},
            "app1": {"senex_private_address": "10.213.0.3"},
            "app2": {"senex_private_address": "10.213.0.4"},
        }
    },
    "senex_db": {"hosts": {"db1": None}},
    "senex_web": {"hosts": {"app1": None, "app2": None}},
    "senex_worker": {"hosts": {"app1": None, "app2": None}},
    "senex_beat": {"hosts": {"app1": None}},
}
CA = "-----BEGIN CERTIFICATE-----\nthe stack's CA\n-----END CERTIFICATE-----"


def test_env_file_of_an_app_host_reaches_the_database_host_over_tls(tmp_path: Path) -> None:
    values = {**good_vars(), "senex_data_tls_ca_pem": CA}
    password = values["senex_secrets_redis_password"]

    read = render_env_file(tmp_path, values, SPLIT, "app1")

    # The database host's private address, from its own inventory entry.
    assert (read["DB_HOST"], read["DB_PORT"]) == ("10.213.0.2", "5432")
    assert read["DB_SSL_MODE"] == "verify-full"
    assert read["DB_SSL_ROOT_CERT"] == "/run/secrets/senex-data-ca"
    assert read["REDIS_SSL_CA_CERTS"] == "/run/secrets/senex-data-ca"
    assert read["REDIS_URL"] == f"rediss://:{password}@10.213.0.2:6380/0"
    # The app's settings add the certificate checks to these (app/tests/test_data_tls.py).
    assert read["CELERY_BROKER_URL"] == f"rediss://:{password}@10.213.0.2:6380/1"
    assert read["CELERY_RESULT_BACKEND"] == f"rediss://:{password}@10.213.0.2:6380/2"


def test_env_file_of_the_database_host_stays_on_its_sockets(tmp_path: Path) -> None:
    values = {**good_vars(), "senex_data_tls_ca_pem": CA}

    read = render_env_file(tmp_path, values, SPLIT, "db1")

    assert read["DB_HOST"] == "/run/senex-sockets"
    assert read["REDIS_URL"].startswith("unix://")
    assert {"DB_SSL_MODE", "DB_SSL_ROOT_CERT", "REDIS_SSL_CA_CERTS"}.isdisjoint(read)


def test_env_file_of_one_host_names_no_tls(tmp_path: Path) -> None:
    read = render_env_file(tmp_path, good_vars())

    assert {"DB_SSL_MODE", "DB_SSL_ROOT_CERT", "REDIS_SSL_CA_CERTS"}.isdisjoint(read)


# No host runs the database: an external PostgreSQL and Redis.
EXTERNAL = {"senex": {"hosts": {"app1": None}}, "senex_db": {"hosts": {}}}
EXTERNAL_VARS = {
    "senex_secrets_db_host": "pg.example.net",
    "senex_secrets_db_port": 25060,
    "senex_secrets_redis_host": "redis.example.net",
    "senex_secrets_redis_port": 25061,
}


@pytest.mark.parametrize("ca", [CA, ""], ids=["provider's CA", "system CAs"])
def test_env_file_reaches_an_external_database_over_tls(tmp_path: Path, ca: str) -> None:
    values = {**good_vars(), **EXTERNAL_VARS, "senex_secrets_data_ca": ca}
    password = values["senex_secrets_redis_password"]

    read = render_env_file(tmp_path, values, EXTERNAL, "app1")

    assert (read["DB_HOST"], read["DB_PORT"]) == ("pg.example.net", "25060")
    assert read["DB_SSL_MODE"] == "verify-full"
    assert read["DB_SSL_ROOT_CERT"] == ("/run/secrets/senex-data-ca" if ca else "system")
    assert read.get("REDIS_SSL_CA_CERTS") == ("/run/secrets/senex-data-ca" if ca else None)
    assert read["REDIS_URL"] == f"rediss://:{password}@redis.example.net:25061/0"


DATA_TASK = "senex_secrets : Stop when a secret or a setting of the env file is unusable"
BAD_TOPOLOGIES = {
    "database host without a private address": (
        {},
        {
            "senex": {"hosts": {HOST: None, "app1": None}},
            "senex_db": {"hosts": {HOST: None}},
            "senex_web": {"hosts": {"app1": None}},
            "senex_beat": {"hosts": {"app1": None}},
            "senex_edge": {"hosts": {"app1": None}},
        },
        "senex_db runs the database on checkhost and the stack has other hosts, but checkhost has"
        " no senex_private_address",
    ),
    "external database without a host": (
        {},
        {"senex": {"hosts": {HOST: None}}, "senex_db": {"hosts": {}}},
        "the inventory group senex_db is empty, so no host runs PostgreSQL and Redis (an external"
        " database), but senex_secrets_db_host and senex_secrets_redis_host still name",
    ),
    "plaintext to an external database": (
        {**EXTERNAL_VARS, "senex_secrets_db_ssl_mode": "disable"},
        {"senex": {"hosts": {HOST: None}}, "senex_db": {"hosts": {}}},
        "senex_secrets_db_ssl_mode is disable, but the database is external: use verify-full",
    ),
    "TLS mode outside the allowed values": (
        {"senex_secrets_db_ssl_mode": "verify_full"},
        None,
        "senex_secrets_db_ssl_mode",
    ),
}


@pytest.mark.parametrize(
    ("override", "hosts", "message"), BAD_TOPOLOGIES.values(), ids=BAD_TOPOLOGIES
)
def test_bad_data_settings_stop_before_any_change(
    tmp_path: Path, override: dict, hosts: dict | None, message: str
) -> None:
    result = run_deploy(tmp_path, {**good_vars(), **override}, hosts=hosts)

    task = SPEC_TASK if hosts is None else DATA_TASK
    assert_stopped_before_any_change(result.stdout, task)
    assert message in result.stdout


def test_a_split_inventory_passes_the_checks(tmp_path: Path) -> None:
    hosts = {
        "senex": {"hosts": {HOST: {"senex_private_address": "10.213.0.3"}, "db1": {}}},
        "senex_db": {"hosts": {"db1": {"senex_private_address": "10.213.0.2"}}},
        "senex_web": {"hosts": {HOST: None}},
        "senex_beat": {"hosts": {HOST: None}},
    }

    result = run_deploy(tmp_path, good_vars(), "--tags", "senex_checks", hosts=hosts)

    assert result.returncode == 0, result.stdout + result.stderr
    assert recap(result.stdout)["failed"] == 0
