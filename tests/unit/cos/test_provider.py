"""The cos_agent provider: what it writes must satisfy the published v0 schema.

`PublishedProviderUnitData` restates the provider schema of the cos_agent v0 interface,
charm-relation-interfaces `interfaces/cos_agent/v0/schema.py` (`NestedDataModel`,
`ProviderUnitData`: the unit databag's `config` is the JSON of an object with
`metrics_alert_rules` and `log_alert_rules` (objects), `dashboards` (strings: base64 of
the LZMA-compressed dashboard JSON), `metrics_scrape_jobs` (objects) and `log_slots`
(strings)); the grafana-agent charm's `cos_agent` library (`CosAgentProviderUnitData`)
reads the same keys. The real charms and a minimal one are run through Scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import ops
import pytest
import yaml
from ops import testing
from pydantic import BaseModel, ConfigDict, Json

from database_backup.cos import (
    CONFIG_KEY,
    CosAgentProvider,
    ScrapeEndpoint,
    decode_dashboard,
    inject_matchers,
)
from tests.charms import ROOT, manager_charm_module, mysql_charm_module

MODEL = testing.Model(name="prod", uuid="0b6c3f52-8a1e-4c55-9d0b-5f0a1e2d3c4b")


class PublishedConfig(BaseModel):
    """`NestedDataModel` of the published schema (every field required)."""

    model_config = ConfigDict(extra="allow")

    metrics_alert_rules: dict[str, Any]
    log_alert_rules: dict[str, Any]
    dashboards: list[str]
    metrics_scrape_jobs: list[dict[str, Any]]
    log_slots: list[str]


class PublishedProviderUnitData(BaseModel):
    """`ProviderUnitData` of the published schema: `config` holds JSON text."""

    config: Json[PublishedConfig]


def cos_relation() -> testing.Relation:
    return testing.Relation("cos-agent", interface="cos_agent", remote_app_name="grafana-agent")


def published(state: testing.State) -> PublishedConfig:
    relation = state.get_relations("cos-agent")[0]
    return PublishedProviderUnitData.model_validate(dict(relation.local_unit_data)).config


# -- the two real charms ------------------------------------------------------------------


def manager_context(tmp_path: Path) -> testing.Context[Any]:
    """The real manager with a copy of its charm directory's COS files as the charm root.

    A copy: Scenario writes its metadata files into the charm root it is given.
    """
    for name in ("prometheus_alert_rules", "loki_alert_rules", "grafana_dashboards"):
        shutil.copytree(ROOT / "src" / name, tmp_path / "src" / name)
    return testing.Context(manager_charm_module().BackupManagerCharm, charm_root=tmp_path)


def test_the_manager_publishes_rules_dashboard_and_the_exporter_scrape_job(tmp_path: Path):
    relation = cos_relation()
    ctx = manager_context(tmp_path)
    out = ctx.run(
        ctx.on.relation_joined(relation), testing.State(relations=[relation], model=MODEL)
    )
    config = published(out)
    groups = config.metrics_alert_rules["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert "DatabaseBackupDrillFailed" in alerts
    assert all(group["name"].startswith("prod_0b6c3f52_backup_manager_") for group in groups)
    rule = groups[0]["rules"][0]
    assert rule["labels"]["juju_application"] == "backup-manager"
    assert rule["labels"]["juju_model_uuid"] == MODEL.uuid
    assert f'juju_model_uuid="{MODEL.uuid}",juju_application="backup-manager"' in rule["expr"]
    [log_group] = config.log_alert_rules["groups"]
    assert "%%juju_topology%%" not in log_group["rules"][0]["expr"]
    assert f'{{juju_model_uuid="{MODEL.uuid}"}}' in log_group["rules"][0]["expr"]
    [dashboard] = config.dashboards
    assert decode_dashboard(dashboard)["uid"] == "database-backup-health"
    assert config.metrics_scrape_jobs == [
        {
            "job_name": "backup-manager_0_backup-health",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["localhost:9582"]}],
        }
    ]
    assert config.log_slots == []


def test_the_database_charm_publishes_a_valid_config_without_rules_of_its_own():
    relation = cos_relation()
    ctx = testing.Context(mysql_charm_module().MySQLServerCharm)
    out = ctx.run(
        ctx.on.relation_joined(relation), testing.State(relations=[relation], model=MODEL)
    )
    config = published(out)
    assert config.metrics_alert_rules == {}
    assert config.log_alert_rules == {}
    assert config.dashboards == []
    assert config.metrics_scrape_jobs == []


def test_the_published_rules_still_pass_promtool_check(tmp_path: Path):
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: run scripts/install-system-deps.sh")
        pytest.skip("promtool is not installed here (Debian prometheus); CI installs it")
    relation = cos_relation()
    ctx = manager_context(tmp_path / "charm")
    out = ctx.run(
        ctx.on.relation_joined(relation), testing.State(relations=[relation], model=MODEL)
    )
    rules = tmp_path / "published.rules"
    rules.write_text(yaml.safe_dump(published(out).metrics_alert_rules))
    result = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_metadata_of_both_charms_provides_cos_agent():
    for path in (ROOT / "metadata.yaml", ROOT / "mysql" / "metadata.yaml"):
        provides = yaml.safe_load(path.read_text())["provides"]
        assert provides["cos-agent"]["interface"] == "cos_agent", path


# -- the provider on its own --------------------------------------------------------------

META = {"name": "tiny", "provides": {"cos-agent": {"interface": "cos_agent"}}}


class TinyCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.cos = CosAgentProvider(
            self, endpoints=[ScrapeEndpoint("metrics", 9100)], metric_prefix="tiny_"
        )


def tiny_context(root: Path) -> testing.Context[TinyCharm]:
    return testing.Context(TinyCharm, meta=META, charm_root=root)


def write_rules(root: Path, text: str) -> None:
    rules = root / "src" / "prometheus_alert_rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "tiny.rules").write_text(text)


RULES = """
groups:
  - name: tiny
    rules:
      - alert: TinyDown
        expr: max by (x) (tiny_up{job="a"}) == 0 or absent(tiny_up)
        labels: {severity: warning}
