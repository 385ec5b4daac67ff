"""The stand-in images honour the official images' contracts, run rootless in a test host."""

import shlex
import subprocess
from collections.abc import Iterator

import pytest
from hostcli import run_json, run_testhost

HOST, SSH_PORT = "th-standins", 2206
USER = "standin"
PODMAN_PACKAGES = "podman uidmap passt dbus-user-session aardvark-dns nftables"
PG, REDIS = "localhost/senex-standin-postgres:17", "localhost/senex-standin-redis:8"


class Host:
    def __init__(self, reach: dict) -> None:
        self.reach = reach
        self.ssh_options = ["-i", reach["identity_file"], "-o", "BatchMode=yes",
                            "-o", f"UserKnownHostsFile={reach['known_hosts']}"]  # fmt: skip

    def root(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["ssh", *self.ssh_options, "-p", str(self.reach["port"]), "root@127.0.0.1", command]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            pytest.fail(f"{command!r} failed ({result.returncode}): {result.stderr}")
        return result

    def podman(self, args: str, check: bool = True) -> subprocess.CompletedProcess:
        as_user = f"cd ~{USER} && runuser -u {USER} -- env XDG_RUNTIME_DIR=/run/user/1000 "
        as_user += "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"
        return self.root(f"{as_user} podman {args}", check=check)

    def copy(self, path: str, destination: str) -> None:
        argv = ["scp", "-q", *self.ssh_options, "-P", str(self.reach["port"]), path,
                f"root@127.0.0.1:{destination}"]  # fmt: skip
        subprocess.run(argv, check=True)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    archives = run_json("standins")
    test_host = Host(run_json("create", HOST, "--ssh-port", str(SSH_PORT)))
    try:
        test_host.root(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y "
            f"--no-install-recommends {PODMAN_PACKAGES} >/dev/null"
        )
        test_host.root(f"useradd --create-home --uid 1000 {USER} && loginctl enable-linger {USER}")
        for name, archive in archives.items():
            test_host.copy(archive, f"/home/{USER}/{name}.oci.tar")
            test_host.podman(f"load --quiet --input {name}.oci.tar")
        test_host.podman("network create standins")
        yield test_host
    finally:
        run_testhost("destroy", HOST)


def wait_ready(host: Host, container: str) -> None:
    for _ in range(60):
        if host.podman(f"exec {container} pg_isready -q", check=False).returncode == 0:
            return
        host.root("sleep 1")
    pytest.fail(f"{container} never became ready: {host.podman(f'logs {container}').stderr}")


def psql(host: Host, password: str, sql: str, check: bool = True) -> subprocess.CompletedProcess:
    # From another container over the network, as the app would connect.
    return host.podman(
        f"run --rm --network standins -e PGPASSWORD={password} {PG} psql -h pg -U senex "
        f"-d senexdb -Atc {shlex.quote(sql)}",
        check=check,
    )


def test_postgres_initialises_once_from_a_password_file_and_keeps_data(host):
    host.root(f"printf first-password > ~{USER}/pw && chown {USER} ~{USER}/pw")
    run = (
        "run -d --name pg --network standins -v pgdata:/var/lib/postgresql/data "
        "-e POSTGRES_USER=senex -e POSTGRES_DB=senexdb -e POSTGRES_PASSWORD_FILE=/run/pw "
        f"-v ./pw:/run/pw:ro {PG}"
    )
    host.podman(run)
    wait_ready(host, "pg")
    assert psql(host, "first-password", "select current_user, current_database()").stdout == (
        "senex|senexdb\n"
    )
    psql(host, "first-password", "create table kept (x int); insert into kept values (42)")
    assert host.podman("top pg user").stdout.split()[1] == "postgres"
    assert host.podman("exec pg stat -c %u:%a /var/lib/postgresql/data").stdout == "999:700\n"

    # A new container on the same volume with another password: no second initdb.
    host.podman("rm --force --time 10 pg")
    host.root(f"printf second-password > ~{USER}/pw")
    host.podman(run)
    wait_ready(host, "pg")
    assert psql(host, "first-password", "select x from kept").stdout == "42\n"
    assert psql(host, "second-password", "select 1", check=False).returncode != 0
    host.podman("rm --force --time 10 pg")


def test_postgres_honours_pgdata_and_a_plain_password(host):
    host.podman(
        "run -d --name pg --network standins -e POSTGRES_USER=senex -e POSTGRES_DB=senexdb "
        f"-e POSTGRES_PASSWORD=plain -e PGDATA=/srv/pg {PG}"
    )
    wait_ready(host, "pg")
    assert host.podman("exec pg cat /srv/pg/PG_VERSION").stdout == "17\n"
    assert psql(host, "plain", "select 1").stdout == "1\n"
    host.podman("rm --force --time 10 pg")


def test_postgres_refuses_an_empty_volume_without_a_password(host):
    result = host.podman(f"run --rm {PG}", check=False)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" in result.stderr


def test_redis_takes_server_arguments(host):
    host.podman(
        f"run -d --name rd --network standins {REDIS} "
        "--requirepass s3cret --maxmemory 32mb --appendonly yes"
    )
    cli = f"run --rm --network standins {REDIS} redis-cli -h rd --no-auth-warning"
    for _ in range(30):
        if host.podman(f"{cli} -a s3cret ping", check=False).stdout == "PONG\n":
            break
        host.root("sleep 1")
    assert host.podman(f"{cli} -a s3cret config get maxmemory").stdout == "maxmemory\n33554432\n"
    assert "NOAUTH" in host.podman(f"{cli} get anything").stdout
    assert host.podman("top rd user").stdout.split()[1] == "redis"
    assert host.podman("exec rd stat -c %u /data/appendonlydir").stdout == "999\n"
    host.podman("rm --force --time 10 rd")


def test_redis_takes_a_config_file(host):
    host.root(f"printf 'requirepass fromfile\\n' > ~{USER}/redis.conf")
    host.podman(f"run -d --name rd -v ./redis.conf:/etc/redis.conf:ro {REDIS} /etc/redis.conf")
    for _ in range(30):
        result = host.podman("exec rd redis-cli -a fromfile --no-auth-warning ping", check=False)
        if result.stdout == "PONG\n":
            break
        host.root("sleep 1")
    assert result.stdout == "PONG\n"
    host.podman("rm --force --time 10 rd")


def test_python_has_venv_libpq_and_ca_bundle(host):
    script = (
        "python3 -m venv /opt/v && /opt/v/bin/python -c 'import sys; print(sys.version_info[:2])'"
        " && test -e /usr/lib/x86_64-linux-gnu/libpq.so.5"
        " && test -s /etc/ssl/certs/ca-certificates.crt"
    )
    image = "localhost/senex-standin-python:trixie"
    assert host.podman(f"run --rm {image} sh -c {shlex.quote(script)}").stdout == "(3, 13)\n"
