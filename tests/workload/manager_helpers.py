"""Helpers for the manager's workload tests: real backups in a real RGW, actions via Scenario."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from ops import testing

from backup_manager import copying, history, retention_jobs, schedule
from database_backup.catalog import BackupMetadata, Catalog
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3, S3User
from tests.unit.manager.fakes import ARTEFACT, provider_metadata
from tests.unit.manager.fakes import NOW as NOW  # the tests' clock, re-exported
from tests.unit.manager.helpers import context, s3_relation


@pytest.fixture(autouse=True)
def private_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cron dir, schedule log and copy state under tmp_path; returns the copy state dir."""
    monkeypatch.setattr(schedule, "CRON_DIR", tmp_path / "cron.d")
    monkeypatch.setattr(schedule, "LOG_DIR", tmp_path / "log")
    monkeypatch.setattr(copying, "STATE_DIR", tmp_path / "state")
    return tmp_path / "state"


def location_relation(
    ceph: CephS3, name: str, bucket: str, user: S3User | None = None, path: str = "backups"
) -> tuple[testing.Relation, testing.Secret]:
    """An s3-integrator relation named `name` pointing at a real bucket on `ceph`."""
    access_key, secret_key = user or (ceph.access_key, ceph.secret_key)
    return s3_relation(
        name,
        bucket,
        endpoint=ceph.endpoint,
        access_key=access_key,
        secret_key=secret_key,
        path=path,
        region=ceph.region,
    )


def put_backup(
    storage: S3Storage,
    cluster_id: str,
    backup_id: str,
    *,
    hours_ago: float,
    kind: str = "full",
    parent: str | None = None,
    size: int = 256 << 10,
) -> BackupMetadata:
    """Store an artefact and its backup.json as the provider does (backup.json last)."""
    data = os.urandom(size)
    catalog = Catalog(storage, cluster_id)
    catalog.ensure_cluster()
    result = storage.upload_stream(catalog.artefact_key(backup_id, ARTEFACT), io.BytesIO(data))
    meta = provider_metadata(
        backup_id,
        data,
        hours_ago=hours_ago,
        kind=kind,
        parent=parent,
        stored_size=result.size,
        description=f"{kind} backup {backup_id[-4:]}",
    )
    catalog.write_metadata(meta)
    return meta


def run_action(
    st: testing.State, name: str, **params: Any
) -> tuple[dict[str, Any], testing.State]:
    """Run an action through Scenario; return its results and the output state."""
    ctx = context()
    out = ctx.run(ctx.on.action(name, params=params), st)
    assert ctx.action_results is not None
    return ctx.action_results, out


def fail_action(st: testing.State, name: str, **params: Any) -> str:
    """Run an action that must fail; return its message."""
    ctx = context()
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action(name, params=params), st)
    return info.value.message


def retention_collected(ctx: testing.Context, out: testing.State) -> testing.State:
    """Wait for the retention worker the last hook started, then the hook that records it.

    Returns the state after that hook; fails the test unless the run succeeded.
    """
    peer = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    (run_id,) = retention_jobs.running(history.load(peer.local_app_data.get("history")))
    deadline = time.monotonic() + 120
    while not retention_jobs.worker_ended(copying.STATE_DIR, run_id):
        assert time.monotonic() < deadline, f"retention run {run_id} did not end in 120 s"
        time.sleep(0.1)
    out = ctx.run(ctx.on.update_status(), out)
    peer = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    record = history.find(history.load(peer.local_app_data.get("history")), run_id)
    assert record is not None
    assert record.status == "success", record.message
    return out
