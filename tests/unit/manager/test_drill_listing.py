"""Drills in the listings: VERIFIED in list-backups, KIND drill in list-jobs."""

from __future__ import annotations

import json

from database_backup.catalog import Catalog
from database_backup.interface import JobState, JobStatus

from .fakes import FakeS3, add_backup
from .helpers import cluster, db_relation, s3_relation, state
from .test_actions import run_action
from .test_drill_status import BACKUP, REASON, drill, failed

OTHER = "20261122T010000Z-0003"


def test_list_backups_shows_when_each_backup_was_verified_and_how(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), BACKUP, hours_ago=48)
    add_backup(bucket, cluster(), OTHER, hours_ago=24)
    Catalog(bucket, cluster()).write_verification(
        BACKUP,
        {
            "backup-id": BACKUP,
            "result": "pass",
            "checked-at": "2026-11-22T03:00:00Z",
            "duration-seconds": 41.5,
            "tables-checked": 12,
            "job-id": "drill-1",
            "unit": "mysql/0",
        },
    )
    rel, secret = s3_relation()

    results, _ = run_action("list-backups", state(rel, db_relation(), secrets=[secret]))

    header, _, *lines = results["table"].splitlines()
    assert "VERIFIED" in header.split()
    column = header.index("VERIFIED")
    verified = {line.split()[0]: line[column:].split()[:2] for line in lines}
    assert verified[BACKUP] == ["2026-11-22T03:00:00Z", "pass"]
    assert verified[OTHER][0] == "-"
    rows = {row["backup-id"]: row for row in json.loads(results["json"])}
    assert rows[BACKUP]["verification"]["tables-checked"] == 12
    assert rows[OTHER]["verified"] == ""


def test_list_jobs_shows_a_drill_with_kind_drill_the_backup_and_the_reason(s3: FakeS3):
    job = drill("drill-1")
    db = db_relation(statuses=[failed(job, "2026-11-22T01:30:00Z")], jobs=[job])
    rel, secret = s3_relation()

    results, _ = run_action("list-jobs", state(rel, db, secrets=[secret]))

    header, _, line = results["table"].splitlines()
    cells = dict(zip(header.split(), line.split()[:7], strict=False))
    assert cells["TYPE"] == "drill"
    assert cells["KIND"] == "drill"
    assert cells["BACKUP"] == BACKUP
    assert cells["STATUS"] == "error"
    assert REASON[:40] in line
    (row,) = json.loads(results["json"])
    assert row["drill-of"] == BACKUP
    assert row["verification"]["reason"] == REASON


def test_a_running_drill_shows_its_phase_in_list_jobs(s3: FakeS3):
    job = drill("drill-1")
    running = JobStatus.for_request(job, JobState.RUNNING, phase="drill-checking")
    db = db_relation(statuses=[running], jobs=[job])
    rel, secret = s3_relation()

    results, _ = run_action("list-jobs", state(rel, db, secrets=[secret]))

    assert "drill-checking" in results["table"]
