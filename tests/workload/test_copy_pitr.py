"""A copy is restorable to every time its source could reach: PITR from the copy alone.

Back up, write, ship the binary logs, copy the backup to a second bucket (another RGW
user, another "region") with the manager's `copy-backup` and its defaults, then recover a
fresh server from the copy alone to a time after the backup: CHECKSUM TABLE equals the
source's at that time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backup_manager import copying
from database_backup.catalog import Catalog, new_backup_id
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.mysql import backup_full
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.mysql.pitr.recover import recover_to_point
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3, S3User
from tests.infra.mariadb import MariaDBServer
from tests.unit.manager.helpers import cluster, db_relation, state
from tests.workload.engine_helpers import connection, fill, shutdown

from .manager_helpers import (
    NOW,
    location_relation,
    private_paths,  # noqa: F401 - autouse fixture
    put_backup,
    run_action,
)
from .test_manager_copy import wait_for_result


def _next_second(margin: float = 0.2) -> None:
    time.sleep(1 - (time.time() % 1) + margin)


def _write(server: MariaDBServer, first: int, last: int, tag: str) -> None:
    server.execute(
        f"INSERT INTO cp.notes SELECT seq, '{tag}' FROM cp.seq_{first}_to_{last};"  # noqa: S608
        f"UPDATE cp.orders SET amount = amount + {first} WHERE id <= {last};"
    )


def test_point_in_time_recovery_from_a_default_copy(
    server: MariaDBServer,
    make_mariadb: Callable[..., MariaDBServer],
    ceph: CephS3,
    bucket: str,
    region_b: tuple[str, S3User],
    tmp_path: Path,
):
    bucket_b, user_b = region_b
    store_a = S3Storage(ceph.s3_config(bucket, path="backups"))
    store_b = S3Storage(ceph.s3_config(bucket_b, path="dr", user=user_b))
    source = Catalog(store_a, cluster())
    conn = connection(server)
    work = tmp_path / "ship"
    fill(server, "cp", rows=2_000)
    server.execute("CREATE TABLE cp.notes (id INT PRIMARY KEY, tag VARCHAR(20)) ENGINE=InnoDB;")
    ship_binlogs(conn, source, workdir=work, flush=True)
    base = backup_full(conn, source, backup_id=new_backup_id(datetime.now(timezone.utc)),
                       workdir=tmp_path / "b")  # fmt: skip
    _write(server, 1, 10, "before")
    server.execute("FLUSH BINARY LOGS")
    _write(server, 11, 20, "before")
    _next_second()
    noted = datetime.now(timezone.utc)
    at_noted = server.checksum_tables("cp")
    _next_second()
    _write(server, 21, 30, "after")
    ship_binlogs(conn, source, workdir=work, flush=True)

    rel_a, sec_a = location_relation(ceph, "region-a", bucket)
    rel_b, sec_b = location_relation(ceph, "region-b", bucket_b, user=user_b, path="dr")
    st = state(rel_a, rel_b, db_relation(), secrets=[sec_a, sec_b],
               config={"backup-location": "region-a"})  # fmt: skip
    results, _ = run_action(st, "copy-backup", **{"backup-id": base.backup_id, "to": "region-b"})
    outcome = wait_for_result(copying.STATE_DIR, results["job-id"], timeout=120)
    print(f"\ncopy: {outcome['status']}: {outcome['message']}")
    assert outcome["status"] == "success", outcome
    copy_id = results["backup-id"]
    copy = Catalog(store_b, cluster())
    assert copy.storage.exists(copy.artefact_key(copy_id, "job.log")), "job.log not copied"
    index_b = BinlogCatalog(copy)
    timeline_b = index_b.current_timeline()
    assert timeline_b is not None
    copied_names = [entry.name for entry in index_b.entries(timeline_b.timeline_id)]
    print(f"binlogs in the copy's location: {copied_names}")
    assert base.binlog_file is not None
    assert copied_names[0] == base.binlog_file  # from the backup's start, nothing older

    target = make_mariadb("copy-target")
    try:
        result = recover_to_point(connection(target), target, copy, noted,
                                  workdir=tmp_path / "w2", ship_first=False)  # fmt: skip
        assert result.plan.backup.backup_id == copy_id
        assert target.checksum_tables("cp") == at_noted
        ids = [int(row[0]) for row in target.query("SELECT id FROM cp.notes ORDER BY id")]
        assert ids == list(range(1, 21))
    finally:
        shutdown(target)


def test_a_binlog_that_does_not_match_its_entry_fails_the_copy(
    ceph: CephS3, bucket: str, region_b: tuple[str, S3User]
):
    bucket_b, user_b = region_b
    store_a = S3Storage(ceph.s3_config(bucket, path="backups"))
    store_b = S3Storage(ceph.s3_config(bucket_b, path="dr", user=user_b))
    source = Catalog(store_a, cluster())
    index = BinlogCatalog(source)
    timeline = index.create_timeline(now=NOW - timedelta(days=3)).timeline_id
    for number, data in ((1, b"first binlog"), (2, b"second binlog")):
        name = f"bin.{number:06d}"
        store_a.put_bytes(index.object_key(timeline, name), data)
        index.write_entry(
            BinlogEntry(
                name=name,
                timeline=timeline,
                object_name=name,
                raw_size=len(data),
                stored_size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                compression="none",
                encrypted=False,
                created_at=NOW - timedelta(days=2),
                last_event_at=NOW - timedelta(days=1),
            )
        )
    meta = put_backup(store_a, cluster(), "20261120T010000Z-aaaa", hours_ago=40)
    source.write_metadata(dataclasses.replace(meta, binlog_file="bin.000001", binlog_position=4))
    store_a.put_bytes(index.object_key(timeline, "bin.000002"), b"SECOND binlog")  # same size

    rel_a, sec_a = location_relation(ceph, "region-a", bucket)
    rel_b, sec_b = location_relation(ceph, "region-b", bucket_b, user=user_b, path="dr")
    st = state(rel_a, rel_b, db_relation(), secrets=[sec_a, sec_b],
               config={"backup-location": "region-a"})  # fmt: skip
    results, _ = run_action(st, "copy-backup", **{"backup-id": meta.backup_id, "to": "region-b"})
    outcome = wait_for_result(copying.STATE_DIR, results["job-id"])
    print(f"\ncopy: {outcome['status']}: {outcome['message']}")
    assert outcome["status"] == "error"
    assert "binlog bin.000002" in outcome["message"]
    assert "does not match its index entry" in outcome["message"]
    assert Catalog(store_b, cluster()).list_backups() == []
    copied = BinlogCatalog(Catalog(store_b, cluster()))
    assert [e.name for e in copied.entries(timeline)] == ["bin.000001"]  # whole and verified
