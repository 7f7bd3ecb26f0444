"""The shipped Grafana dashboard: only the exporter's metrics, COS datasource variables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backup_manager.exporter.metrics import (
    ClusterSettings,
    JobHealth,
    LocationHealth,
    Snapshot,
    render,
)

DASHBOARD = (
    Path(__file__).resolve().parents[3] / "src" / "grafana_dashboards" / "backup-health.json"
)
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "inf", "nan",
}  # fmt: skip


def exporter_metrics() -> set[str]:
    """Every metric name the exporter renders when everything is known (C5)."""
    now = 1_800_000_000.0
    snapshot = Snapshot(
        now=now,
        locations=(
            LocationHealth(
                cluster="c",
                location="",
                catalog_up=True,
                last_complete_at=now - 60,
                last_duration_seconds=1.0,
                last_size_bytes=1,
                complete_backups=1,
                storage_bytes=1,
                binlog_last_event_at=now - 1,
                drill_passed=True,
                drill_checked_at=now - 1,
            ),
        ),
        jobs=(JobHealth("c", "backup", failed_at=(now,), last_failed=True),),
        clusters=(ClusterSettings("c", 60.0, 86400.0),),
    )
    return {family.name for family in text_string_to_metric_families(render(snapshot))}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def targets(kind: str) -> list[tuple[str, str]]:
    """(panel title, expr) of every target whose datasource is of `kind`."""
    found: list[tuple[str, str]] = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            datasource = target.get("datasource") or panel["datasource"]
            if datasource["type"] == kind:
                found.append((panel["title"], target["expr"]))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, matchers, label lists out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in PROMQL_WORDS}


def test_metric_names_sees_a_typo():
    expr = 'max by (cluster) (database_backup_storage_byte{cluster=~"$cluster"}) * 1000'
    assert metric_names(expr) == {"database_backup_storage_byte"}


def test_every_prometheus_expression_names_only_exporter_metrics():
    known = exporter_metrics()
    exprs = targets("prometheus")
    assert len(exprs) >= 10
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, title
        assert names <= known, f"{title}: {names - known} are not rendered by the exporter"


@pytest.mark.parametrize(
    "metric",
    [
        "database_backup_last_complete_age_seconds",
        "database_backup_last_duration_seconds",
        "database_backup_last_size_bytes",
        "database_backup_failed_jobs_last_day",
        "database_backup_binlog_lag_seconds",
        "database_backup_binlog_lag_limit_seconds",
        "database_backup_drill_last_success",
        "database_backup_drill_last_age_seconds",
        "database_backup_storage_bytes",
        "database_backup_catalog_up",
    ],
)
def test_the_health_the_issue_asks_for_has_a_panel(metric: str):
    assert any(metric in metric_names(expr) for _, expr in targets("prometheus"))


def test_every_prometheus_expression_follows_the_cluster_variable():
    for title, expr in targets("prometheus"):
        assert 'cluster=~"$cluster"' in expr, title


def test_the_datasource_variables_are_the_ones_cos_fills_in():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["prometheusds"]["type"] == "datasource"
    assert variables["prometheusds"]["query"] == "prometheus"
    assert variables["lokids"]["type"] == "datasource"
    assert variables["lokids"]["query"] == "loki"
    for panel in dashboard()["panels"]:
        uids = {panel["datasource"]["uid"]} | {
            t["datasource"]["uid"] for t in panel.get("targets", [])
        }
        assert uids <= {"${prometheusds}", "${lokids}"}, panel["title"]


def test_the_cluster_variable_lists_the_exporter_clusters():
    cluster = next(v for v in dashboard()["templating"]["list"] if v["name"] == "cluster")
    assert cluster["datasource"]["uid"] == "${prometheusds}"
    match = re.fullmatch(r"label_values\((\w+), cluster\)", cluster["query"]["query"])
    assert match is not None
    assert match.group(1) in exporter_metrics()


def test_the_log_panel_shows_the_job_lines():
    [(_, expr)] = targets("loki")
    assert '|= "database-backup-job"' in expr


def test_panel_ids_are_unique():
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
