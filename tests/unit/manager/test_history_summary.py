"""History records keep a summary of a job's selection, never the lists themselves.

A logical backup of 256 databases and 256 tables used to copy both lists into its record,
and the history keeps 200 records in the peer databag. The record now says how many names
were picked and shows the first few, so a record, and the whole history, stays bounded.
"""

from __future__ import annotations

import json

from backup_manager import history
from database_backup.interface import (
    BackupKind,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
)

DATABASES = tuple(f"{n:03d}".ljust(64, "d") for n in range(256))
TABLES = tuple(f"{n:03d}".ljust(64, "s") + "." + "t" * 64 for n in range(256))
# The largest record a job can make: every text at its bound on the wire.
RECORD_BOUND = 7 * 1024


def _largest_job(n: int = 0) -> JobRequest:
    return JobRequest(
        job_id=f"backup-20261122T071500Z-{n:06x}".ljust(128, "x"),
        job_type=JobType.BACKUP,
        storage=StorageConfig(bucket="b" * 63, credentials_secret_id="secret:" + "s" * 20),
        backup_kind=BackupKind.LOGICAL,
        databases=DATABASES,
        tables=TABLES,
        description="x" * 500,
        artefact_path="p" * 2048,
        requested_at="2026-11-22T07:15:00Z",
    )


def _largest_record(n: int = 0) -> history.Record:
    job = _largest_job(n)
    record = history.from_request(job, "a" * 128, "l" * 128, scheduled=True)
    status = JobStatus.for_request(
        job,
        JobState.ERROR,
        message="m" * 2000,
        unit="u" * 128 + "/0",
        phase="p" * 64,
        started_at="2026-11-22T07:15:00Z",
        finished_at="2026-11-22T07:16:00Z",
        backup_id="b" * 128,
        size_bytes=2**62,
    )
    history.apply_status(record, status)
    return record


def test_a_record_names_how_many_were_picked_and_the_first_few():
    record = history.from_request(_largest_job(), "db", "main")
    data = record.to_json()
    assert "databases" not in data
    assert "tables" not in data
    assert data["selection"] == (
        f"256 databases: {', '.join(DATABASES[:3])} and 253 more; "
        f"256 tables: {', '.join(TABLES[:3])} and 253 more"
    )


def test_a_small_selection_is_shown_whole():
    job = JobRequest(
        job_id="j1",
        job_type=JobType.RESTORE,
        storage=StorageConfig(bucket="bucket"),
        backup_id="20261122T071500Z-0001",
        databases=("shop",),
        tables=("crm.people", "crm.deals"),
    )
    record = history.from_request(job, "db", "main")
    assert record.selection == "1 database: shop; 2 tables: crm.people, crm.deals"


def test_a_record_without_a_selection_has_none():
    job = JobRequest(job_id="j1", job_type=JobType.BACKUP, storage=StorageConfig(bucket="bucket"))
    assert "selection" not in history.from_request(job, "db", "main").to_json()


def test_the_largest_record_is_bounded():
    size = len(json.dumps(_largest_record().to_json(), separators=(",", ":")))
    assert size <= RECORD_BOUND, size


def test_the_largest_history_is_bounded():
    records = [_largest_record(n) for n in range(history.MAX_RECORDS + 50)]
    text = history.dump(records)
    assert len(json.loads(text)) == history.MAX_RECORDS
    assert len(text) <= history.MAX_RECORDS * RECORD_BOUND, len(text)


def test_a_stored_record_with_lists_loads_as_a_summary():
    """Records written by earlier revisions carry the lists: the next save drops them."""
    stored = {
        "job-id": "j1",
        "type": "backup",
        "kind": "logical",
        "status": "success",
        "databases": ["shop"],
        "tables": [f"shop.t{n}" for n in range(900)],
    }
    (record,) = history.load(json.dumps([stored]))
    assert (
        record.selection == "1 database: shop; 900 tables: shop.t0, shop.t1, shop.t2 and 897 more"
    )
    dumped = json.loads(history.dump([record]))[0]
    assert "databases" not in dumped
    assert "tables" not in dumped


def test_stored_lists_of_the_wrong_type_stay_as_they_were():
    stored = {"job-id": "j1", "databases": "shop", "tables": [1, 2]}
    (record,) = history.load(json.dumps([stored]))
    assert record.selection is None
    assert record.extra == {"databases": "shop", "tables": [1, 2]}
