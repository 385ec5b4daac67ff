"""Two test hosts on a lab (a private network in namespaces of its own): they reach each other,
the controller reaches them through forwarders on 127.0.0.1, the lab's registry speaks TLS with
a password, and lab-down leaves nothing behind."""

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostcli import TESTHOST, run_json, run_testhost, ssh

sys.path.insert(0, str(TESTHOST.parent))
import rootfs  # the tooling's own list of the roles' packages

LAB, SUBNET, GATEWAY = "lab-t", "10.213.3.0/24", "10.213.3.1"
HOSTS = {"lab-a": (23001, "10.213.3.10"), "lab-b": (23002, "10.213.3.11")}
# lab-a also forwards 127.0.0.1:23011 to its port 8081, where the tests run a small server.
FORWARD, SERVER_PORT = 23011, 8081
# Answers each connection with the address it came from.
SERVER = (
    "import socket, sys\n"
    "server = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "while True:\n"
    "    connection, peer = server.accept()\n"
    "    connection.sendall(peer[0].encode())\n"
    "    connection.close()\n"
)
CLIENT = (
    "import socket, sys\n"
    "print(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).recv(64).decode())"
)
# Reads the registry's API root with the lab's CA; prints the HTTP status.
REGISTRY_PROBE = (
    "import base64, ssl, sys, urllib.error, urllib.request\n"
    "request = urllib.request.Request(sys.argv[1])\n"
    "if len(sys.argv) > 3:\n"
    "    token = base64.b64encode(f'{sys.argv[3]}:{sys.stdin.read()}'.encode()).decode()\n"
    "    request.add_header('Authorization', f'Basic {token}')\n"
    "try:\n"
    "    context = ssl.create_default_context(cafile=sys.argv[2])\n"
    "    print(urllib.request.urlopen(request, context=context).status)\n"
    "except urllib.error.HTTPError as error:\n"
    "    print(error.code)\n"
)


