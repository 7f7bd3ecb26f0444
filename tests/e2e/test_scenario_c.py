"""Scenario C end to end: the fault paths as the admin sees them.

A restore asked for while a restore runs is refused (and so is a backup); a tampered
artefact fails its restore with a clear message and leaves the data alone; a dead S3
gateway gives clear errors and no backup that looks complete.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ops import testing

from database_backup.interface.locking import RESTORING_MESSAGE
from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer

from .data import Servers, add_orders, catalog, create_shop, snapshot, two_regions
from .harness import ActionError, S3Location, TwoCharms
from .provider import Deployment
from .scenario_a import succeeded

CONFIG = {"backup-location": "region-a", "backup-schedule": ""}


@dataclass
class World:
    harness: TwoCharms
    unit: Deployment
    db: MariaDBServer
    region: S3Location
    backup_id: str


@pytest.fixture
def world(
    ceph: CephS3,
    servers: Servers,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    """Both charms related on a fresh server with one complete backup."""
    region_a, _ = two_regions(ceph)
    db = servers(request.node.name[:20])
    create_shop(db)
    harness = TwoCharms(tmp_path, [region_a], config=CONFIG, log=print)
    with harness.running():
        unit = harness.deploy("mysql-server", db)
        harness.relate(unit)
        job = harness.action("create-backup")["job-id"]
        harness.settle()
        yield World(harness, unit, db, region_a, succeeded(harness, job)["backup-id"])


def test_restore_refused_while_a_restore_runs(world: World) -> None:
    harness, db = world.harness, world.db
    at_backup = snapshot(db)
    add_orders(db, 300, "later")
    first = harness.action("restore", **{"backup-id": world.backup_id})["job-id"]
    harness.pump()  # the provider starts the restore's worker
    (local,) = world.unit.jobs.running()
    group = int((local.dir / "worker.pid").read_text())
    os.killpg(group, signal.SIGSTOP)  # hold the restore mid-way, whatever the machine's speed
    try:
        assert local.finished_record() is None
        assert local.is_locked()
        status = world.unit.state.unit_status
        assert isinstance(status, testing.MaintenanceStatus)
        assert str(status.message).startswith(f"restoring backup {world.backup_id}")
        second = harness.action("restore", **{"backup-id": world.backup_id})["job-id"]
        backup = harness.action("create-backup")["job-id"]
        harness.pump()
        refusals = {
            second: f"another restore (job {first}) is running; only one restore at a time "
            "is allowed",
            backup: RESTORING_MESSAGE.format(job=first),
        }
        for job_id, refusal in refusals.items():
            record = harness.job(job_id)
            assert (record["status"], record["message"]) == ("error", refusal), record
        assert harness.job(first)["status"] == "running"
    finally:
        os.killpg(group, signal.SIGCONT)
    harness.settle()
    assert succeeded(harness, first)["recovered-from-backup"] == world.backup_id
    assert snapshot(db) == at_backup
    listing = json.loads(harness.action("list-jobs")["json"])
    jobs = [r for r in listing if r["type"] != "retention"]  # each backup's retention run
    assert [r["status"] for r in jobs] == ["success", "success", "error", "error"]


def test_tampered_artefact_fails_the_restore_and_keeps_the_data(world: World) -> None:
    harness, db = world.harness, world.db
    shelf = catalog(world.region)
    meta = shelf.read_metadata(world.backup_id)
    key = shelf.artefact_key(world.backup_id, meta.artefacts[0])
    data = bytearray(shelf.storage.get_bytes(key))
    data[len(data) // 2] ^= 0x5A  # one flipped byte, same size
    shelf.storage.put_bytes(key, bytes(data))
    add_orders(db, 200, "after-backup")
    before = snapshot(db)

    job = harness.action("restore", **{"backup-id": world.backup_id})["job-id"]
    harness.settle()

    record = harness.job(job)
    assert record["status"] == "error", record
    message = record["message"]
    print("the admin reads:", message)
    # found by the zstd frame check or by mbstream's chunk checksums, whichever reads it first
    assert f"backup {world.backup_id}" in message
    assert "failed verification" in message or "(damaged artefact?)" in message
    assert message.endswith("the current data was not touched")
    assert snapshot(db) == before  # the previous data stays in place
    assert isinstance(world.unit.state.unit_status, testing.ActiveStatus)
    manager = harness.state.unit_status
    assert isinstance(manager, testing.ActiveStatus)
    assert f"restore {job} failed (see list-jobs)" in str(manager.message)


def test_s3_down_gives_clear_errors_and_nothing_complete_looking(
    world: World, ceph: CephS3
) -> None:
    harness = world.harness
    ceph.kill_rgw()
    try:
        with pytest.raises(ActionError) as refused:
            harness.action("create-backup")
        assert "region-a" in str(refused.value)
        with pytest.raises(ActionError) as listing:
            harness.action("list-backups")
        assert "region-a" in str(listing.value)
        harness.update_status()
        status = harness.state.unit_status
        assert isinstance(status, testing.BlockedStatus)
        assert str(status.message).startswith("storage location region-a:")
    finally:
        ceph.restart_rgw()
    harness.update_status()
    assert isinstance(harness.state.unit_status, testing.ActiveStatus)

    # the gateway dies after the request was accepted: the job fails, nothing complete appears
    job = harness.action("create-backup")["job-id"]
    ceph.kill_rgw()
    try:
        harness.settle()
    finally:
        ceph.restart_rgw()
    record = harness.job(job)
    assert record["status"] == "error", record
    print("the admin reads:", record["message"])
    assert record["message"]
    assert "the S3 endpoint is unreachable" in record["message"]

    # the gateway dies while the backup streams (the job is frozen once it has checked the
    # catalog and started its backup tool, so the kill surely lands mid-backup)
    job = harness.action("create-backup")["job-id"]
    harness.pump()
    (local,) = world.unit.jobs.running()
    group = int((local.dir / "worker.pid").read_text())
    deadline = time.monotonic() + 60
    while local.state().get("phase") != "backup" and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(group, signal.SIGSTOP)
    try:
        assert local.finished_record() is None
        ceph.kill_rgw()
    finally:
        os.killpg(group, signal.SIGCONT)
    try:
        harness.settle()
    finally:
        ceph.restart_rgw()
    mid_stream = harness.job(job)
    assert mid_stream["status"] == "error", mid_stream
    print("the admin reads:", mid_stream["message"])
    assert "the S3 endpoint is unreachable" in mid_stream["message"]

    rows = json.loads(harness.action("list-backups")["json"])
    complete = [r["backup-id"] for r in rows if r["status"] == "complete"]
    assert complete == [world.backup_id]
    assert [b.backup_id for b in catalog(world.region).list_backups()] == [world.backup_id]
