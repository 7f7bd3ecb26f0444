"""Retention out of the hook: started in a worker, the hook makes no storage request.

The worker deletes; a later hook records the outcome in the history and the summary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from backup_manager import copying, retention_worker
from database_backup.catalog import Catalog
from database_backup.interface import JobState, JobStatus
from database_backup.jobs import LocalJob

from .fakes import NOW, FakeBucket, FakeS3, add_backup
from .helpers import cluster, context, db_relation, history_of, peer, s3_relation, state
from .test_copy_and_parts import FakeStart
from .test_events import _backup_job, _restore_job, _success

IDS = [f"2026112{n}T010000Z-000{n}" for n in range(5)]
CONFIG = {"retention-min-count": 1, "retention-max-count": 2, "retention-max-age": ""}


class Requests:
    """Counts every storage request a FakeBucket serves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        for name in (
            "get_bytes",
            "put_bytes",
            "head",
            "exists",
            "list",
            "delete",
            "delete_prefix",
        ):
            original = getattr(FakeBucket, name)
            monkeypatch.setattr(FakeBucket, name, self._counted(name, original))

    def _counted(self, name: str, original: Any) -> Any:
        def counted(bucket: FakeBucket, *args: Any, **kwargs: Any) -> Any:
            self.seen.append(f"{name} {args[0] if args else ''}")
            return original(bucket, *args, **kwargs)

        return counted


@pytest.fixture
def fake_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStart]:
    fake = FakeStart()
    monkeypatch.setattr(copying, "start_worker", fake)
    yield fake
    fake.release()


def spec_of(local: LocalJob) -> dict[str, Any]:
    return json.loads(local.spec_path.read_text())


def run_worker(fake: FakeStart) -> int:
    """What the worker does: the retention engine in this process (the fake S3 is here)."""
    local = fake.started[-1]
    code = retention_worker.main(
        ["retention", "--spec", str(local.spec_path), "--state-file", str(local.state_path)]
    )
    local.finish(local.state()["status"], local.state().get("message"), exit_code=code)
    fake.release()
    return code


def backed_up(s3: FakeS3) -> tuple[testing.State, FakeBucket]:
    """Five backups (the oldest held), a backup that just succeeded, a restore running."""
    bucket = s3.bucket("bucket-a")
    for n, hours in enumerate((96, 72, 48, 24, 1)):
        add_backup(bucket, cluster(), IDS[n], hours_ago=hours)
    Catalog(bucket, cluster()).set_hold(IDS[0], NOW + timedelta(days=3))
    job = _backup_job("backup-new")
    restore = _restore_job("restore-1", IDS[1])
    db = db_relation(
        statuses=[_success(job, IDS[4]), JobStatus.for_request(restore, JobState.RUNNING)],
        jobs=[job, restore],
    )
    rel, secret = s3_relation()
    return state(rel, db, peer({"history": "[]"}), secrets=[secret], config=CONFIG), bucket


def test_the_job_finished_hook_starts_retention_in_a_worker_and_reads_no_storage(
    s3: FakeS3, fake_start: FakeStart, monkeypatch: pytest.MonkeyPatch
):
    st, bucket = backed_up(s3)
    requests = Requests(monkeypatch)
    ctx = context()
    db = next(r for r in st.relations if r.endpoint == "database-backup")

    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), st)

    assert requests.seen == []  # no catalog scan, no deletion inside the hook
    assert len(Catalog(bucket, cluster()).list_backups()) == 5
    (local,) = fake_start.started
    assert local.record.engine == "backup_manager.retention_worker"
    spec = spec_of(local)
    assert spec["targets"] == [{"app": "mysql", "cluster-id": cluster(), "location": "s3-a"}]
    assert IDS[1] in spec["protected"]  # the backup being restored
    assert spec["reindex"] is False
    assert local.spec_path.stat().st_mode & 0o777 == 0o600
    assert "SECRET-A" not in (local.dir / "job.json").read_text()
    record = next(r for r in history_of(out) if r.get("type") == "retention")
    assert record["status"] == "running"
    assert record["message"] == "after backup backup-new"


def test_the_worker_deletes_and_the_next_hook_records_what(s3: FakeS3, fake_start: FakeStart):
    st, bucket = backed_up(s3)
    ctx = context()
    db = next(r for r in st.relations if r.endpoint == "database-backup")
    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), st)

    assert run_worker(fake_start) == 0
    out = ctx.run(ctx.on.update_status(), out)

    remaining = {b.backup_id for b in Catalog(bucket, cluster()).list_backups()}
    # max-count 2 keeps the two newest; the held one and the one being restored stay too
    assert remaining == {IDS[0], IDS[1], IDS[3], IDS[4]}
    record = next(r for r in history_of(out) if r.get("type") == "retention")
    assert record["status"] == "success"
    assert record["message"] == f"deleted 1 backup: {IDS[2]}"
    assert record["deleted-count"] == 1
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.endswith("; 4 backups in storage")  # the summary


