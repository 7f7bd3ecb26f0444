"""The manager's catalog actions against a real S3 (Ceph RGW): list, hold, retention, delete."""

from __future__ import annotations

import json
from datetime import timedelta

from ops import testing

from database_backup.catalog import Catalog
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3
from tests.unit.manager.helpers import cluster, context, db_relation, jobs_of, state

from .manager_helpers import (
    NOW,
    fail_action,
    location_relation,
    private_paths,  # noqa: F401 - autouse fixture
    put_backup,
    retention_collected,
    run_action,
)

FULL, INCR, OLD = "20261120T010000Z-aaaa", "20261121T010000Z-bbbb", "20261101T010000Z-0000"


def _seed(ceph: CephS3, bucket: str) -> S3Storage:
    storage = S3Storage(ceph.s3_config(bucket, path="backups"))
    put_backup(storage, cluster(), OLD, hours_ago=24 * 21)
    put_backup(storage, cluster(), FULL, hours_ago=48)
    put_backup(storage, cluster(), INCR, hours_ago=24, kind="incremental", parent=FULL)
    return storage


def test_list_backups_reads_the_real_catalog(ceph: CephS3, bucket: str):
    storage = _seed(ceph, bucket)
    Catalog(storage, cluster()).set_hold(OLD, NOW + timedelta(days=7))
    storage.put_bytes(f"{cluster()}/backups/20261122T010000Z-cccc/data.xbstream.zst", b"half")
    rel, secret = location_relation(ceph, "region-a", bucket)
    results, _ = run_action(state(rel, db_relation(), secrets=[secret]), "list-backups")
    print("\n" + results["table"])
    rows = {r["backup-id"]: r for r in json.loads(results["json"])}
    assert list(rows) == [OLD, FULL, INCR, "20261122T010000Z-cccc"]
    assert rows[OLD]["hold"].startswith((NOW + timedelta(days=7)).strftime("%Y-%m-%d"))
    assert rows[INCR]["parent"] == FULL
    assert rows[INCR]["kind"] == "incremental"
    assert rows[INCR]["size"] == "256.0 KiB"
    assert rows["20261122T010000Z-cccc"]["status"] == "incomplete"
    assert {r["location"] for r in rows.values()} == {"region-a"}


def test_restore_points_at_the_backup_prefix_in_the_bucket(ceph: CephS3, bucket: str):
    _seed(ceph, bucket)
    db = db_relation()
    rel, secret = location_relation(ceph, "region-a", bucket)
    results, out = run_action(state(rel, db, secrets=[secret]), "restore", **{"backup-id": FULL})
    job = jobs_of(out, db)[0]
    assert results["recovered-from-backup"] == FULL
    assert job["artefact-path"] == f"backups/{cluster()}/backups/{FULL}"
    keys = ceph.keys(bucket, prefix=job["artefact-path"] + "/")
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == ["backup.json", "data.xbstream.zst"]


def test_hold_keeps_a_backup_through_retention_until_cancelled(ceph: CephS3, bucket: str):
    storage = _seed(ceph, bucket)
    db = db_relation()
    rel, secret = location_relation(ceph, "region-a", bucket)
    config = {"retention-min-count": 1, "retention-max-age": "7d", "backup-schedule": ""}
    st = state(rel, db, secrets=[secret], config=config)
    until = (NOW + timedelta(days=30)).strftime("%Y-%m-%d")
    results, _ = run_action(st, "preserve-backup", **{"backup-id": OLD, "until": until})
    assert results["preserve-until"] == f"{until}T00:00:00Z"
    ctx = context()
    out = ctx.run(ctx.on.update_status(), st)  # daily retention, in a worker
    out = retention_collected(ctx, out)
    ids = [b.backup_id for b in Catalog(storage, cluster()).list_backups()]
    # OLD is 21 days old but held; FULL is the parent of the kept incremental
    assert ids == [OLD, FULL, INCR]
    run_action(out, "preserve-backup", **{"backup-id": OLD, "cancel": True})
    peer = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    data = dict(peer.local_app_data)
    data.pop("last-retention")
    again = testing.State(
        leader=True,
        relations=[r for r in out.relations if r is not peer]
        + [testing.PeerRelation("manager-peers", local_app_data=data)],
        secrets=list(out.secrets),
        config=dict(out.config),
        model=out.model,
    )
    retention_collected(ctx, ctx.run(ctx.on.update_status(), again))
    assert [b.backup_id for b in Catalog(storage, cluster()).list_backups()] == [FULL, INCR]
    assert not ceph.keys(bucket, prefix=f"backups/{cluster()}/backups/{OLD}/")


