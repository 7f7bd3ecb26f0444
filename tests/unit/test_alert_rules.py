"""The shipped alert rules, checked and run by promtool on the exporter's real output.

Each Prometheus alert gets a `promtool test rules` case built from the state it describes:
snapshots of that state, one per evaluation step, rendered by the exporter
(`backup_manager.exporter.metrics.render`) and parsed back with prometheus_client's text
parser into promtool's input series, so the rules and the exporter cannot drift apart. A
healthy cluster's series must leave every alert silent. promtool comes from Debian's
`prometheus` package (scripts/install-system-deps.sh): in CI its absence fails the tests.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from backup_manager.exporter.metrics import (
    ClusterSettings,
    JobHealth,
    LocationHealth,
    Snapshot,
    render,
)
from backup_manager.exporter.sources import read_catalog
from database_backup import joblog
from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.interface import format_time
from tests.unit.catalog.memstore import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "src" / "prometheus_alert_rules"
LOKI_RULES = ROOT / "src" / "loki_alert_rules"
CLUSTER = "6f1c0b5e-1d2a-4c3b-9e8f-0a1b2c3d4e5f/mysql"
T0 = 1_800_000_000.0  # the series' time 0 (promtool starts every test at 0)
HOUR = 3600.0
DAY = 86400.0


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("promtool is missing: run scripts/install-system-deps.sh (Debian prometheus)")
    pytest.skip("promtool is not installed here (Debian prometheus); CI installs it")


def rule_files() -> list[Path]:
    files = sorted(RULES_DIR.glob("*.rules"))
    assert files, f"no rule file in {RULES_DIR}"
    return files


def alert_rules() -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules[rule["alert"]] = rule
    return rules


# -- the states -------------------------------------------------------------------------


def healthy(now: float, **changes: Any) -> LocationHealth:
    """A cluster whose backups, shipping, drills and catalog are all fine at `now`."""
    health = LocationHealth(
        cluster=CLUSTER,
        location="",
        catalog_up=True,
        last_complete_at=now - 2 * HOUR,
        last_duration_seconds=600.0,
        last_size_bytes=5 * 2**30,
        complete_backups=7,
        storage_bytes=40 * 2**30,
        binlog_last_event_at=now - 20,
        drill_passed=True,
        drill_checked_at=now - 6 * HOUR,
    )
    return dataclasses.replace(health, **changes)


SETTINGS = (
    ClusterSettings(CLUSTER, binlog_max_lag_seconds=60.0, schedule_max_interval_seconds=DAY),
)


def snapshot(
    now: float,
    location: LocationHealth,
    jobs: tuple[JobHealth, ...] = (),
) -> Snapshot:
    jobs = jobs or (
        JobHealth(CLUSTER, "backup", last_failed=False),
        JobHealth(CLUSTER, "restore", last_failed=False),
        JobHealth(CLUSTER, "drill", last_failed=False),
    )
    return Snapshot(now=now, locations=(location,), jobs=jobs, clusters=SETTINGS)


State = Callable[[float], Snapshot]

STATES: dict[str, State] = {
    "healthy": lambda now: snapshot(now, healthy(now)),
    # the last complete backup finished two days before the series start: it only ages
    "DatabaseBackupTooOld": lambda now: snapshot(now, healthy(now, last_complete_at=T0 - 2 * DAY)),
    "DatabaseBackupNoneComplete": lambda now: snapshot(
        now,
        healthy(
            now,
            complete_backups=0,
            last_complete_at=None,
            last_duration_seconds=None,
            last_size_bytes=None,
        ),
    ),
    # shipping stopped at the series start: the lag grows past the 60 s limit
    "DatabaseBackupBinlogLagHigh": lambda now: snapshot(
        now, healthy(now, binlog_last_event_at=T0)
    ),
    # a drill checked and failed: its job failed too, yet only the drill alert fires
    "DatabaseBackupDrillFailed": lambda now: snapshot(
        now,
        healthy(now, drill_passed=False),
        (
            JobHealth(CLUSTER, "backup", last_failed=False),
            JobHealth(CLUSTER, "drill", failed_at=(now - HOUR,), last_failed=True),
        ),
    ),
    # a drill that never checked (refused for disk space, say): the last verdict stays a
    # pass, so the failed drill job is what says so
    "DatabaseBackupJobFailed refused drill": lambda now: snapshot(
        now,
        healthy(now),
        (
            JobHealth(CLUSTER, "backup", last_failed=False),
            JobHealth(CLUSTER, "drill", failed_at=(now - HOUR,), last_failed=True),
        ),
    ),
    "DatabaseBackupJobFailed": lambda now: snapshot(
        now,
        healthy(now),
        (
            JobHealth(CLUSTER, "backup", failed_at=(now - HOUR,), last_failed=True),
            JobHealth(CLUSTER, "drill", last_failed=False),
        ),
    ),
    # the cross-region copy of the newest backup failed: the disaster-recovery copy is missing
    "DatabaseBackupJobFailed failed copy": lambda now: snapshot(
        now,
        healthy(now),
        (
            JobHealth(CLUSTER, "backup", last_failed=False),
            JobHealth(CLUSTER, "copy", failed_at=(now - HOUR,), last_failed=True),
        ),
    ),
    # the exporter knows nothing but that the read failed
    "DatabaseBackupCatalogUnreadable": lambda now: snapshot(
        now, LocationHealth(cluster=CLUSTER, location="", catalog_up=False)
    ),
}

# (evaluation time, step) per alert: long enough for its `for:`
TIMING = {"DatabaseBackupNoneComplete": ("26h", 300)}  # steps within the 5m lookback
DEFAULT_TIMING = ("40m", 300)


def _seconds(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"m": 60, "h": 3600}[unit]


def input_series(state: State, eval_time: str, step: int) -> list[dict[str, str]]:
    """The exporter's output for `state` at each step, as promtool input series."""
    steps = _seconds(eval_time) // step + 1
    samples: dict[str, list[str]] = {}
    for index in range(steps):
        text = render(state(T0 + index * step))
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}"
                samples.setdefault(key, ["_"] * steps)[index] = repr(float(sample.value))
    return [{"series": key, "values": " ".join(values)} for key, values in samples.items()]


