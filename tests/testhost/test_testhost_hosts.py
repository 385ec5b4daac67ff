"""Two test hosts at once: reachable over SSH, independent, rebooted and destroyed cleanly."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostcli import run_json, run_testhost, ssh

PORTS = {"th-a": 2203, "th-b": 2204}


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, dict]]:
    created = {}
    try:
        for name, port in PORTS.items():
            created[name] = run_json("create", name, "--ssh-port", str(port))
        yield created
    finally:
        if os.environ.get("SENEX_TESTHOST_TEST_KEEP") != "1":
            for name in PORTS:
                run_testhost("destroy", name)


def test_each_host_answers_ssh_as_root_under_its_own_name(hosts):
    for name, host in hosts.items():
        assert host["port"] == PORTS[name]
        assert ssh(host, "id -un; hostname") == f"root\n{name}"


def test_hosts_are_bare_debian_13_without_podman(hosts):
    host = hosts["th-a"]
    assert "VERSION_CODENAME=trixie" in ssh(host, "cat /etc/os-release")
    assert ssh(host, "command -v python3 sudo sshd systemctl | wc -l") == "4"
    assert ssh(host, "command -v podman || echo absent") == "absent"


def test_hosts_have_their_own_identity(hosts):
    ids = {ssh(host, "cat /etc/machine-id") for host in hosts.values()}
    assert len(ids) == len(hosts)
    keys = {Path(host["known_hosts"]).read_text().split()[-1] for host in hosts.values()}
    assert len(keys) == len(hosts)


def test_test_host_settings_are_in_place(hosts):
    host = hosts["th-a"]
    assert ssh(host, "systemctl is-enabled network-online.target") == "enabled"
    assert ssh(host, "stat -c %a /dev/net/tun") == "666"
    conf = ssh(host, "cat /etc/containers/containers.conf.d/*.conf")
    assert "default_sysctls = []" in conf
    assert "pids_limit = 0" in conf


def test_create_again_changes_nothing(hosts):
    again = run_json("create", "th-a", "--ssh-port", str(PORTS["th-a"]))
    assert again["changed"] is False
    assert again["identity_file"] == hosts["th-a"]["identity_file"]


def test_create_refuses_another_port_for_an_existing_host(hosts):
    result = run_testhost("create", "th-a", "--ssh-port", "2205")
    assert result.returncode == 2
    assert "exists with SSH port 2203" in result.stderr


def test_create_refuses_the_port_of_another_host(hosts):
    result = run_testhost("create", "th-c", "--ssh-port", str(PORTS["th-b"]))
    assert result.returncode == 2
    assert "belongs to test host th-b" in result.stderr


def test_run_passes_the_exit_code_and_output_through(hosts):
    result = run_testhost("run", "th-a", "--", "sh", "-c", "hostname; exit 7")
    assert result.returncode == 7
    assert result.stdout.strip() == "th-a"


def test_reboot_keeps_files_and_leaves_the_other_host_alone(hosts):
    a, b = hosts["th-a"], hosts["th-b"]
    boot_id = "cat /proc/sys/kernel/random/boot_id"
    before_a, before_b = ssh(a, boot_id), ssh(b, boot_id)
    ssh(a, "echo kept > /var/lib/reboot-marker")
    run_json("reboot", "th-a")
    assert ssh(a, boot_id) != before_a
    assert ssh(a, "cat /var/lib/reboot-marker") == "kept"
    assert ssh(b, boot_id) == before_b


def test_create_boots_again_a_host_whose_nspawn_died(hosts):
    b = hosts["th-b"]
    ssh(b, "echo kept > /var/lib/crash-marker")
    pidfile = Path(b["identity_file"]).with_name("nspawn.pid")
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    # The host's systemd outlives nspawn (sshd still answers); create must clear it away.
    again = run_json("create", "th-b", "--ssh-port", str(PORTS["th-b"]))
    assert again["changed"] is True
    assert ssh(b, "cat /var/lib/crash-marker") == "kept"


def test_destroy_removes_one_host_and_not_the_other(hosts):
    a = hosts["th-a"]
    assert run_json("destroy", "th-a")["changed"] is True
    assert not os.path.exists(os.path.dirname(a["identity_file"]))
    assert not os.path.exists("/sys/fs/cgroup/unified/senex-testhost-th-a")
    listed = {host["name"]: host["running"] for host in run_json("list")}
    assert "th-a" not in listed
    assert listed["th-b"] is True
    assert ssh(hosts["th-b"], "hostname") == "th-b"
