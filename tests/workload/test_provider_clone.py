"""A clone through the mysql-server charm: a restore job naming another cluster's backup.

The job's `artefact-path` names a cluster of a lost model (another server's backup and
shipped binlogs, written by the real engine). The charm's worker recovers it to the latest
shipped event into its own server and writes its new timeline under its OWN prefix; the
source prefix is only read (issue 12 item 3).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import new_backup_id
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.interface import JobRequest, JobType
from database_backup.mysql import backup_full
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.storage import S3Config
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, fill
from tests.workload.provider_helpers import Unit, catalog, show

SOURCE = "lost-model-0123/mysql-server"


@pytest.fixture(scope="module")
def lost(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """The server of the lost model (its backups and binlogs stay in the bucket)."""
    db = make_mariadb("clone-lost")
    yield db
    db.stop()


def test_a_restore_job_of_another_clusters_backup_writes_under_our_own_prefix(
    server: MariaDBServer, lost: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(server, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    key = base64.b64decode(unit.key.tracked_content["key"])
    source = catalog(s3_config, SOURCE)
    conn = connection(lost)
    fill(lost, "shop", rows=2_000)
    ship_binlogs(conn, source, workdir=tmp_path / "ship", key=key, flush=True)
    meta = backup_full(
        conn, source, backup_id=new_backup_id(datetime.now(timezone.utc)), key=key,
        workdir=tmp_path / "backup",
    )  # fmt: skip
    lost.execute("UPDATE shop.orders SET amount = amount + 3 WHERE id < 700;")
    ship_binlogs(conn, source, workdir=tmp_path / "ship", key=key, flush=True)
    at_last_write = lost.checksum_tables("shop")
    source_timelines = BinlogCatalog(source).timelines()

    restore = JobRequest(
        "clone-1", JobType.RESTORE, unit.storage,
        artefact_path=f"charm-tests/{SOURCE}/backups/{meta.backup_id}",
        backup_id=meta.backup_id, point_in_time="latest", encryption_secret_id=unit.key.id,
    )  # fmt: skip
    unit.request(restore)
    unit.wait_for_hand_back(1)
    unit.job_finished()
    show("unit databag after job-finished", unit.databag())
    done = unit.statuses()["clone-1"]
    assert done["status"] == "success", done.get("message")
    assert server.checksum_tables("shop") == at_last_write
    assert BinlogCatalog(source).timelines() == source_timelines  # the source only read
    own = BinlogCatalog(catalog(s3_config, f"{unit.state.model.uuid}/mysql-server"))
    newest = own.timelines()[-1]
    assert newest.parent is None
    assert SOURCE in newest.reason
