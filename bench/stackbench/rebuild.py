"""A code-only rebuild: one view changed, timed from the change to the new image on the host.

The steps are the senex_image role's, run directly so that Ansible's own per-task cost does
not hide where the seconds go: commit the change (the role builds only committed code),
`git archive` the app's directory and docker/ of that revision, copy both archives to the
host and unpack them into a new build directory as the service user, and `podman build` there
with the role's build arguments and the host's layer cache. Every build step is timed from
podman's own output, so the table says which steps ran again and what each cost.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from imagehost import ROOT

from stackbench.host import USER, BenchHost
from stackbench.rounds import spread

# The view a code-only change touches.
CHANGED_FILE = "app/trading/views.py"
# What the role ships besides the app's directory (one checkout: this repository's docker/).
DOCKER_PATHS = (".dockerignore", "docker")
BUILD_ROOT = f"/home/{USER}/.local/share/senex/build"
IMAGE = "localhost/senex-trader"
TAG = f"{IMAGE}:bench-rebuild"
# Timestamps every line podman prints, as it prints it (runs on the host).
TIMESTAMP = (
    "import sys, time\n"
    "for line in sys.stdin:\n"
    "    sys.stdout.write(f'{time.time():.3f} {line}')\n"
    "    sys.stdout.flush()\n"
)
STEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP (\d+)/(\d+): (.*)$")


def role_build_args() -> dict[str, str]:
    """The build arguments the senex_image role passes, with the sandbox inventory's values
    over the role's defaults (the bench host is deployed with the sandbox inventory)."""
    defaults = yaml.safe_load((ROOT / "roles/senex_image/defaults/main.yml").read_text())
    sandbox = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/senex/vars.yml").read_text())
    v = defaults | {k: val for k, val in sandbox.items() if k.startswith("senex_image_")}
    return {
        "BASE_IMAGE": v["senex_image_base_image"],
        "BUILD_PACKAGES": v["senex_image_build_packages"],
        "APP_DIR": "app",
        "REQUIREMENTS_FILE": v["senex_image_requirements_file"],
        "PIP_REQUIRE_HASHES": "1" if v["senex_image_require_hashes"] else "0",
        "BUILD_ENV": " ".join(f"{k}={val}" for k, val in v["senex_image_build_env"].items()),
        "ASGI_APP": v["senex_image_asgi_app"],
        "CELERY_APP": v["senex_image_celery_app"],
        "HEALTH_PATH": v["senex_image_health_path"],
    }


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def archive(checkout: Path, directory: Path) -> tuple[Path, Path, str, str]:
    """The role's two archives of the checkout's HEAD: app/ (a tree, as the role names it)
    and docker/ with .dockerignore (the last commit touching them)."""
    revision = git(checkout, "log", "-1", "--abbrev=12", "--format=%h", "HEAD", "--", "app")
    docker_revision = git(
        checkout, "log", "-1", "--abbrev=12", "--format=%h", "HEAD", "--", *DOCKER_PATHS
    )
    app_tar = directory / f"source-{revision}.tar"
    docker_tar = directory / f"source-{revision}-docker-{docker_revision}.tar"
    git(checkout, "archive", "--format=tar", "--prefix=app/", f"--output={app_tar}",
        f"{revision}:app")  # fmt: skip
    git(checkout, "archive", "--format=tar", f"--output={docker_tar}", docker_revision, "--",
        *DOCKER_PATHS)  # fmt: skip
    return app_tar, docker_tar, revision, git(checkout, "log", "-1", "--format=%cI", revision)


def ship(host: BenchHost, app_tar: Path, docker_tar: Path, revision: str) -> tuple[float, float]:
    """Copies both archives to the host, then unpacks them into the revision's build
    directory as the service user; returns the seconds of each."""
    start = time.monotonic()
    for tar in (app_tar, docker_tar):
        host.root(f"cat > /tmp/{tar.name}", stdin=tar.read_bytes())
    copied = time.monotonic()
    build_dir = f"{BUILD_ROOT}/bench-{revision}"
    host.root(
        f"chown {USER}: /tmp/{app_tar.name} /tmp/{docker_tar.name}"
        f" && {host.as_user} sh -c 'rm -rf {build_dir} && mkdir -p {build_dir}"
        f" && tar -x -C {build_dir} -f /tmp/{app_tar.name}"
        f" && tar -x -C {build_dir} -f /tmp/{docker_tar.name}'"
        f" && rm -f /tmp/{app_tar.name} /tmp/{docker_tar.name}"
    )
    return copied - start, time.monotonic() - copied


