"""deploy/: the Prometheus alert rules and scrape configuration pass Debian's promtool (the rules' own unit tests
included: each alert fires on its synthetic series and stays quiet on healthy ones), and every metric the Grafana
dashboard and the rules query is one the app really exports (read from a live scrape of /metrics)."""

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from giftshop.tests.test_metrics import TOKEN

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS, DASHBOARD = DEPLOY / "prometheus", DEPLOY / "grafana" / "giftshop.json"
METRIC = re.compile(r"\bgiftshop_[a-z0-9_]+")


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (bin/test installs it)")
    return path


def run(promtool, *args, cwd=PROMETHEUS):
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def alerts():
    return [
        rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_exprs():
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_alert_rules_pass_promtool(promtool):
    assert "SUCCESS: 4 rules found" in run(promtool, "check", "rules", "alerts.yml")
    names = {rule["alert"] for rule in alerts()}
    assert names == {
        "GiftshopOutboxStuck",
        "GiftshopDeliveryLate",
        "GiftshopGiftCodeGuessing",
        "GiftshopRenewalsFailing",
    }


def test_each_alert_fires_on_its_synthetic_series_and_stays_quiet_on_healthy_ones(promtool):
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts_test.yml")
    cases = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for rule in alerts():
        mine = [check for check in checks if check["alertname"] == rule["alert"]]
        assert any(check["exp_alerts"] for check in mine), f"{rule['alert']} is never shown firing"
        assert any(not check["exp_alerts"] for check in mine), f"{rule['alert']} is never shown quiet"


def test_the_example_scrape_config_passes_promtool(promtool, tmp_path):
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    (tmp_path / "giftshop-metrics-token").write_text(TOKEN)  # promtool checks that the token file exists
    out = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "is valid prometheus config file syntax" in out
    jobs = {job["job_name"] for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]}
    assert jobs == {"giftshop-web", "giftshop-worker"}


# What Grafana needs of a dashboard to import it, and of each panel to draw it from Prometheus.
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos"],
                "properties": {
                    "id": {"type": "integer"},
                    "type": {"enum": ["row", "timeseries", "stat", "gauge", "table"]},
                    "gridPos": {
                        "type": "object",
                        "required": ["h", "w", "x", "y"],
                        "properties": {
                            "w": {"type": "integer", "maximum": 24},
                            "x": {"type": "integer", "maximum": 23},
                        },
                    },
                    "targets": {
                        "type": "array",
                        "items": {"type": "object", "required": ["refId", "expr", "datasource"]},
                    },
                },
            },
        },
    },
}


def test_the_dashboard_loads_and_is_one_grafana_can_import():
    dashboard = json.loads(DASHBOARD.read_text())
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"].strip("${}") in variables


@pytest.mark.django_db
def test_every_metric_the_dashboard_and_the_rules_query_is_exported_and_every_exported_one_is_shown(client, settings):
    # Every app's metrics, as a worker that has run each kind of task has them (this process may not have loaded some).
    for app in ("giftshop", "emails", "accounts", "offers", "gifts", "billing"):
        if (DEPLOY.parent / app / "metrics.py").exists():
            importlib.import_module(f"{app}.metrics")
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    exported, families = set(), set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    for family in text_string_to_metric_families(response.content.decode()):
        if family.name.startswith("giftshop_") and not family.name.endswith("_created"):  # not in multiprocess mode
            families.add(family.name)
            exported.update(family.name + suffix for suffix in suffixes[family.type])

    queried = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    alerted = {name for rule in alerts() for name in METRIC.findall(rule["expr"])}
    assert queried - exported == set()
    assert alerted - exported == set()
    shown = " ".join(dashboard_exprs())
    assert {name for name in families if name not in shown} == set()
