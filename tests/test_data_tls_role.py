"""The senex_data_tls role on the controller: a CA whose key stays in its directory, a
certificate for the database host's private address that the CA signed, left alone while
it is far from its end and made anew when it nears it; nothing at all on one host."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography import x509

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SPLIT = {
    "senex": {
        "hosts": {
            "db1": {"senex_private_address": "10.213.0.2"},
            "app1": {"senex_private_address": "10.213.0.3"},
        }
    },
    "senex_db": {"hosts": {"db1": None}},
}


def run_role(
    tmp_path: Path, hosts: dict, *args: str, **extra: object
) -> tuple[subprocess.CompletedProcess, dict]:
    """The role against every host of `hosts` (all of them this machine, nothing run on them);
    the facts it set, by host."""
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    facts = tmp_path / "facts.json"
    playbook = [
        {
            "hosts": "senex",
            "connection": "local",
            "gather_facts": False,
            "roles": ["senex_data_tls"],
            "tasks": [
                {
                    "name": "Write the facts the role set",
                    "ansible.builtin.copy": {
                        "content": "{{ dict(ansible_play_hosts | zip(ansible_play_hosts"
                        " | map('extract', hostvars) | map('dict2items') | map('selectattr', 'key',"
                        " 'match', 'senex_data_tls_.*_pem') | map('items2dict'))) | to_json }}",
                        "dest": str(facts),
                        "mode": "0600",
                    },
                    "run_once": True,
                    "no_log": True,
                    # The test's own file, not the role's change, written in check mode too.
                    "changed_when": False,
                    "check_mode": False,
                }
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [
            *(ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")),
            *("-e", f"ansible_python_interpreter={sys.executable}"),
            *("-e", json.dumps({"senex_data_tls_ca_dir": str(tmp_path / "ca"), **extra})),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, json.loads(facts.read_text())


def changed(result: subprocess.CompletedProcess) -> int:
    return sum(
        int(line.split("changed=")[1].split()[0])
        for line in result.stdout.splitlines()
        if "changed=" in line
    )


def test_the_ca_signs_the_database_hosts_certificate_and_renews_it_near_its_end(
    tmp_path: Path,
) -> None:
    _, facts = run_role(tmp_path, SPLIT)
    ca = x509.load_pem_x509_certificate(facts["app1"]["senex_data_tls_ca_pem"].encode())
    server = x509.load_pem_x509_certificate(facts["db1"]["senex_data_tls_certificate_pem"].encode())

    # The app host gets the CA, never a key; the CA's key stays in its directory.
    assert facts["app1"]["senex_data_tls_ca_pem"] == facts["db1"]["senex_data_tls_ca_pem"]
    assert "senex_data_tls_key_pem" not in facts["app1"]
    assert "PRIVATE KEY" in facts["db1"]["senex_data_tls_key_pem"]
    assert oct((tmp_path / "ca/ca.key").stat().st_mode & 0o777) == "0o600"
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.213.0.2"]

    again, facts_again = run_role(tmp_path, SPLIT)
    renewed, facts_renewed = run_role(tmp_path, SPLIT, senex_data_tls_renew_days=400)
    new = x509.load_pem_x509_certificate(
        facts_renewed["db1"]["senex_data_tls_certificate_pem"].encode()
    )

    assert changed(again) == 0
    assert facts_again == facts
    # 365 days left are within 400: a new certificate from the same CA.
    assert changed(renewed) > 0
    assert new.serial_number != server.serial_number
    new.verify_directly_issued_by(ca)
    assert facts_renewed["app1"]["senex_data_tls_ca_pem"] == facts["app1"]["senex_data_tls_ca_pem"]


def test_one_host_gets_no_certificates(tmp_path: Path) -> None:
    result, facts = run_role(tmp_path, {"senex": {"hosts": {"only": None}}})

    assert facts == {"only": {}}
    assert changed(result) == 0
    assert not (tmp_path / "ca").exists()


def test_a_check_run_before_the_first_makes_nothing(tmp_path: Path) -> None:
    result, facts = run_role(tmp_path, SPLIT, "--check")

    assert changed(result) > 0
    assert not (tmp_path / "ca/ca.key").exists()
    assert facts["db1"]["senex_data_tls_certificate_pem"] == ""