def test_delete_refuses_held_and_parents_then_removes_every_object(ceph: CephS3, bucket: str):
    storage = _seed(ceph, bucket)
    Catalog(storage, cluster()).set_hold(OLD, NOW + timedelta(days=1))
    rel, secret = location_relation(ceph, "region-a", bucket)
    st = state(rel, db_relation(), secrets=[secret])
    assert "is held until" in fail_action(st, "delete-backup", **{"backup-id": OLD})
    message = fail_action(st, "delete-backup", **{"backup-id": FULL})
    assert f"is the parent of {INCR}" in message
    results, _ = run_action(st, "delete-backup", **{"backup-id": INCR})
    assert results == {"deleted": INCR, "location": "region-a", "cluster": cluster()}
    assert not ceph.keys(bucket, prefix=f"backups/{cluster()}/backups/{INCR}/")
    run_action(st, "delete-backup", **{"backup-id": FULL})
    assert [b.backup_id for b in Catalog(storage, cluster()).list_backups()] == [OLD]


def test_wrong_credentials_fail_the_action_with_a_clear_message(ceph: CephS3, bucket: str):
    _seed(ceph, bucket)
    user = ceph.create_user("wrong-secret")
    wrong = type(user)(user.access_key, "not-the-secret-key")
    db = db_relation()
    rel, secret = location_relation(ceph, "region-a", bucket, user=wrong)
    st = state(rel, db, secrets=[secret])
    message = fail_action(st, "create-backup")
    assert "storage location 'region-a'" in message
    assert "refused the credentials" in message
    assert "SignatureDoesNotMatch" in message
    assert "not-the-secret-key" not in message
    message = fail_action(st, "list-backups")
    assert "refused the credentials" in message


def test_backups_of_unrelated_clusters_are_listed_held_and_deleted(ceph: CephS3, bucket: str):
    """After `juju remove-application`, or from a new model: the bucket is the truth."""
    storage = _seed(ceph, bucket)
    elsewhere = "7d1e9a40-3c2b-4f6e-8a5d-0c9b8e7f6a51/db"
    put_backup(storage, elsewhere, "20261122T010000Z-dddd", hours_ago=12)
    storage.put_bytes("stray/dir/file.txt", b"not a catalog")
    rel, secret = location_relation(ceph, "region-a", bucket)
    st = state(rel, secrets=[secret])  # no database application related
    results, _ = run_action(st, "list-backups")
    print("\n" + results["table"])
    rows = json.loads(results["json"])
    assert [(r["backup-id"], r["cluster"]) for r in rows] == [
        (OLD, cluster()),
        (FULL, cluster()),
        (INCR, cluster()),
        ("20261122T010000Z-dddd", elsewhere),
    ]
    results, _ = run_action(st, "list-backups", cluster=elsewhere)
    assert [r["backup-id"] for r in json.loads(results["json"])] == ["20261122T010000Z-dddd"]
    run_action(st, "preserve-backup", **{"backup-id": OLD, "until": "2999-01-01"})
    assert Catalog(storage, cluster()).get_hold(OLD) is not None
    assert "is held until" in fail_action(st, "delete-backup", **{"backup-id": OLD})
    results, _ = run_action(
        st, "delete-backup", **{"backup-id": "20261122T010000Z-dddd", "cluster": elsewhere}
    )
    assert results["cluster"] == elsewhere
    assert not ceph.keys(bucket, prefix=f"backups/{elsewhere}/backups/")