"""


def test_the_tiny_charm_publishes_its_rules_with_topology(tmp_path: Path):
    write_rules(tmp_path, RULES)
    relation = cos_relation()
    ctx = tiny_context(tmp_path)
    out = ctx.run(
        ctx.on.relation_changed(relation), testing.State(relations=[relation], model=MODEL)
    )
    [group] = published(out).metrics_alert_rules["groups"]
    [rule] = group["rules"]
    assert rule["labels"] == {
        "severity": "warning",
        "juju_model": "prod",
        "juju_model_uuid": MODEL.uuid,
        "juju_application": "tiny",
        "juju_charm": "tiny",
    }
    matchers = f'juju_model_uuid="{MODEL.uuid}",juju_application="tiny"'
    assert rule["expr"] == (
        f'max by (x) (tiny_up{{{matchers},job="a"}}) == 0 or absent(tiny_up{{{matchers}}})'
    )


def test_a_bad_rule_file_publishes_nothing_and_says_which_file(tmp_path: Path, caplog):
    write_rules(tmp_path, "groups: not-a-list\n")
    relation = cos_relation()
    ctx = tiny_context(tmp_path)
    out = ctx.run(
        ctx.on.relation_joined(relation), testing.State(relations=[relation], model=MODEL)
    )
    assert CONFIG_KEY not in out.get_relations("cos-agent")[0].local_unit_data
    assert "tiny.rules must be a Prometheus/Loki rule file" in caplog.text


def test_rules_changed_by_an_upgrade_are_published_again(tmp_path: Path):
    write_rules(tmp_path, RULES)
    relation = cos_relation()
    ctx = tiny_context(tmp_path)
    first = ctx.run(ctx.on.relation_joined(relation), testing.State(relations=[relation]))
    write_rules(tmp_path, RULES.replace("TinyDown", "TinyGone"))
    second = ctx.run(ctx.on.upgrade_charm(), first)
    [group] = published(second).metrics_alert_rules["groups"]
    assert [rule["alert"] for rule in group["rules"]] == ["TinyGone"]


def test_inject_matchers_leaves_other_metrics_and_label_lists_alone():
    expr = 'sum by (tiny_label) (tiny_a) / on (cluster) other_metric{a="tiny_b"}'
    assert inject_matchers(expr, "tiny_", 'm="1"') == (
        'sum by (tiny_label) (tiny_a{m="1"}) / on (cluster) other_metric{a="tiny_b"}'
    )


def test_the_encoded_dashboard_is_the_file(tmp_path: Path):
    dashboards = tmp_path / "src" / "grafana_dashboards"
    dashboards.mkdir(parents=True)
    (dashboards / "d.json").write_text(json.dumps({"uid": "x", "panels": []}))
    relation = cos_relation()
    ctx = tiny_context(tmp_path)
    out = ctx.run(ctx.on.relation_joined(relation), testing.State(relations=[relation]))
    assert [decode_dashboard(d) for d in published(out).dashboards] == [{"uid": "x", "panels": []}]