def build(host: BenchHost, revision: str, created: str, build_args: dict[str, str]) -> dict:
    """podman build in the revision's build directory as the role runs it; returns the wall
    time and each step's instruction, whether it came from the cache, and its seconds."""
    build_dir = f"{BUILD_ROOT}/bench-{revision}"
    args = build_args | {"VERSION": revision, "REVISION": revision, "CREATED": created}
    # The runtime base the role built for these dependencies, when the Dockerfile takes one.
    if host.ssh(f"grep -q '^ARG RUNTIME_BASE=' {build_dir}/docker/Dockerfile").returncode == 0:
        base = host.user(
            f"podman images --filter reference={IMAGE}-base"
            " --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' | head -1"
        ).strip()
        if base:
            args["RUNTIME_BASE"] = base
    flags = " ".join(f"--build-arg {k}={shlex.quote(v)}" for k, v in args.items())
    secret = f"{BUILD_ROOT}/ca-bundle.pem"
    # The flags containers.podman.podman_image adds: the label is its Dockerfile's sha256.
    module_flags = f"--rm --label containerfile.hash=$(sha256sum < {build_dir}/docker/Dockerfile"
    module_flags += " | cut -d' ' -f1)"
    command = (
        f"cd {build_dir} && podman build {module_flags} --format docker -f docker/Dockerfile"
        f" {flags}"
        f" $(test -s {secret} && echo --secret id=ca_bundle,src={secret}) -t {TAG} . 2>&1"
        f" | python3 -u -c {shlex.quote(TIMESTAMP)}; exit ${{PIPESTATUS[0]}}"
    )
    start = time.time()
    out = host.user(command)
    end = time.time()
    return {"seconds": end - start, "steps": steps_of(out, start, end)}


def steps_of(output: str, start: float, end: float) -> list[dict]:
    """Each STEP line to the next (the last to the end of the build, which includes the
    image's commit): its instruction, whether podman used its cache, and its seconds."""
    steps: list[dict] = []
    for line in output.splitlines():
        stamp, _, text = line.partition(" ")
        found = STEP.match(text)
        if found:
            steps.append({"instruction": found.group(3)[:90], "start": float(stamp)})
        elif steps and text.startswith("--> Using cache"):
            steps[-1]["cached"] = True
    for step, following in zip(steps, [*steps[1:], {"start": end}], strict=True):
        step["seconds"] = following["start"] - step.pop("start")
        step.setdefault("cached", False)
    if steps:
        steps.insert(0, {"instruction": "(podman start)", "cached": True, "seconds": 0.0})
        steps[0]["seconds"] = end - start - sum(s["seconds"] for s in steps[1:])
    return steps


def role_play(host: BenchHost, directory: Path) -> list[str]:
    """ansible-playbook running the image role alone against the bench host, with the sandbox
    inventory's variables: what a deploy spends up to the new image, Ansible included."""
    inventory = directory / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "senex": {
                    "hosts": {
                        host.name: {
                            "ansible_host": "127.0.0.1",
                            "ansible_port": host.ssh_port,
                            "ansible_user": "root",
                            "ansible_ssh_private_key_file": host.identity_file,
                            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no"
                            " -o UserKnownHostsFile=/dev/null",
                            "ansible_python_interpreter": "/usr/bin/python3",
                        }
                    }
                }
            }
        )
    )
    play = directory / "image.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Build the app image",
                    "hosts": "senex",
                    "become": True,
                    "gather_facts": False,
                    "roles": [{"role": str(ROOT / "roles" / "senex_image")}],
                }
            ]
        )
    )
    return [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(ROOT / "inventories" / "sandbox" / "hosts.yml"),
        "-i",
        str(inventory),
        "--vault-password-file",
        str(ROOT / "inventories" / "sandbox" / "SANDBOX-ONLY-vault-password"),
        str(play),
    ]


def change(checkout: Path, label: str) -> None:
    """Edits the view and commits it: the deploy builds committed code only."""
    view = checkout / CHANGED_FILE
    view.write_text(view.read_text() + f"\n# A code-only change, {label}.\n")
    git(checkout, "commit", "-q", "-am", f"A code-only change, {label}")


