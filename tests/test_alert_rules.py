"""The example Prometheus configuration and the alert rules in docs/prometheus/ are what promtool
accepts, and each alert fires when it should and stays quiet when it should not.

promtool comes from Debian's prometheus package (`make deps`). Without it these tests fail: a
machine that lacks it must not pass the suite with the rules unchecked.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRAPE = ROOT / "docs/prometheus/scrape.yml"
ALERTS = ROOT / "docs/prometheus/alerts.yml"
UNIT_TESTS = ROOT / "tests/prometheus/alerts_test.yml"
OPERATIONS = ROOT / "docs/operations.md"
JOBS = {"senex_app", "senex_flower", "senex_postgres", "senex_redis", "senex_host"}

PROMTOOL_RUNS = {
    "config": ["check", "config", SCRAPE],
    "rules": ["check", "rules", ALERTS],
    "unit-tests": ["test", "rules", UNIT_TESTS],
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: Debian's prometheus package has it (make deps)")
    return path


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("args", PROMTOOL_RUNS.values(), ids=PROMTOOL_RUNS.keys())
def test_promtool_accepts(args: list) -> None:
    result = subprocess.run([promtool(), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_waits_and_says_how_bad_and_what_to_do() -> None:
    for rule in alert_rules():
        assert "for" in rule, f"{rule['alert']} fires on a single evaluation"
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


def test_every_alert_has_a_unit_test_where_it_fires_and_a_line_in_the_runbook() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    runbook = OPERATIONS.read_text()
    for name in {rule["alert"] for rule in alert_rules()}:
        assert name in fired, f"no unit test in {UNIT_TESTS.name} expects {name} to fire"
        assert f"`{name}`" in runbook, f"docs/operations.md does not describe {name}"


def test_the_scrape_config_has_the_documented_jobs_each_target_labelled_with_its_host() -> None:
    scrape_configs = yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
    assert {job["job_name"] for job in scrape_configs} == JOBS
    for job in scrape_configs:
        for static in job["static_configs"]:
            assert static.get("labels", {}).get("host"), f"{job['job_name']}: a target without host"
