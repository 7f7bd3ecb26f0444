"""The timeline-ownership rule of binlog shipping, on synthetic binlogs and an in-memory store.

Two servers' binlogs carry the same names (`bin.000001`...); only the server that wrote a
timeline continues it, any other one starts a new timeline whose parent is the current
one. The workload test (tests/workload/test_binlog_owner.py) runs it on real servers.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.mysql.binlog.reader import (
    FORMAT_DESCRIPTION_EVENT,
    MAGIC,
    MARIADB_GTID_EVENT,
    MARIADB_GTID_LIST_EVENT,
    ROTATE_EVENT,
    summarize_file,
)
from database_backup.mysql.binlog.timeline_owner import (
    MARKER_NAME,
    FileIdentity,
    claim_new_timeline,
    local_identity,
    own_timeline,
    read_marker,
)
from database_backup.mysql.pitr.plan import RecoveryError, plan_recovery
from tests.unit.catalog.factories import SHA
from tests.unit.catalog.memstore import MemoryStore

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
QUERY_EVENT = 2


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _event(kind: int, moment: datetime, body: bytes, server_id: int = 1) -> bytes:
    size = 19 + len(body) + 4
    header = struct.pack("<IBIIIH", int(moment.timestamp()), kind, server_id, size, 0, 0)
    return header + body + b"\0" * 4


def write_binlog(
    directory: Path, number: int, created: float, seq: int, *, rows: int = 1, server_id: int = 1
) -> tuple[str, int]:
    """A closed MariaDB binlog `bin.<number>` created at `at(created)`, GTIDs from `seq`."""
    moment = at(created)
    events = [
        _event(FORMAT_DESCRIPTION_EVENT, moment, b"\0" * 80, server_id),
        _event(MARIADB_GTID_LIST_EVENT, moment, struct.pack("<IIIQ", 1, 0, server_id, seq - 1)),
    ]
    for offset in range(rows):
        gtid = struct.pack("<QIB", seq + offset, 0, 0) + b"\0" * 6
        events.append(_event(MARIADB_GTID_EVENT, moment, gtid, server_id))
        events.append(_event(QUERY_EVENT, moment + timedelta(seconds=1), b"x" * 30, server_id))
    events.append(_event(ROTATE_EVENT, moment + timedelta(seconds=2), b"\0" * 8, server_id))
    path = directory / f"bin.{number:06d}"
    path.write_bytes(MAGIC + b"".join(events))
    return path.name, path.stat().st_size


class Shipper:
    """One server's binlog directory and work directory, shipping into a shared catalog."""

    def __init__(self, root: Path, name: str, index: BinlogCatalog, server_id: int) -> None:
        self.dir = root / name / "binlog"
        self.work = root / name / "work"
        self.dir.mkdir(parents=True)
        self.index = index
        self.server_id = server_id
        self.files: list[tuple[str, int]] = []

    def write(self, number: int, created: float, seq: int, rows: int = 1) -> None:
        self.files.append(write_binlog(self.dir, number, created, seq, rows=rows))

    def own(self, now: float) -> tuple[str, set[str], str | None]:
        active = [*self.files, ("bin.999999", 0)]  # the server's active file: never shipped
        owned = own_timeline(
            self.index, self.work, self.dir, active, server_id=self.server_id, now=at(now)
        )
        return owned.timeline.timeline_id, owned.shipped, owned.forked_because

    def ship(self, now: float) -> str:
        """What ship_binlogs does with the files (the object is a stand-in)."""
        timeline, shipped, _why = self.own(now)
        for name, _size in self.files:
            if name not in shipped:
                self.index.write_entry(_entry(self.index, timeline, self.dir / name))
        return timeline


def _entry(index: BinlogCatalog, timeline: str, path: Path) -> BinlogEntry:
    summary = summarize_file(str(path))
    entry = BinlogEntry(
        name=path.name, timeline=timeline, object_name=path.name,
        raw_size=path.stat().st_size, stored_size=4, sha256=SHA, compression="none",
        encrypted=False, created_at=datetime.fromtimestamp(summary.created, timezone.utc),
        last_event_at=datetime.fromtimestamp(summary.last_event, timezone.utc),
        first_event_at=datetime.fromtimestamp(summary.first_event or 0, timezone.utc),
        gtid_list=summary.gtid_list, first_gtids=sorted(summary.first_gtids.values()),
        last_gtids=sorted(summary.last_gtids.values()), server_ids=sorted(summary.server_ids),
    )  # fmt: skip
    index.storage.put_bytes(index.object_key(timeline, path.name), b"data")
    return entry


@pytest.fixture
def index() -> BinlogCatalog:
    return BinlogCatalog(Catalog(MemoryStore(), "model/mysql-server"))


