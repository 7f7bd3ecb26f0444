"""Point-in-time recovery on a real MariaDB and a real RGW: ship, back up, write, recover.

Rows are written before and after a noted moment; after a recovery to that moment the
tables' CHECKSUM TABLE equals the one taken at the moment, and only the earlier rows exist.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from database_backup import stopping
from database_backup.catalog import Catalog, new_backup_id
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.mysql import ConnectionSpec, backup_full
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.mysql.pitr.recover import RecoveryError, plan_recovery, recover_to_point
from database_backup.mysql.progress import ProgressEvent
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, fill

CLUSTER = "model-0123/pitr"


def _next_second(margin: float = 0.2) -> None:
    """Sleep until `margin` seconds after the next whole second."""
    now = time.time()
    time.sleep(1 - (now % 1) + margin)


def _ids(server: MariaDBServer) -> list[int]:
    return [int(row[0]) for row in server.query("SELECT id FROM pt.notes ORDER BY id")]


def _write(server: MariaDBServer, first: int, last: int, tag: str) -> None:
    server.execute(
        f"INSERT INTO pt.notes SELECT seq, '{tag}' FROM pt.seq_{first}_to_{last};"  # noqa: S608
        f"UPDATE pt.orders SET amount = amount + {first} WHERE id <= {last};"
    )


def test_recovery_to_a_noted_time_keeps_only_the_earlier_rows(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    key = generate_key()
    conn = connection(server)
    work = tmp_path / "work"
    fill(server, "pt", rows=2_000)
    server.execute("CREATE TABLE pt.notes (id INT PRIMARY KEY, tag VARCHAR(20)) ENGINE=InnoDB;")
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    base = backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)),
                       key=key, workdir=tmp_path / "b")  # fmt: skip
    _write(server, 1, 10, "before")
    server.execute("FLUSH BINARY LOGS")  # the window spans several files
    _write(server, 11, 20, "before")
    _next_second()
    noted = datetime.now(timezone.utc)
    at_noted = server.checksum_tables("pt")
    _next_second()
    _write(server, 21, 30, "after")
    server.execute("DROP TABLE pt.events")  # the mistake a recovery undoes
    old_timeline = BinlogCatalog(catalog).current_timeline()
    assert old_timeline is not None

    result = recover_to_point(conn, server, catalog, noted, workdir=work, key=key, progress=None)

    assert _ids(server) == list(range(1, 21))
    assert server.checksum_tables("pt") == at_noted
    assert result.plan.backup.backup_id == base.backup_id
    assert len(result.plan.files) >= 2
    index = BinlogCatalog(catalog)
    timelines = index.timelines()
    assert [t.timeline_id for t in timelines] == [old_timeline.timeline_id, result.new_timeline]
    assert timelines[-1].parent == old_timeline.timeline_id
    # the old history is intact (it even holds the "after" rows and the DROP) and the new
    # timeline starts again at .000001 in its own prefix
    old_names = [entry.name for entry in index.entries(old_timeline.timeline_id)]
    new_names = [entry.name for entry in index.entries(result.new_timeline)]
    assert old_names == ["bin.000001", "bin.000002", "bin.000003"]
    assert new_names[0] == "bin.000001"

    # new history on the new timeline, then "latest": the fork backup + the new logs
    _write(server, 31, 35, "new-timeline")
    at_latest = server.checksum_tables("pt")
    latest = recover_to_point(conn, server, catalog, None, workdir=work, key=key)
    assert latest.plan.backup.backup_id == base.backup_id
    assert latest.plan.timeline.timeline_id == result.new_timeline
    assert _ids(server) == [*range(1, 21), *range(31, 36)]
    assert server.checksum_tables("pt") == at_latest


def test_refusals_leave_the_data_untouched(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    work = tmp_path / "work"
    fill(server, "pt", rows=500)
    server.execute("CREATE TABLE pt.notes (id INT PRIMARY KEY, tag VARCHAR(20)) ENGINE=InnoDB;")

    with pytest.raises(RecoveryError, match="no binlogs have been shipped"):
        plan_recovery(catalog, None)
    before_backup = datetime.now(timezone.utc) - timedelta(seconds=5)
    ship_binlogs(conn, catalog, workdir=work, flush=True)
    base = backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)),
                       compression_level=None, workdir=tmp_path / "b")  # fmt: skip
    for first in (1, 11, 21):
        _write(server, first, first + 9, "x")
        server.execute("FLUSH BINARY LOGS")
    ship_binlogs(conn, catalog, workdir=work)
    now = server.checksum_tables("pt")

    with pytest.raises(RecoveryError, match="before the first backup") as early:
        recover_to_point(conn, server, catalog, before_backup, workdir=work, ship_first=False)
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    with pytest.raises(RecoveryError, match="after the last shipped binlog event") as late:
        recover_to_point(conn, server, catalog, future, workdir=work, ship_first=False)
    # a file in the middle of the window goes missing: a gap
    index = BinlogCatalog(catalog)
    timeline = index.current_timeline()
    assert timeline is not None
    entries = index.entries(timeline.timeline_id)
    assert base.binlog_file is not None
    later = [e for e in entries if e.name > base.binlog_file]
    assert len(later) >= 2
    middle = later[0]
    index.delete_entry(middle)
    with pytest.raises(RecoveryError, match="gap in the shipped binlogs") as gap:
        recover_to_point(conn, server, catalog, None, workdir=work, ship_first=False)

    for refused in (early, late, gap):
        assert refused.value.data_changed is False
    assert server.checksum_tables("pt") == now
    assert _ids(server) == list(range(1, 31))


def test_plain_restore_after_shipping_starts_a_new_timeline(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    conn = connection(server)
    work = tmp_path / "work"
    fill(server, "pt", rows=500)
    ship_binlogs(conn, catalog, workdir=work, flush=True)
    base = backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)),
                       compression_level=None, workdir=tmp_path / "b")  # fmt: skip
    at_backup = server.checksum_tables("pt")
    server.execute("DELETE FROM pt.orders WHERE id > 10;")
    index = BinlogCatalog(catalog)
    old = index.current_timeline()
    assert old is not None

    result = recover_to_point(
        conn, server, catalog, None, workdir=work, backup_id=base.backup_id,
        replay_binlogs=False,
    )  # fmt: skip

    assert server.checksum_tables("pt") == at_backup
    assert result.replayed_files == 0
    assert result.shipped_before  # the DELETE is kept in the old history
    timelines = index.timelines()
    assert [t.timeline_id for t in timelines] == [old.timeline_id, result.new_timeline]
    assert timelines[-1].fork_backup == base.backup_id
    assert server.scalar("SELECT @@gtid_binlog_pos") == base.gtid_set


def _backed_up(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
) -> tuple[bytes, ConnectionSpec, Path]:
    """Shipped binlogs, then a full backup of `pt`: (key, connection, shipping workdir)."""
    key = generate_key()
    conn = connection(server)
    work = tmp_path / "work"
    fill(server, "pt", rows=500)
    server.execute("CREATE TABLE pt.notes (id INT PRIMARY KEY, tag VARCHAR(20)) ENGINE=InnoDB;")
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)), key=key,
                workdir=tmp_path / "b")  # fmt: skip
    return key, conn, work


def test_a_damaged_shipped_binlog_refuses_the_recovery_before_the_restore(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    key, conn, work = _backed_up(server, catalog, tmp_path)
    _write(server, 1, 10, "x")
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    index = BinlogCatalog(catalog)
    timeline = index.current_timeline()
    assert timeline is not None
    damaged = index.entries(timeline.timeline_id)[-1]
    object_key = index.object_key(damaged.timeline, damaged.object_name)
    data = bytearray(storage.get_bytes(object_key))
    data[len(data) // 2] ^= 0x01
    storage.put_bytes(object_key, bytes(data))
    now = server.checksum_tables("pt")

    with pytest.raises(RecoveryError, match=f"{damaged.name} .* cannot be used") as caught:
        recover_to_point(conn, server, catalog, None, workdir=work, key=key, ship_first=False)

    assert caught.value.data_changed is False
    assert server.checksum_tables("pt") == now
    assert [t.timeline_id for t in index.timelines()] == [timeline.timeline_id]


def test_a_replay_that_fails_midway_puts_the_previous_data_back(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    """A binlog damaged in storage, found only when the replay reaches it (no prefetch)."""
    key, conn, work = _backed_up(server, catalog, tmp_path)
    _write(server, 1, 10, "first")
    server.execute("FLUSH BINARY LOGS")  # the first file replays, the second is damaged
    _write(server, 11, 20, "second")
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    index = BinlogCatalog(catalog)
    timeline = index.current_timeline()
    assert timeline is not None
    damaged = index.entries(timeline.timeline_id)[-1]
    object_key = index.object_key(damaged.timeline, damaged.object_name)
    data = bytearray(storage.get_bytes(object_key))
    data[len(data) // 2] ^= 0x01
    storage.put_bytes(object_key, bytes(data))
    now = server.checksum_tables("pt")
    marker = (work / "binlog-timeline.json").read_bytes()

    with pytest.raises(RecoveryError, match="previous data was put back") as caught:
        recover_to_point(
            conn, server, catalog, None, workdir=work, key=key, ship_first=False, prefetch=False
        )

    assert caught.value.data_changed is False
    assert damaged.name in str(caught.value)
    assert server.checksum_tables("pt") == now
    assert _ids(server) == list(range(1, 21))
    assert (work / "binlog-timeline.json").read_bytes() == marker
    assert not (server.datadir.parent / f"{server.datadir.name}.restore-journal.json").exists()


def test_a_stop_swallowed_during_the_recovery_is_honoured_before_the_commit(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    """A SIGTERM raised inside an S3 request that botocore retried: the stop is not lost."""
    key, conn, work = _backed_up(server, catalog, tmp_path)
    _write(server, 1, 10, "after")
    ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
    now = server.checksum_tables("pt")

    def signal_lost_in_a_library(event: ProgressEvent) -> None:
        if event.phase == "replay":  # the handler's raise went into a retried S3 request
            stopping.request("stopped by signal SIGTERM")

    try:
        with pytest.raises(RecoveryError, match="previous data was put back") as caught:
            recover_to_point(
                conn, server, catalog, None, workdir=work, key=key, ship_first=False,
                progress=signal_lost_in_a_library,
            )  # fmt: skip
    finally:
        stopping.clear()

    assert "SIGTERM" in str(caught.value)
    assert caught.value.data_changed is False
    assert server.checksum_tables("pt") == now
    assert _ids(server) == list(range(1, 11))