def test_a_failed_run_is_recorded_with_its_reason(s3: FakeS3, fake_start: FakeStart):
    st, bucket = backed_up(s3)
    ctx = context()
    db = next(r for r in st.relations if r.endpoint == "database-backup")
    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), st)
    bucket.denied = True

    assert run_worker(fake_start) == 1
    bucket.denied = False  # fixed since
    out = ctx.run(ctx.on.update_status(), out)

    record = next(r for r in history_of(out) if r.get("type") == "retention")
    assert record["status"] == "error"
    assert "refused the credentials" in record["message"]
    assert record["deleted-count"] == 0
    assert len(Catalog(bucket, cluster()).list_backups()) == 5
    assert str(out.unit_status.message).endswith("; 5 backups in storage")  # re-read


def test_the_daily_run_rebuilds_the_index_in_the_worker(s3: FakeS3, fake_start: FakeStart):
    st, bucket = backed_up(s3)
    catalog = Catalog(bucket, cluster())
    catalog.read_index()
    held = json.loads(bucket.get_bytes(catalog.index_key))
    del held["backups"][IDS[0]]["preserve-until"]  # a hold whose index update was lost
    bucket.put_bytes(catalog.index_key, json.dumps(held).encode())
    ctx = context()

    out = ctx.run(ctx.on.update_status(), st)
    spec = spec_of(fake_start.started[-1])
    run_worker(fake_start)
    out = ctx.run(ctx.on.update_status(), out)

    assert spec["reindex"] is True
    assert Catalog(bucket, cluster()).read_index().holds() == {IDS[0]: NOW + timedelta(days=3)}
    record = next(r for r in history_of(out) if r.get("type") == "retention")
    assert record["status"] == "success"


def test_a_bad_spec_is_refused_with_exit_2(tmp_path: Path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"retention-id": "r", "targets": []}))
    spec.chmod(0o600)
    state_file = tmp_path / "state.json"

    code = retention_worker.main(
        ["retention", "--spec", str(spec), "--state-file", str(state_file)]
    )

    assert code == 2
    assert "not a retention spec" in json.loads(state_file.read_text())["message"]


def test_daily_retention_starts_once_a_day_from_update_status(s3: FakeS3, fake_start: FakeStart):
    add_backup(s3.bucket("bucket-a"), cluster(), IDS[0], hours_ago=24 * 50)
    rel, secret = s3_relation()
    config = {"retention-min-count": 1, "retention-max-age": "30d", "backup-schedule": ""}
    st = state(rel, db_relation(), secrets=[secret], config=config)
    ctx = context()

    out = ctx.run(ctx.on.update_status(), st)
    out = ctx.run(ctx.on.update_status(), out)  # already started today

    runs = [r for r in history_of(out) if r.get("type") == "retention"]
    assert len(runs) == len(fake_start.started) == 1
    assert runs[0]["message"] == "daily retention, with a rebuild of the catalog index"
    peer_data = next(r for r in out.relations if r.endpoint == "manager-peers").local_app_data
    assert peer_data["last-retention"] == datetime.now(timezone.utc).date().isoformat()


def test_the_reindex_action_rebuilds_the_index_in_a_worker_and_deletes_nothing(
    s3: FakeS3, fake_start: FakeStart
):
    st, bucket = backed_up(s3)
    catalog = Catalog(bucket, cluster())
    catalog.read_index()
    bucket.delete(catalog.index_key)
    ctx = context()

    out = ctx.run(ctx.on.action("reindex", params={"application": "mysql"}), st)
    results = dict(ctx.action_results or {})
    spec = spec_of(fake_start.started[-1])
    assert run_worker(fake_start) == 0
    out = ctx.run(ctx.on.update_status(), out)

    assert results["status"] == "running"
    assert (spec["reindex"], spec["retain"]) == (True, False)
    assert spec["targets"] == [{"app": "mysql", "cluster-id": cluster(), "location": "s3-a"}]
    assert len(Catalog(bucket, cluster()).list_backups()) == 5  # no retention
    stored = json.loads(bucket.get_bytes(catalog.index_key))
    assert sorted(stored["backups"]) == IDS
    record = next(r for r in history_of(out) if r["job-id"] == results["job-id"])
    assert record["status"] == "success"
    assert record["message"] == "indexed 5 complete backups (1 held)"