def _names(index: BinlogCatalog, timeline: str) -> list[str]:
    return [entry.name for entry in index.entries(timeline)]


def test_the_first_shipment_starts_a_timeline_and_its_owner_continues_it(
    index: BinlogCatalog, tmp_path: Path
):
    old = Shipper(tmp_path, "old", index, 1)
    old.write(1, 0, 1)
    first = old.ship(now=5)
    marker = read_marker(old.work, _location(index))
    assert marker is not None
    assert marker.timeline == first
    assert (old.work / MARKER_NAME).stat().st_mode & 0o777 == 0o600
    old.write(2, 6, 2)
    assert old.ship(now=10) == first
    assert _names(index, first) == ["bin.000001", "bin.000002"]
    assert [t.timeline_id for t in index.timelines()] == [first]


def test_a_fresh_server_with_the_same_names_starts_its_own_timeline(
    index: BinlogCatalog, tmp_path: Path
):
    old = Shipper(tmp_path, "old", index, 1)
    old.write(1, 0, 1, rows=3)
    old.write(2, 3, 4)
    first = old.ship(now=5)

    new = Shipper(tmp_path, "new", index, 1)  # redeployed: server-id 1 again
    new.write(1, 20, 1)
    new.write(2, 22, 2, rows=2)
    timeline, shipped, why = new.own(now=30)

    assert timeline != first
    assert shipped == set()  # its bin.000001/2 are not the shipped ones
    assert why is not None
    assert "are not the files of that name" in why
    forked = index.timelines()[-1]
    assert forked.timeline_id == timeline
    assert forked.parent == first
    assert forked.created_at == at(20)  # its history starts with its first binlog
    assert new.ship(now=31) == timeline
    assert _names(index, timeline) == ["bin.000001", "bin.000002"]
    assert _names(index, first) == ["bin.000001", "bin.000002"]
    assert index.entries(first)[0].raw_size == old.files[0][1] != new.files[0][1]
    # and from now on it continues its own timeline
    new.write(3, 32, 4)
    assert new.ship(now=40) == timeline
    assert _names(index, timeline) == ["bin.000001", "bin.000002", "bin.000003"]


def test_a_fresh_server_without_overlapping_names_forks_too(index: BinlogCatalog, tmp_path: Path):
    old = Shipper(tmp_path, "old", index, 1)
    old.write(1, 0, 1)
    first = old.ship(now=5)
    new = Shipper(tmp_path, "new", index, 2)
    new.write(7, 10, 1)
    timeline, shipped, why = new.own(now=30)
    assert timeline != first
    assert shipped == set()
    assert why == f"this server did not write timeline {first}"


def test_without_a_marker_its_own_shipped_files_prove_ownership(
    index: BinlogCatalog, tmp_path: Path
):
    """An upgrade from a version without markers, or a lost work directory."""
    server = Shipper(tmp_path, "server", index, 1)
    server.write(1, 0, 1)
    server.write(2, 2, 2)
    first = server.ship(now=5)
    (server.work / MARKER_NAME).unlink()
    server.write(3, 6, 3)
    timeline, shipped, why = server.own(now=10)
    assert (timeline, why) == (first, None)
    assert {"bin.000001", "bin.000002"} <= shipped
    marker = read_marker(server.work, _location(index))
    assert marker is not None
    assert marker.timeline == first
    assert set(marker.verified) == {"bin.000001", "bin.000002"}


def test_a_reset_binary_log_under_the_owned_timeline_is_never_taken_as_shipped(
    index: BinlogCatalog, tmp_path: Path
):
    server = Shipper(tmp_path, "server", index, 1)
    server.write(1, 0, 1)
    server.write(2, 2, 2)
    first = server.ship(now=5)
    # RESET MASTER by hand: the names start again with other contents
    server.files = []
    server.write(1, 10, 3, rows=2)
    timeline, shipped, why = server.own(now=15)
    assert timeline != first
    assert shipped == set()
    assert why is not None
    assert "bin.000001" in why
    assert index.timelines()[-1].parent == first
    assert index.timelines()[-1].created_at == at(10)


def test_a_marker_naming_an_older_timeline_forks_after_the_current_one(
    index: BinlogCatalog, tmp_path: Path
):
    """Unit A shipped, unit B took over (its own timeline), then A ships again."""
    unit_a = Shipper(tmp_path, "a", index, 1)
    unit_a.write(1, 0, 1)
    first = unit_a.ship(now=2)
    unit_b = Shipper(tmp_path, "b", index, 2)
    unit_b.write(1, 1, 1)
    second = unit_b.ship(now=10)
    # B's binlog is older than A's timeline: B's timeline starts just after A's does
    assert index.timelines()[-1].created_at == at(2) + timedelta(milliseconds=1)
    unit_a.write(2, 3, 2)
    third, shipped, why = unit_a.own(now=20)
    assert third not in (first, second)
    assert shipped == set()
    assert why is not None
    assert first in why
    timelines = {t.timeline_id: t for t in index.timelines()}
    assert timelines[third].parent == second
    # its local history began before B's timeline ended: the new one starts after it
    assert timelines[third].created_at > timelines[second].created_at