def run_role(command: list[str], checkout: Path, cache: Path) -> dict[str, float]:
    """Runs the image role; returns the seconds of each task (ansible.posix.profile_tasks)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
    }
    extra = [
        "-e", f"senex_image_source_dir={checkout}", "-e", f"senex_image_docker_dir={checkout}",
        "-e", f"senex_image_archive_cache={cache}",
    ]  # fmt: skip
    result = subprocess.run([*command, *extra], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the image role failed:\n{result.stdout[-3000:]}{result.stderr}")
    tasks: dict[str, float] = {}
    for found in re.finditer(r"^(.+?) -{3,} (\d+\.\d+)s$", result.stdout, re.MULTILINE):
        name = found.group(1).strip()
        tasks[name] = tasks.get(name, 0.0) + float(found.group(2))
    return tasks


def measure_rebuild(host: BenchHost, args: argparse.Namespace) -> dict:
    """A warm-up build of HEAD (so the cache holds this Dockerfile's layers), then per round:
    change the view, commit, archive, ship, build; every phase timed."""
    build_args = role_build_args()
    # The role moves the stack's tags; they go back to the deployed images at the end.
    tags = {
        tag: host.user(f"podman image inspect --format '{{{{.Id}}}}' {IMAGE}:{tag}").strip()
        for tag in ("current", "previous")
        if host.ssh(
            f"cd /home/{USER} && {host.as_user} podman image exists {IMAGE}:{tag}"
        ).returncode
        == 0
    }
    rounds = []
    with tempfile.TemporaryDirectory(prefix="senex-rebuild-") as temp:
        checkout, archives = Path(temp) / "checkout", Path(temp) / "archives"
        archives.mkdir()
        subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
        git(checkout, "config", "user.email", "bench@localhost")
        git(checkout, "config", "user.name", "bench")
        app_tar, docker_tar, revision, created = archive(checkout, archives)
        ship(host, app_tar, docker_tar, revision)
        warm = build(host, revision, created, build_args)
        print(f"  warm-up build of HEAD: {warm['seconds']:.1f} s", flush=True)
        command = role_play(host, Path(temp))
        cache = Path(temp) / "role-archives"
        for number in range(args.rounds):
            # Through the role, as a deploy runs it (the tags it moves are the stack's own:
            # `current` ends on this revision, as after any deploy; nothing restarts).
            start = time.monotonic()
            change(checkout, f"round {number + 1} through the role")
            role_tasks = run_role(command, checkout, cache)
            role_seconds = time.monotonic() - start
            start = time.monotonic()
            change(checkout, f"round {number + 1}")
            committed = time.monotonic()
            app_tar, docker_tar, revision, created = archive(checkout, archives)
            archived = time.monotonic()
            copy_seconds, unpack_seconds = ship(host, app_tar, docker_tar, revision)
            result = build(host, revision, created, build_args)
            total = time.monotonic() - start
            rounds.append(
                {
                    "total_seconds": total,
                    "role_seconds": role_seconds,
                    "role_tasks": role_tasks,
                    "commit_seconds": committed - start,
                    "archive_seconds": archived - committed,
                    "archive_bytes": app_tar.stat().st_size + docker_tar.stat().st_size,
                    "copy_seconds": copy_seconds,
                    "unpack_seconds": unpack_seconds,
                    "build_seconds": result["seconds"],
                    "steps": result["steps"],
                }
            )
            ran = [s for s in result["steps"] if not s["cached"]]
            print(
                f"  round {number + 1}: through the role {role_seconds:.1f} s; directly"
                f" {total:.1f} s (build {result['seconds']:.1f} s, {len(ran)} steps ran)",
                flush=True,
            )
            for archive_file in archives.iterdir():
                archive_file.unlink()
    # The role's prune may have removed the old rollback image (no container uses it).
    for tag, image_id in tags.items():
        host.user(f"! podman image exists {image_id} || podman tag {image_id} {IMAGE}:{tag}")
    host.user(
        f"podman rmi --force {TAG} >/dev/null; rm -rf {BUILD_ROOT}/bench-*;"
        " podman image prune --force --filter label=org.opencontainers.image.title=senex-trader"
        " >/dev/null"
    )
    figures = ("role_seconds", "total_seconds", "commit_seconds", "archive_seconds", "copy_seconds",
               "unpack_seconds", "build_seconds")  # fmt: skip
    return {
        "changed_file": CHANGED_FILE,
        "rounds": args.rounds,
        "warm_up_seconds": warm["seconds"],
        "archive_bytes": rounds[-1]["archive_bytes"] if rounds else 0,
        "results": {key: spread([r[key] for r in rounds]) for key in figures},
        "steps": step_spreads(rounds),
        "role_tasks": {
            name: spread([r["role_tasks"].get(name, 0.0) for r in rounds])
            for name in (rounds[0]["role_tasks"] if rounds else {})
        },
        "samples": rounds,
    }


def step_spreads(rounds: list[dict]) -> list[dict]:
    """Each build step's seconds over the rounds, and whether it ran (not cached) in any."""
    if not rounds:
        return []
    table = []
    for index, step in enumerate(rounds[0]["steps"]):
        table.append(
            {
                "instruction": step["instruction"],
                "ran": any(not r["steps"][index]["cached"] for r in rounds),
                "seconds": spread([r["steps"][index]["seconds"] for r in rounds]),
            }
        )
    return table
