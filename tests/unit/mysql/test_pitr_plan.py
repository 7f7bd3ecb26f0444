"""Point-in-time recovery planning (pure reading) on an in-memory catalog."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry, Timeline
from database_backup.mysql.flavour import for_name
from database_backup.mysql.pitr.recover import (
    RecoveryError,
    parse_target,
    plan_recovery,
    reset_binlog_sql,
)
from tests.unit.catalog.factories import SHA
from tests.unit.catalog.memstore import MemoryStore

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class History:
    """A catalog with timelines, shipped binlog entries and backups."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.catalog = Catalog(self.store, "m/app")
        self.index = BinlogCatalog(self.catalog)

    def timeline(
        self,
        created: float,
        *,
        parent: str | None = None,
        fork_backup: str | None = None,
        fork_target: datetime | None = None,
    ) -> Timeline:
        timeline = Timeline(
            f"tl-{int(created)}", at(created), parent=parent, fork_backup=fork_backup,
            fork_target=fork_target,
        )  # fmt: skip
        self.index.write_timeline(timeline)
        return timeline

    def ship(
        self,
        timeline: str,
        number: int,
        first: float,
        last: float,
        *,
        gtid_list: list[str] | None = None,
        last_gtids: list[str] | None = None,
    ) -> BinlogEntry:
        entry = BinlogEntry(
            name=f"bin.{number:06d}", timeline=timeline, object_name=f"bin.{number:06d}",
            raw_size=4, stored_size=4, sha256=SHA, compression="none", encrypted=False,
            created_at=at(first), first_event_at=at(first), last_event_at=at(last),
            gtid_list=gtid_list or [], last_gtids=last_gtids or [],
        )  # fmt: skip
        self.store.put_bytes(self.index.object_key(timeline, entry.object_name), b"data")
        self.index.write_entry(entry)
        return entry

    def backup(
        self, backup_id: str, started: float, binlog: int, gtid_set: str | None = None
    ) -> BackupMetadata:
        meta = BackupMetadata(
            backup_id=backup_id, kind="full", started_at=at(started),
            finished_at=at(started + 1), artefacts=["data.xbstream"], stored_size=4,
            sha256=SHA, compression="none", encrypted=False, flavour="mariadb",
            server_version="10.11.6", binlog_file=f"bin.{binlog:06d}", binlog_position=400,
            from_lsn=0, to_lsn=100, gtid_set=gtid_set,
        )  # fmt: skip
        self.store.put_bytes(self.catalog.artefact_key(backup_id, "data.xbstream"), b"data")
        self.catalog.write_metadata(meta)
        return meta


@pytest.fixture
def history() -> History:
    """t1 from minute 0: bin.1..5 each 10 minutes; b1 at minute 25 (bin.2), b2 at 45 (bin.4)."""
    h = History()
    h.timeline(0)
    for n in range(1, 6):
        h.ship("tl-0", n, n * 10, n * 10 + 9)
    h.backup("b1", 25, 2)
    h.backup("b2", 45, 4)
    return h


def _names(plan) -> list[str]:
    return [entry.name for entry in plan.files]


def test_newest_backup_before_the_target_and_the_files_to_it(history: History):
    plan = plan_recovery(history.catalog, at(35))
    assert plan.backup.backup_id == "b1"
    assert plan.chain == ("b1",)
    assert _names(plan) == ["bin.000002", "bin.000003"]
    assert plan.start_position == 400
    assert plan.stop_at == at(35) + timedelta(seconds=1)  # the target's second is included
    latest = plan_recovery(history.catalog, None)
    assert latest.backup.backup_id == "b2"
    assert _names(latest) == ["bin.000004", "bin.000005"]
    assert latest.stop_at is None
    chosen = plan_recovery(history.catalog, None, backup_id="b1")
    assert _names(chosen) == ["bin.000002", "bin.000003", "bin.000004", "bin.000005"]


