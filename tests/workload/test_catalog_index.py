"""The catalog index on a real S3 endpoint (Ceph RGW).

Requests counted by botocore, the `reindex` command, and lost index updates healed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from database_backup.catalog import BackupMetadata, Catalog, RetentionPolicy
from database_backup.catalog.documents import dump_document
from database_backup.storage import S3Config, S3Storage
from tests.workload.engine_helpers import run_cli
from tests.workload.storage_helpers import CallCounter

CLUSTER = "0b6c3f52-8a1e-4c55-9d0b-model/index-test"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)
COUNT = 1200  # more than one listing page of backup ids


def metadata(number: int) -> BackupMetadata:
    started = T0 + timedelta(hours=number)
    return BackupMetadata(
        backup_id=f"{started:%Y%m%dT%H%M%SZ}-{number:04x}",
        kind="full",
        started_at=started,
        finished_at=started + timedelta(minutes=5),
        artefacts=["data.xbstream.zst"],
        stored_size=4,
        sha256="ab" * 32,
        compression="zstd",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6",
        databases=["shop"],
    )


def seed(storage: S3Storage, count: int) -> list[BackupMetadata]:
    """`count` tiny backups written as an older provider wrote them (no index)."""
    catalog = Catalog(storage, CLUSTER)
    catalog.ensure_cluster()
    metas = [metadata(number) for number in range(count)]
    for meta in metas:
        storage.put_bytes(catalog.artefact_key(meta.backup_id, "data.xbstream.zst"), b"data")
        key = catalog.backup_prefix(meta.backup_id) + "backup.json"
        storage.put_bytes(key, dump_document(meta.to_dict()))
    return metas


def test_reads_cost_three_requests_and_reindex_rebuilds_a_lost_index(
    storage: S3Storage, s3_config: S3Config, tmp_path: Path
) -> None:
    metas = seed(storage, COUNT)
    catalog = Catalog(storage, CLUSTER, clock=lambda: T0 + timedelta(days=60))
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "cluster-id": CLUSTER,
                "storage": {
                    "bucket": s3_config.bucket,
                    "endpoint": s3_config.endpoint,
                    "region": s3_config.region,
                },
            }
        )
    )
    spec.chmod(0o600)

    done = run_cli(["reindex"], spec, s3_config, tmp_path / "state.json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["complete"] == COUNT
    counter = CallCounter(storage.client)
    view = catalog.read_index()
    assert counter.calls == {"GetObject": 1, "ListObjectsV2": 1}
    assert [b.backup_id for b in view.complete] == [m.backup_id for m in metas]
    assert view.complete[0].databases is None  # the index leaves the selection lists out

    counter.calls.clear()
    decisions = catalog.purge(RetentionPolicy(max_count=COUNT - 2), dry_run=True)
    assert [d.backup_id for d in decisions] == [m.backup_id for m in metas[:2]]
    assert sum(counter.calls.values()) == 2


def test_a_backup_the_index_missed_is_found_and_a_hold_it_missed_is_honoured(
    storage: S3Storage,
) -> None:
    metas = seed(storage, 4)
    catalog = Catalog(storage, CLUSTER, clock=lambda: T0 + timedelta(days=1))
    catalog.reindex()
    before = storage.get_bytes(catalog.index_key)
    late = replace(metadata(10), databases=None)
    storage.put_bytes(catalog.artefact_key(late.backup_id, "data.xbstream.zst"), b"data")
    catalog.write_metadata(late)
    catalog.set_hold(metas[0].backup_id, T0 + timedelta(days=30))
    storage.put_bytes(catalog.index_key, before)  # a concurrent writer's older index won

    view = catalog.read_index()
    decisions = catalog.purge(RetentionPolicy(max_count=2))

    assert view.complete[-1].backup_id == late.backup_id
    assert [d.backup_id for d in decisions] == [m.backup_id for m in metas[1:3]]
    assert storage.exists(catalog.backup_prefix(metas[0].backup_id) + "backup.json")
    assert catalog.read_index().holds() == {metas[0].backup_id: T0 + timedelta(days=30)}
