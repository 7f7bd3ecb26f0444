"""Cross-region copies between two buckets of two RGW users, on the job runner.

The copy runs as a real job of `database_backup.jobs` (a detached worker here: no systemd),
whose engine is `backup_manager.copy_worker`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ops import testing

from backup_manager import copying
from database_backup.catalog import BackupMetadata, Catalog
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3, S3User
from tests.unit.manager.helpers import cluster, context, db_relation, history_of, state

from .manager_helpers import (
    fail_action,
    location_relation,
    private_paths,  # noqa: F401 - autouse fixture
    put_backup,
    run_action,
)

FULL, INCR = "20261120T010000Z-aaaa", "20261121T010000Z-bbbb"


def wait_for_result(state_dir: Path, copy_id: str, timeout: float = 60) -> dict:
    """The copy job's outcome once its worker ended (lock released, end recorded)."""
    local = copying.local_job(state_dir, copy_id)
    assert local is not None, f"no job for copy {copy_id}"
    deadline = time.monotonic() + timeout
    while local.finished_record() is None or local.is_locked():
        assert time.monotonic() < deadline, f"copy {copy_id} did not finish in {timeout} s"
        time.sleep(0.1)
    outcome = local.outcome()
    assert not local.spec_path.exists(), "the spec (credentials) outlived the worker"
    return {"status": outcome.status, "message": outcome.message, "result": outcome.result}


def two_regions(
    ceph: CephS3, bucket: str, region_b: tuple[str, S3User]
) -> tuple[S3Storage, S3Storage, testing.State]:
    """region-a: the fixture's bucket (admin user); region-b: another user's bucket."""
    bucket_b, user_b = region_b
    rel_a, sec_a = location_relation(ceph, "region-a", bucket)
    rel_b, sec_b = location_relation(ceph, "region-b", bucket_b, user=user_b, path="dr")
    st = state(
        rel_a,
        rel_b,
        db_relation(),
        secrets=[sec_a, sec_b],
        config={"backup-location": "region-a"},
    )
    store_a = S3Storage(ceph.s3_config(bucket, path="backups"))
    store_b = S3Storage(ceph.s3_config(bucket_b, path="dr", user=user_b))
    return store_a, store_b, st


def test_copy_to_another_region_runs_detached_and_is_verified(
    ceph: CephS3, bucket: str, region_b: tuple[str, S3User]
):
    store_a, store_b, st = two_regions(ceph, bucket, region_b)
    meta = put_backup(store_a, cluster(), FULL, hours_ago=48, size=3 << 20)
    results, out = run_action(st, "copy-backup", **{"backup-id": FULL, "to": "region-b"})
    assert results["status"] == "copying"
    assert results["location"] == "region-b"
    assert results["size"] == "3.0 MiB"
    new_id = results["backup-id"]
    assert new_id != FULL
    result = wait_for_result(copying.STATE_DIR, results["job-id"])
    assert result["status"] == "success", result
    # binlogs by default; this backup has no binlog position (tests/workload/test_copy_pitr.py
    # copies real ones and recovers from them)
    assert result["message"].endswith("; no binary logs: the backup recorded no binlog position")
    assert not list(copying.STATE_DIR.rglob("spec.json")), "the spec (credentials) was left"
    status = json.loads(store_b.get_bytes(f"{cluster()}/backups/{new_id}/copy.json"))
    assert (status["status"], status["copy-id"]) == ("success", results["job-id"])

    ctx = context()
    out = ctx.run(ctx.on.update_status(), out)  # the next hook picks the result up
    record = next(r for r in history_of(out) if r["job-id"] == results["job-id"])
    assert record["status"] == "success"
    assert record["type"] == "copy"
    assert record["size"] == meta.stored_size

    copied = Catalog(store_b, cluster()).read_metadata(new_id)
    assert copied.sha256 == meta.sha256
    assert copied.extra["copied-from"]["location"] == "region-a"
    assert copied.extra["copied-from"]["backup-id"] == FULL
    data = store_b.get_bytes(Catalog(store_b, cluster()).artefact_key(new_id, "data.xbstream.zst"))
    assert hashlib.sha256(data).hexdigest() == meta.sha256

    listing, _ = run_action(out, "list-backups", location="region-b")
    rows = json.loads(listing["json"])
    assert [(r["backup-id"], r["copied-from"]) for r in rows] == [(new_id, f"region-a:{FULL}")]


def test_bring_a_backup_from_another_region_into_this_one(
    ceph: CephS3, bucket: str, region_b: tuple[str, S3User]
):
    store_a, store_b, st = two_regions(ceph, bucket, region_b)
    meta = put_backup(store_b, cluster(), FULL, hours_ago=48)
    put_backup(store_b, cluster(), INCR, hours_ago=24, kind="incremental", parent=FULL)
    message = fail_action(st, "copy-backup", **{"backup-id": INCR, "from": "region-b"})
    assert f"copy {FULL} first" in message
    results, out = run_action(st, "copy-backup", **{"backup-id": FULL, "from": "region-b"})
    assert results["location"] == "region-a"  # default destination: backup-location
    assert wait_for_result(copying.STATE_DIR, results["job-id"])["status"] == "success"
    incr, _ = run_action(out, "copy-backup", **{"backup-id": INCR, "from": "region-b"})
    assert wait_for_result(copying.STATE_DIR, incr["job-id"])["status"] == "success"
    local = Catalog(store_a, cluster())
    copied_incr = local.read_metadata(incr["backup-id"])
    assert copied_incr.parent_id == results["backup-id"]  # the chain is rebuilt locally
    assert local.read_metadata(results["backup-id"]).sha256 == meta.sha256
    message = fail_action(st, "copy-backup", **{"backup-id": FULL, "from": "region-b"})
    assert "was already copied" in message


def test_a_copy_that_does_not_match_its_checksum_is_deleted(
    ceph: CephS3, bucket: str, region_b: tuple[str, S3User]
):
    store_a, store_b, st = two_regions(ceph, bucket, region_b)
    meta = put_backup(store_a, cluster(), FULL, hours_ago=48)
    tampered = BackupMetadata.from_dict({**meta.to_dict(), "sha256": "0" * 64})
    store_a.put_bytes(
        Catalog(store_a, cluster()).backup_prefix(FULL) + "backup.json",
        json.dumps(tampered.to_dict()).encode(),
    )
    results, out = run_action(st, "copy-backup", **{"backup-id": FULL, "to": "region-b"})
    result = wait_for_result(copying.STATE_DIR, results["job-id"])
    assert result["status"] == "error"
    assert "does not match its checksum" in result["message"]
    out = context().run(context().on.update_status(), out)
    record = next(r for r in history_of(out) if r["job-id"] == results["job-id"])
    assert record["status"] == "error"
    assert "does not match its checksum" in record["message"]
    # the failed copy's status object, kept for another leader, goes once recorded
    assert Catalog(store_b, cluster()).list_backups(include_incomplete=True) == []