_TEMPLATE = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


def expected_alert(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """The alert promtool must see: the rule's labels and its annotations filled in."""
    rule = alert_rules()[name]
    present = {k: v for k, v in labels.items() if v}
    annotations = {
        key: _TEMPLATE.sub(lambda m: labels.get(m.group(1), ""), value)
        for key, value in rule["annotations"].items()
    }
    return {"exp_labels": {**present, **rule["labels"]}, "exp_annotations": annotations}


def alert_of(state: str) -> str:
    """The alert a state fires: its name's first word."""
    return state.split(" ")[0]


def firing_labels(state: str) -> dict[str, str]:
    if state == "DatabaseBackupJobFailed":
        return {"cluster": CLUSTER, "job_type": "backup"}
    if state == "DatabaseBackupJobFailed refused drill":
        return {"cluster": CLUSTER, "job_type": "drill"}
    if state == "DatabaseBackupJobFailed failed copy":
        return {"cluster": CLUSTER, "job_type": "copy"}
    return {"cluster": CLUSTER, "location": ""}


def run_promtool(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    document = {
        "rule_files": [str(path) for path in rule_files()],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    test_file = tmp_path / "alerts.test.yaml"
    test_file.write_text(yaml.safe_dump(document, sort_keys=False, width=10_000))
    return subprocess.run(
        [promtool(), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def case(state: str, eval_time: str, step: int, firing: bool) -> dict[str, Any]:
    """A promtool test: `state`'s series; only its alert (if `firing`) fires at `eval_time`."""
    checks = [
        {
            "eval_time": eval_time,
            "alertname": name,
            "exp_alerts": [expected_alert(name, firing_labels(state))]
            if firing and name == alert_of(state)
            else [],
        }
        for name in alert_rules()
    ]
    return {
        "name": f"{state} at {eval_time}",
        "interval": f"{step}s",
        "input_series": input_series(STATES[state], eval_time, step),
        "alert_rule_test": checks,
    }


# -- the tests --------------------------------------------------------------------------


def test_promtool_check_rules_says_success():
    result = subprocess.run(
        [promtool(), "check", "rules", *map(str, rule_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_state_that_fires_it():
    assert set(alert_rules()) == {alert_of(state) for state in STATES} - {"healthy"}


def test_every_alert_says_what_to_do():
    for name, rule in alert_rules().items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        assert "juju run" in rule["annotations"]["description"], name


def test_the_rules_name_only_metrics_the_exporter_renders():
    everything = render(
        Snapshot(
            now=T0,
            locations=(healthy(T0),),
            jobs=(JobHealth(CLUSTER, "backup", failed_at=(T0,), last_failed=True),),
            clusters=SETTINGS,
        )
    )
    rendered = {family.name for family in text_string_to_metric_families(everything)}
    for name, rule in alert_rules().items():
        used = set(re.findall(r"\bdatabase_backup_\w+", rule["expr"]))
        assert used, name
        assert used <= rendered, f"{name} uses {used - rendered}"


def test_a_healthy_cluster_fires_no_alert(tmp_path: Path):
    tests = [case("healthy", "40m", 300, False), case("healthy", "26h", 300, False)]
    result = run_promtool(tmp_path, tests)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("state", sorted(set(STATES) - {"healthy"}))
def test_each_alert_fires_from_the_state_it_describes_and_no_other(tmp_path: Path, state: str):
    eval_time, step = TIMING.get(state, DEFAULT_TIMING)
    result = run_promtool(tmp_path, [case(state, eval_time, step, True)])
    assert result.returncode == 0, result.stdout + result.stderr


def idle_but_caught_up(now: float) -> Snapshot:
    """A database nobody wrote to for two days whose shipper confirms it is caught up.

    The lag comes from the exporter's own catalog read: binlogs whose newest event is two
    days old, and the shipper's caught-up record refreshed every 30 s (half the limit).
    """

    def moment(seconds: float) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)

    store, timeline = MemoryStore(), "20261101T000000Z-aaaa"
    index = BinlogCatalog(Catalog(store, CLUSTER))
    store.put_bytes(index.object_key(timeline, "bin.000008.zst"), b"binlog")
    index.write_entry(
        BinlogEntry(
            name="bin.000008",
            timeline=timeline,
            object_name="bin.000008.zst",
            raw_size=100,
            stored_size=6,
            sha256="0" * 64,
            compression="zstd",
            encrypted=False,
            created_at=moment(T0 - 2 * DAY - 60),
            last_event_at=moment(T0 - 2 * DAY),
        )
    )
    record = {
        "format-version": 1,
        "caught-up-at": format_time(moment(now - (now - T0) % 30 - 15)),
        "timeline": timeline,
        "position": {"file": "bin.000009", "offset": 385},
        "unit": "mysql/0",
    }
    store.put_bytes(f"{CLUSTER}/binlogs/shipping.json", json.dumps(record).encode())
    read = read_catalog(store, CLUSTER, "", shipping=True)
    return snapshot(now, healthy(now, binlog_last_event_at=read.binlog_last_event_at))


def test_an_idle_database_whose_shipper_is_caught_up_fires_no_alert(tmp_path: Path):
    idle = {
        "name": "idle but caught up",
        "interval": "60s",
        "input_series": input_series(idle_but_caught_up, "40m", 60),
        "alert_rule_test": [
            {"eval_time": "40m", "alertname": name, "exp_alerts": []} for name in alert_rules()
        ],
    }
    result = run_promtool(tmp_path, [idle])
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_alert_held_by_for_does_not_fire_before_its_time(tmp_path: Path):
    # shipping stopped at 0 with a 60 s limit: over the limit from about 1m, firing after
    # 10 more minutes; at 5m it is pending, not firing
    pending = case("DatabaseBackupBinlogLagHigh", "5m", 60, False)
    result = run_promtool(tmp_path, [pending])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_fails_the_promtool_test(tmp_path: Path):
    """The harness can fail: an alert expected from the healthy state is reported missing."""
    wrong = case("healthy", "40m", 300, False)
    wrong["alert_rule_test"][0]["exp_alerts"] = [
        expected_alert("DatabaseBackupTooOld", firing_labels("DatabaseBackupTooOld"))
    ]
    result = run_promtool(tmp_path, [wrong])
    assert result.returncode != 0
    assert "DatabaseBackupTooOld" in result.stdout + result.stderr


# -- Loki rules on the job log lines ----------------------------------------------------


def loki_rules() -> list[dict[str, Any]]:
    files = sorted(LOKI_RULES.glob("*.rules"))
    assert files, f"no Loki rule file in {LOKI_RULES}"
    rules: list[dict[str, Any]] = []
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def test_the_loki_rules_filter_the_error_lines_the_job_log_writes():
    error = joblog.JobLine.error("j", "backup", "full", CLUSTER, message="boom").render()
    end = joblog.JobLine.end("j", "backup", "full", CLUSTER).render()
    for rule in loki_rules():
        filters = re.findall(r'\|= "([^"]+)"', rule["expr"])
        assert filters, rule["alert"]
        assert all(text in error for text in filters), rule["alert"]
        assert not all(text in end for text in filters), rule["alert"]
        assert "{%%juju_topology%%}" in rule["expr"], rule["alert"]  # scoped to the model
        assert "juju run" in rule["annotations"]["description"], rule["alert"]