def test_refusals(history: History):
    with pytest.raises(RecoveryError, match="before the first backup"):
        plan_recovery(history.catalog, at(20))
    with pytest.raises(RecoveryError, match="after the last shipped binlog event"):
        plan_recovery(history.catalog, at(61))
    plan_recovery(history.catalog, at(59) + timedelta(milliseconds=500))  # the last second
    with pytest.raises(RecoveryError, match="cannot start a recovery"):
        plan_recovery(history.catalog, at(30), backup_id="b2")
    history.index.delete_entry(history.index.entries("tl-0")[2])  # bin.000003
    with pytest.raises(RecoveryError, match=r"gap .* bin.000002 is followed by bin.000004"):
        plan_recovery(history.catalog, at(45), backup_id="b1")
    # a gap before the backup, or after the target, does not matter
    assert _names(plan_recovery(history.catalog, None)) == ["bin.000004", "bin.000005"]
    assert _names(plan_recovery(history.catalog, at(27))) == ["bin.000002"]


def test_nothing_shipped_or_backup_files_missing():
    empty = History()
    with pytest.raises(RecoveryError, match="no binlogs have been shipped"):
        plan_recovery(empty.catalog, None)
    h = History()
    h.timeline(0)
    h.ship("tl-0", 1, 0, 9)
    h.backup("b1", 15, 2)  # its file was never shipped
    with pytest.raises(RecoveryError, match=r"from bin.000002\) are not in storage"):
        plan_recovery(h.catalog, None)


def test_gtids_must_follow_and_match_the_backup():
    h = History()
    h.timeline(0)
    h.ship("tl-0", 1, 0, 9, gtid_list=["0-1-10"], last_gtids=["0-1-20"])
    h.ship("tl-0", 2, 10, 19, gtid_list=["0-1-20"], last_gtids=["0-1-30"])
    h.ship("tl-0", 3, 20, 29, gtid_list=["0-1-25"], last_gtids=["0-1-40"])  # not following
    h.backup("b1", 3, 1, gtid_set="0-1-15")
    assert _names(plan_recovery(h.catalog, at(15))) == ["bin.000001", "bin.000002"]
    with pytest.raises(RecoveryError, match="does not continue the GTIDs"):
        plan_recovery(h.catalog, None)
    h.backup("b2", 5, 1, gtid_set="0-1-900")
    with pytest.raises(RecoveryError, match="does not belong to this backup"):
        plan_recovery(h.catalog, at(15))


def test_timelines_after_a_recovery(history: History):
    # a recovery at minute 100 restored b1 and replayed t1 to minute 35
    history.timeline(100, parent="tl-0", fork_backup="b1", fork_target=at(35))
    for n in range(1, 4):
        history.ship("tl-100", n, 100 + n * 10, 109 + n * 10)
    history.backup("b3", 125, 2)

    latest = plan_recovery(history.catalog, None)
    assert (latest.timeline.timeline_id, latest.backup.backup_id) == ("tl-100", "b3")
    assert _names(latest) == ["bin.000002", "bin.000003"]
    # before b3 on the new timeline: the fork backup and the new timeline from its start
    early = plan_recovery(history.catalog, at(115))
    assert (early.timeline.timeline_id, early.backup.backup_id) == ("tl-100", "b1")
    assert _names(early) == ["bin.000001"]
    assert early.start_position is None
    # before the new timeline began: the old history, up to where the new one forked
    old = plan_recovery(history.catalog, at(30))
    assert (old.timeline.timeline_id, old.backup.backup_id) == ("tl-0", "b1")
    assert _names(old) == ["bin.000002", "bin.000003"]
    clipped = plan_recovery(history.catalog, at(80))  # the old history after the fork is not ours
    assert clipped.timeline.timeline_id == "tl-0"
    assert clipped.stop_at == at(35) + timedelta(seconds=1)
    assert clipped.backup.backup_id == "b1"


def test_targets_and_reset_sql():
    assert parse_target("latest") is None
    assert parse_target("2026-11-22T08:15:00Z") == at(15)
    assert parse_target("2026-11-22T09:15:00+01:00") == at(15)
    assert parse_target("2026-11-22 08:15:00") == at(15)  # no offset: UTC
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_target("yesterday")
    mariadb, mysql = for_name("mariadb"), for_name("mysql")
    assert reset_binlog_sql(mariadb, "0-1-5") == (
        "RESET MASTER; SET GLOBAL gtid_binlog_state = '0-1-5';"
    )
    assert (
        reset_binlog_sql(mysql, "uuid:1-5") == "RESET MASTER; SET GLOBAL gtid_purged = 'uuid:1-5';"
    )
    assert reset_binlog_sql(mariadb, None) == "RESET MASTER;"
    assert "'x" not in reset_binlog_sql(mariadb, "0-1-5'x")