def test_a_marker_of_another_storage_location_is_ignored(index: BinlogCatalog, tmp_path: Path):
    server = Shipper(tmp_path, "server", index, 1)
    server.write(1, 0, 1)
    server.ship(now=5)
    marker = json.loads((server.work / MARKER_NAME).read_text())
    assert read_marker(server.work, "elsewhere|bucket||model/mysql-server") is None
    assert read_marker(server.work, marker["location"]) is not None


def test_a_recovery_claims_its_new_timeline(index: BinlogCatalog, tmp_path: Path):
    server = Shipper(tmp_path, "server", index, 1)
    server.write(1, 0, 1)
    first = server.ship(now=5)
    recovered = index.create_timeline(now=at(10), parent=first, reason="recovery")
    claim_new_timeline(server.work, index.catalog, recovered.timeline_id)
    server.files = []
    server.write(1, 10, 2)  # RESET MASTER by the recovery: its bin.000001 is new
    assert server.ship(now=12) == recovered.timeline_id
    assert [t.timeline_id for t in index.timelines()] == [first, recovered.timeline_id]


def test_file_identity_matches_only_the_same_file(tmp_path: Path):
    name, size = write_binlog(tmp_path, 1, 0, 5, rows=2)
    entry = _entry(BinlogCatalog(Catalog(MemoryStore(), "m/a")), "tl", tmp_path / name)
    identity = local_identity(tmp_path / name, size)
    assert identity == FileIdentity(size, int(at(0).timestamp()), ("0-1-4",), "0-1-5")
    assert identity.matches(entry)
    assert FileIdentity.from_dict(identity.to_dict()) == identity
    for other in (
        replace(entry, raw_size=size + 1),
        replace(entry, created_at=at(1)),
        replace(entry, gtid_list=["0-1-3"]),
        replace(entry, first_gtids=["0-1-6"]),
    ):
        assert not identity.matches(other)


def test_planning_across_the_new_servers_timeline(index: BinlogCatalog, tmp_path: Path):
    """PITR after the redeploy uses the new server's backup and logs; before it, the old."""
    old = Shipper(tmp_path, "old", index, 1)
    old.write(1, 0, 1, rows=3)
    _backup(index.catalog, "b-old", 0.5, "bin.000001", "0-1-1")
    old.write(2, 3, 4)
    first = old.ship(now=5)
    new = Shipper(tmp_path, "new", index, 1)
    new.write(1, 20, 1, rows=3)
    _backup(index.catalog, "b-new", 20.5, "bin.000001", "0-1-1")  # before its first shipment
    new.write(2, 23, 4)
    second = new.ship(now=30)

    after = plan_recovery(index.catalog, at(23) + timedelta(seconds=1))
    assert (after.timeline.timeline_id, after.backup.backup_id) == (second, "b-new")
    assert [entry.timeline for entry in after.files] == [second, second]
    before = plan_recovery(index.catalog, at(3) + timedelta(seconds=1))
    assert (before.timeline.timeline_id, before.backup.backup_id) == (first, "b-old")
    latest = plan_recovery(index.catalog, None)
    assert (latest.timeline.timeline_id, latest.backup.backup_id) == (second, "b-new")
    # between the old server's last shipped event and the new server's start: refused
    with pytest.raises(RecoveryError, match="after the last shipped binlog event"):
        plan_recovery(index.catalog, at(10))
    with pytest.raises(RecoveryError, match="before the first backup"):
        plan_recovery(index.catalog, at(20) + timedelta(seconds=10))


def _backup(catalog: Catalog, backup_id: str, started: float, binlog: str, gtid: str) -> None:
    catalog.storage.put_bytes(catalog.artefact_key(backup_id, "data.xbstream"), b"data")
    meta = BackupMetadata(
        backup_id=backup_id, kind="full", started_at=at(started),
        finished_at=at(started + 0.1), artefacts=["data.xbstream"], stored_size=4,
        sha256=SHA, compression="none", encrypted=False, flavour="mariadb",
        server_version="10.11.6", binlog_file=binlog, binlog_position=4,
        from_lsn=0, to_lsn=100, gtid_set=gtid,
    )  # fmt: skip
    catalog.write_metadata(meta)


def _location(index: BinlogCatalog) -> str:
    from database_backup.mysql.binlog.timeline_owner import location_of

    return location_of(index.catalog)
