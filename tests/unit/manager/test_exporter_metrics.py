"""The exporter's exposition text, parsed back with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backup_manager.exporter.metrics import (
    ClusterSettings,
    JobHealth,
    LocationHealth,
    Snapshot,
    render,
)

NOW = 1_800_000_000.0
CLUSTER = "0b6c3f52-8a1e-4c55-9d0b-5f0a1e2d3c4b/mysql"
PREFIX = "database_backup_"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text: (name, sorted labels) -> value, through the real parser."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, f"duplicate sample {key}"
            found[key] = sample.value
    return found


def names(text: str) -> set[str]:
    return {name for name, _ in samples(text)}


def healthy() -> Snapshot:
    return Snapshot(
        now=NOW,
        locations=(
            LocationHealth(
                cluster=CLUSTER,
                location="",
                catalog_up=True,
                last_complete_at=NOW - 3600,
                last_duration_seconds=42.5,
                last_size_bytes=123_456,
                complete_backups=3,
                storage_bytes=999_999,
                binlog_last_event_at=NOW - 12,
                drill_passed=True,
                drill_checked_at=NOW - 7200,
            ),
        ),
        jobs=(
            JobHealth(CLUSTER, "backup", failed_at=(NOW - 60, NOW - 90_000), last_failed=False),
            JobHealth(CLUSTER, "restore"),
            JobHealth(CLUSTER, "drill", failed_at=(NOW - 10,), last_failed=True),
        ),
        clusters=(
            ClusterSettings(
                CLUSTER, binlog_max_lag_seconds=60, schedule_max_interval_seconds=86400
            ),
        ),
    )


def loc(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"cluster": CLUSTER, "location": "", **extra}.items()))


def job(job_type: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"cluster": CLUSTER, "job_type": job_type}.items()))


CLUSTER_ONLY = (("cluster", CLUSTER),)


def test_every_metric_of_a_healthy_cluster_with_its_value():
    found = samples(render(healthy()))

    assert found == {
        (PREFIX + "last_complete_timestamp_seconds", loc()): NOW - 3600,
        (PREFIX + "last_complete_age_seconds", loc()): 3600,
        (PREFIX + "last_duration_seconds", loc()): 42.5,
        (PREFIX + "last_size_bytes", loc()): 123_456,
        (PREFIX + "complete_backups", loc()): 3,
        (PREFIX + "storage_bytes", loc()): 999_999,
        (PREFIX + "binlog_lag_seconds", loc()): 12,
        (PREFIX + "drill_last_success", loc()): 1,
        (PREFIX + "drill_last_timestamp_seconds", loc()): NOW - 7200,
        (PREFIX + "drill_last_age_seconds", loc()): 7200,
        (PREFIX + "catalog_up", loc()): 1,
        # one failure of the backups within the day, the other is older
        (PREFIX + "failed_jobs_last_day", job("backup")): 1,
        (PREFIX + "failed_jobs_last_day", job("restore")): 0,
        (PREFIX + "failed_jobs_last_day", job("drill")): 1,
        (PREFIX + "last_job_failed", job("backup")): 0,
        (PREFIX + "last_job_failed", job("drill")): 1,
        (PREFIX + "binlog_lag_limit_seconds", CLUSTER_ONLY): 60,
        (PREFIX + "schedule_max_interval_seconds", CLUSTER_ONLY): 86400,
    }


def test_a_cluster_with_nothing_yet_has_only_what_is_known():
    """No backup, no shipping, no drill, no schedule, no finished job: absent, not zero."""
    snapshot = Snapshot(
        now=NOW,
        locations=(
            LocationHealth(CLUSTER, "", catalog_up=True, complete_backups=0, storage_bytes=0),
        ),
        jobs=(JobHealth(CLUSTER, "backup"),),
        clusters=(ClusterSettings(CLUSTER),),
    )

    found = samples(render(snapshot))

    assert found == {
        (PREFIX + "complete_backups", loc()): 0,
        (PREFIX + "storage_bytes", loc()): 0,
        (PREFIX + "catalog_up", loc()): 1,
        (PREFIX + "failed_jobs_last_day", job("backup")): 0,
    }


def test_a_failed_drill_is_zero_and_an_unreadable_catalog_is_down():
    snapshot = Snapshot(
        now=NOW,
        locations=(
            LocationHealth(
                CLUSTER, "", catalog_up=True, drill_passed=False, drill_checked_at=NOW - 5
            ),
            LocationHealth(CLUSTER, "region-b", catalog_up=False),
        ),
    )

    found = samples(render(snapshot))

    assert found[(PREFIX + "drill_last_success", loc())] == 0
    assert found[(PREFIX + "drill_last_age_seconds", loc())] == 5
    assert found[(PREFIX + "catalog_up", loc(location="region-b"))] == 0
    assert {key for key in found if key[1] == loc(location="region-b")} == {
        (PREFIX + "catalog_up", loc(location="region-b"))
    }


def test_ages_never_go_negative_when_the_clock_is_behind_storage():
    snapshot = Snapshot(
        now=NOW,
        locations=(LocationHealth(CLUSTER, "", catalog_up=True, last_complete_at=NOW + 30),),
    )

    found = samples(render(snapshot))

    assert found[(PREFIX + "last_complete_age_seconds", loc())] == 0


def test_labels_with_quotes_and_backslashes_survive_the_round_trip():
    odd = 'we"ird\\app\nname'
    snapshot = Snapshot(now=NOW, locations=(LocationHealth(odd, "s3-b", catalog_up=True),))

    found = samples(render(snapshot))

    key = (PREFIX + "catalog_up", tuple(sorted({"cluster": odd, "location": "s3-b"}.items())))
    assert found == {key: 1}


def test_an_empty_snapshot_renders_no_sample():
    assert names(render(Snapshot(now=NOW))) == set()


def test_an_unknown_job_type_is_refused():
    with pytest.raises(ValueError, match="job type 'retention'"):
        JobHealth(CLUSTER, "retention")