def in_host(name: str, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    return run_testhost("run", name, "--", *argv, stdin=stdin)


@pytest.fixture(scope="module")
def lab() -> Iterator[dict]:
    try:
        created = {"lab": run_json("lab-up", LAB, "--subnet", SUBNET)}
        for name, (port, address) in HOSTS.items():
            extra = ["--forward", f"{FORWARD}:{SERVER_PORT}"] if name == "lab-a" else []
            created[name] = run_json(
                "create", name, "--ssh-port", str(port), "--lab", LAB, "--address", address, *extra
            )
        started = in_host("lab-a", "systemd-run", "--unit=lab-test-server", "python3", "-c",
                          SERVER, HOSTS["lab-a"][1], str(SERVER_PORT))  # fmt: skip
        assert started.returncode == 0, started.stderr
        yield created
    finally:
        if os.environ.get("SENEX_TESTHOST_TEST_KEEP") != "1":
            run_testhost("lab-down", LAB)


def test_lab_up_reports_the_gateway_and_the_registry(lab):
    info = lab["lab"]
    assert info["gateway"] == GATEWAY
    assert info["registry"] == f"{GATEWAY}:5000"
    assert "BEGIN CERTIFICATE" in Path(info["ca_file"]).read_text()
    assert stat.S_IMODE(os.stat(info["password_file"]).st_mode) == 0o600
    assert run_json("lab-up", LAB, "--subnet", SUBNET)["changed"] is False


def test_lab_up_refuses_another_subnet_for_an_existing_lab(lab):
    result = run_testhost("lab-up", LAB, "--subnet", "10.213.9.0/24")
    assert result.returncode == 2
    assert f"exists with subnet {SUBNET}" in result.stderr


def test_hosts_reach_each_other_on_their_lab_addresses(lab):
    seen = in_host("lab-b", "python3", "-c", CLIENT, HOSTS["lab-a"][1], str(SERVER_PORT))
    assert seen.returncode == 0, seen.stderr
    # Inside the lab nothing translates addresses: the server sees lab-b's own.
    assert seen.stdout.strip() == HOSTS["lab-b"][1]


def test_the_forwarders_reach_sshd_and_the_extra_port(lab):
    a = lab["lab-a"]
    assert (a["address"], a["port"]) == ("127.0.0.1", HOSTS["lab-a"][0])
    assert ssh(a, "hostname") == "lab-a"
    assert ssh(lab["lab-b"], "hostname") == "lab-b"
    client = subprocess.run(["python3", "-c", CLIENT, "127.0.0.1", str(FORWARD)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    # The forwarder connects from inside the lab's namespace, from the bridge's address.
    assert client.stdout.strip() == GATEWAY


def test_this_machine_gains_no_lab_address_or_route(lab):
    for what in (["addr"], ["route"]):
        shown = subprocess.run(["ip", "-o", *what], capture_output=True, text=True, check=True)
        assert "10.213.3." not in shown.stdout


def test_the_registry_wants_its_ca_and_the_password(lab):
    info = lab["lab"]
    url = f"https://{info['registry']}/v2/"
    ca = Path(info["ca_file"]).read_text()
    assert in_host("lab-a", "sh", "-c", "cat > /root/lab-ca.crt", stdin=ca).returncode == 0
    probe = ["python3", "-c", REGISTRY_PROBE, url, "/root/lab-ca.crt"]
    assert in_host("lab-a", *probe).stdout.strip() == "401"
    password = Path(info["password_file"]).read_text()
    assert in_host("lab-a", *probe, info["username"], stdin=password).stdout.strip() == "200"
    # The system's CA bundle does not know the lab's CA.
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    untrusted = in_host("lab-a", "python3", "-c", REGISTRY_PROBE, url, system_bundle)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_lab_hosts_hold_the_roles_packages_and_need_no_name_server(lab):
    names = rootfs.role_package_names()
    assert {"podman", "restic"} <= set(names)
    query = in_host("lab-a", "dpkg-query", "-W", "-f", "${db:Status-Status}\\n", *names)
    assert query.stdout.split() == ["installed"] * len(names), query.stderr
    # No server to wait for: a lookup fails at once, the host's own name still resolves.
    assert in_host("lab-a", "getent", "hosts", "deb.debian.org").returncode != 0
    assert in_host("lab-a", "getent", "hosts", "lab-a").stdout.split()[0] == HOSTS["lab-a"][1]


def test_create_refuses_an_address_outside_the_lab(lab):
    result = run_testhost("create", "lab-c", "--ssh-port", "23003", "--lab", LAB,
                          "--address", "10.213.4.3")  # fmt: skip
    assert result.returncode == 2
    assert f"not a host address of lab {LAB}" in result.stderr


def test_reboot_keeps_the_lab_host_reachable(lab):
    run_json("reboot", "lab-a")
    assert ssh(lab["lab-a"], "hostname") == "lab-a"
    reach = "import socket, sys; socket.create_connection((sys.argv[1], 22), timeout=10)"
    assert in_host("lab-b", "python3", "-c", reach, HOSTS["lab-a"][1]).returncode == 0


def test_lab_down_leaves_no_namespace_process_or_file(lab):
    lab_dir = Path(lab["lab"]["ca_file"]).parents[1]
    host_dirs = [Path(lab[name]["identity_file"]).parent for name in HOSTS]
    assert run_json("lab-down", LAB)["changed"] is True
    namespaces = os.listdir("/run/netns")
    assert f"senex-lab-{LAB}" not in namespaces
    assert not {f"senex-th-{name}" for name in HOSTS} & set(namespaces)
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(lab_dir) not in processes
    assert not [port for port, _ in HOSTS.values() if f"TCP-LISTEN:{port}," in processes]
    assert f"TCP-LISTEN:{FORWARD}," not in processes
    assert not lab_dir.exists()
    assert not [d for d in host_dirs if d.exists()]
    assert run_json("lab-down", LAB)["changed"] is False
