"""Two fresh servers ship to one cluster prefix in turn (a redeployed application).

Both have server-id 1 and binlogs named `bin.000001...`: the second one's files must land
on a new timeline (parent: the first one's), and a point-in-time recovery of the second
server to a time after its writes must give its data (CHECKSUM TABLE compared).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from database_backup.catalog import Catalog, new_backup_id
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.mysql import backup_full
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.mysql.pitr.recover import recover_to_point
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, fill

CLUSTER = "model-0123/mysql-server"


def _next_second(margin: float = 0.2) -> None:
    now = time.time()
    time.sleep(1 - (now % 1) + margin)


def test_a_second_fresh_server_ships_on_its_own_timeline_and_recovers_its_data(
    make_mariadb: Callable[..., MariaDBServer], storage: S3Storage, tmp_path: Path
):
    key = generate_key()
    catalog = Catalog(storage, CLUSTER)
    index = BinlogCatalog(catalog)
    old = make_mariadb("owner-old", server_id=1)
    try:
        fill(old, "shop", rows=300)
        old.execute("FLUSH BINARY LOGS")
        first = ship_binlogs(connection(old), catalog, workdir=tmp_path / "old", key=key)
        assert first.shipped == ["bin.000001"]
        assert first.forked_because is None
        old_entries = index.entries(first.timeline)
    finally:
        old.stop()

    new = make_mariadb("owner-new", server_id=1)  # redeployed: server-id 1 again
    try:
        conn = connection(new)
        work = tmp_path / "new"
        fill(new, "shop", rows=500)
        base = backup_full(conn, catalog, backup_id=new_backup_id(datetime.now(timezone.utc)),
                           key=key, workdir=tmp_path / "b")  # fmt: skip
        new.execute("UPDATE shop.orders SET amount = amount + 7 WHERE id <= 50")
        new.execute("FLUSH BINARY LOGS")

        second = ship_binlogs(conn, catalog, workdir=work, key=key)

        assert second.timeline != first.timeline
        assert second.forked_because is not None
        assert second.shipped[0] == "bin.000001"
        assert second.already == []
        timelines = index.timelines()
        assert [t.timeline_id for t in timelines] == [first.timeline, second.timeline]
        assert timelines[-1].parent == first.timeline
        assert index.entries(first.timeline) == old_entries  # the old history is untouched
        shipped = index.entries(second.timeline)
        local = new.binlog_dir / "bin.000001"
        assert shipped[0].raw_size == local.stat().st_size != old_entries[0].raw_size
        # its backup, taken before its first shipment, belongs to its timeline
        assert index.timeline_of(base, timelines) == timelines[-1]

        _next_second()
        noted = datetime.now(timezone.utc)
        at_noted = new.checksum_tables("shop")
        _next_second()
        new.execute("DELETE FROM shop.orders WHERE id > 100")  # the mistake to undo
        again = ship_binlogs(conn, catalog, workdir=work, key=key, flush=True)
        assert again.timeline == second.timeline
        assert again.forked_because is None
        assert "bin.000001" in again.already

        result = recover_to_point(conn, new, catalog, noted, workdir=work, key=key)

        assert result.plan.timeline.timeline_id == second.timeline
        assert result.plan.backup.backup_id == base.backup_id
        assert {entry.timeline for entry in result.plan.files} == {second.timeline}
        assert new.checksum_tables("shop") == at_noted
        assert index.timelines()[-1].parent == second.timeline
    finally:
        new.stop()
