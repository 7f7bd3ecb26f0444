"""The history record is typed, and its databag form is the one earlier charms wrote."""

from __future__ import annotations

import json

from backup_manager import history

# A history as earlier revisions of the charm stored it (one item per way a record is made),
# plus a key no revision knows and a known key with a type it should not have.
STORED = [
    {
        "app": "db",
        "artefact-path": "db/20261122T071500Z-0001",
        "backup-id": "20261122T071500Z-0001",
        "selection": "1 database: shop",
        "finished-at": "2026-11-22T07:20:00Z",
        "job-id": "j1",
        "kind": "logical",
        "location": "main",
        "message": "done",
        "phase": "upload",
        "progress": "100% (1.0 KiB of 1.0 KiB)",
        "requested-at": "2026-11-22T07:15:00Z",
        "scheduled": True,
        "size": 1024,
        "started-at": "2026-11-22T07:15:02Z",
        "status": "success",
        "type": "backup",
        "unit": "db/0",
    },
    {
        "app": "db",
        "backup-id": "20261123T010000Z-0002",
        "job-id": "copy-20261123T010000Z-abc123",
        "location": "dr",
        "message": "copying main:20261122T071500Z-0001 to dr",
        "requested-at": "2026-11-23T01:00:00Z",
        "size": 1024,
        "source-backup-id": "20261122T071500Z-0001",
        "source-location": "main",
        "status": "copying",
        "type": "copy",
    },
    {"job-id": "j3", "retried-by": "j4", "status": "error", "future-key": {"a": 1}},
    {"job-id": "j4", "retry-of": "j3", "status": "requested", "size": "big"},
]


def test_a_stored_history_loads_into_records_and_dumps_unchanged():
    text = json.dumps(STORED, sort_keys=True, separators=(",", ":"))
    records = history.load(text)
    assert [r.job_id for r in records] == ["j1", "copy-20261123T010000Z-abc123", "j3", "j4"]
    assert records[0].selection == "1 database: shop"
    assert records[0].size == 1024
    assert records[2].retried_by == "j4"
    assert records[3].retry_of == "j3"
    assert records[3].size is None  # a size that is not an int stays as it was, untyped
    assert history.dump(records) == text


def test_items_without_a_job_id_are_dropped_on_load():
    text = json.dumps([{"status": "success"}, "junk", {"job-id": ""}, {"job-id": "ok"}])
    assert [r.job_id for r in history.load(text)] == ["ok"]
