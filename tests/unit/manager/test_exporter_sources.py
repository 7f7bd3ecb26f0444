"""The exporter's sources: the state file and the catalogs, on an in-memory store.

The same reads run against a real RGW in tests/workload/test_exporter.py.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from backup_manager.exporter import sources as sources_mod
from backup_manager.exporter import state_file
from backup_manager.exporter.metrics import Snapshot, render
from backup_manager.exporter.sources import Sources, read_catalog, redact
from backup_manager.exporter.state_file import ClusterEntry, ExporterState, JobOutcomes
from backup_manager.locations import Location
from backup_manager.schedule import Schedule
from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.interface import format_time
from database_backup.storage import ObjectInfo

from ..catalog.counting import PAGE, CountingStore
from ..catalog.memstore import DirMemoryStore
from .fakes import NOW, FakeBucket, FakeS3, add_backup

CLUSTER = "model-uuid/mysql"
SECRET = "SECRET-A"  # a test value


def location(name: str = "s3-a", bucket: str = "bucket-a") -> Location:
    return Location(name=name, bucket=bucket, access_key="AKIA-A", secret_key=SECRET)


def ship(store: FakeBucket, name: str, last_event: datetime.datetime, timeline: str) -> None:
    """A shipped binlog with its index entry, as the provider's shipper writes it."""
    index = BinlogCatalog(Catalog(store, CLUSTER))
    store.put_bytes(index.object_key(timeline, f"{name}.zst"), b"binlog-bytes")
    index.write_entry(
        BinlogEntry(
            name=name,
            timeline=timeline,
            object_name=f"{name}.zst",
            raw_size=100,
            stored_size=len(b"binlog-bytes"),
            sha256="0" * 64,
            compression="zstd",
            encrypted=False,
            created_at=last_event - timedelta(minutes=1),
            last_event_at=last_event,
        )
    )


def drill(store: FakeBucket, backup_id: str, result: str, checked: datetime.datetime) -> None:
    Catalog(store, CLUSTER).write_verification(
        backup_id,
        {
            "backup-id": backup_id,
            "result": result,
            "checked-at": format_time(checked),
            "job-id": None,
            "unit": None,
        },
    )


def test_a_catalog_reads_into_its_health():
    store = FakeBucket("bucket-a")
    add_backup(store, CLUSTER, "20261120T020000Z-0001", hours_ago=50, data=b"x" * 10)
    newest = add_backup(store, CLUSTER, "20261121T020000Z-0002", hours_ago=2, data=b"y" * 20)
    drill(store, "20261120T020000Z-0001", "fail", NOW - timedelta(hours=3))
    drill(store, "20261121T020000Z-0002", "pass", NOW - timedelta(hours=1))
    ship(store, "bin.000007", NOW - timedelta(seconds=90), "20261101T000000Z-aaaa")
    ship(store, "bin.000003", NOW - timedelta(seconds=30), "20261110T000000Z-bbbb")  # newer
    ship(store, "bin.000002", NOW - timedelta(seconds=60), "20261110T000000Z-bbbb")

    health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.catalog_up
    assert health.complete_backups == 2
    assert health.last_complete_at == newest.finished_at.timestamp()
    assert health.last_duration_seconds == 300
    assert health.last_size_bytes == 20
    assert health.storage_bytes == sum(len(data) for data, _ in store.objects.values())
    assert health.binlog_last_event_at == (NOW - timedelta(seconds=30)).timestamp()
    assert health.drill_passed is True
    assert health.drill_checked_at == (NOW - timedelta(hours=1)).timestamp()


def test_no_lag_where_the_cluster_does_not_ship_and_nothing_for_an_empty_catalog():
    store = FakeBucket("bucket-a")
    ship(store, "bin.000001", NOW, "20261101T000000Z-aaaa")

    assert read_catalog(store, CLUSTER, "", shipping=False).binlog_last_event_at is None
    empty = read_catalog(FakeBucket("b"), CLUSTER, "x", shipping=True)
    assert (empty.complete_backups, empty.storage_bytes, empty.last_complete_at) == (0, 0, None)
    assert empty.drill_passed is None
    assert empty.binlog_last_event_at is None


def test_a_listing_past_the_limit_reports_no_bytes_and_no_lag():
    store = FakeBucket("bucket-a")
    for n in range(1, 5):
        ship(store, f"bin.00000{n}", NOW, "20261101T000000Z-aaaa")

    health = read_catalog(store, CLUSTER, "", shipping=True, limit=3)

    assert health.storage_bytes is None
    assert health.binlog_last_event_at is None


def caught_up(store: FakeBucket, at: datetime.datetime, timeline: str) -> None:
    """The shipper's record that it was caught up at `at` (the wire format, written raw)."""
    document = {
        "format-version": 1,
        "caught-up-at": format_time(at),
        "timeline": timeline,
        "position": {"file": "bin.000009", "offset": 385},
        "unit": "mysql/0",
    }
    store.put_bytes(f"{CLUSTER}/binlogs/shipping.json", json.dumps(document).encode())


def test_an_idle_database_caught_up_lately_lags_from_that_moment_not_its_last_write():
    store = FakeBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(days=2), "20261101T000000Z-aaaa")
    caught_up(store, NOW - timedelta(seconds=10), "20261101T000000Z-aaaa")

    health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.binlog_last_event_at == (NOW - timedelta(seconds=10)).timestamp()
    snapshot = Snapshot(now=NOW.timestamp(), locations=(health,))
    assert 'database_backup_binlog_lag_seconds{cluster="model-uuid/mysql",location=""} 10.0' in (
        render(snapshot)
    )


def test_writes_shipped_after_the_last_catch_up_count_from_their_newest_event():
    store = FakeBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(seconds=30), "20261101T000000Z-aaaa")
    caught_up(store, NOW - timedelta(seconds=300), "20261101T000000Z-aaaa")

    health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.binlog_last_event_at == (NOW - timedelta(seconds=30)).timestamp()


def test_a_stopped_shipper_lags_from_its_last_catch_up_however_idle_it_was():
    store = FakeBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(days=2), "20261101T000000Z-aaaa")
    caught_up(store, NOW - timedelta(hours=1), "20261101T000000Z-aaaa")

    health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.binlog_last_event_at == (NOW - timedelta(hours=1)).timestamp()


def test_a_catch_up_on_an_older_timeline_says_nothing_about_the_current_one():
    store = FakeBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(days=2), "20261101T000000Z-aaaa")
    ship(store, "bin.000001", NOW - timedelta(days=1), "20261110T000000Z-bbbb")  # a recovery
    caught_up(store, NOW - timedelta(seconds=10), "20261101T000000Z-aaaa")  # the old server

    health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.binlog_last_event_at == (NOW - timedelta(days=1)).timestamp()


def test_a_catch_up_on_a_new_timeline_counts_before_its_first_file_is_shipped():
    store = FakeBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(days=2), "20261101T000000Z-aaaa")
    store.put_bytes(f"{CLUSTER}/binlogs/20261110T000000Z-bbbb/timeline.json", b"{}")
    caught_up(store, NOW - timedelta(seconds=10), "20261110T000000Z-bbbb")

    health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.binlog_last_event_at == (NOW - timedelta(seconds=10)).timestamp()


def test_a_broken_catch_up_record_is_logged_and_the_lag_comes_from_the_events(
    caplog: pytest.LogCaptureFixture,
):
    store = FakeBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(seconds=90), "20261101T000000Z-aaaa")
    store.put_bytes(f"{CLUSTER}/binlogs/shipping.json", b"{not json")

    with caplog.at_level(logging.WARNING):
        health = read_catalog(store, CLUSTER, "", shipping=True)

    assert health.catalog_up
    assert health.binlog_last_event_at == (NOW - timedelta(seconds=90)).timestamp()
    assert "shipping.json" in caplog.text


class DirBucket(FakeBucket, DirMemoryStore):
    """A bucket that lists directories, as S3Storage does."""


class CountingBucket(FakeBucket):
    """Notes every GET."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gets: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.gets.append(key)
        return super().get_bytes(key)


def test_the_catch_up_record_costs_one_get_and_none_where_the_cluster_does_not_ship():
    store = CountingBucket("bucket-a")
    ship(store, "bin.000008", NOW - timedelta(days=2), "20261101T000000Z-aaaa")
    caught_up(store, NOW - timedelta(seconds=10), "20261101T000000Z-aaaa")
    record = f"{CLUSTER}/binlogs/shipping.json"

    read_catalog(store, CLUSTER, "", shipping=False)
    assert record not in store.gets
    read_catalog(store, CLUSTER, "", shipping=True)
    assert store.gets.count(record) == 1


def test_one_read_at_500_backups_costs_the_index_a_listing_and_two_gets():
    """The backups come from the catalog index, not a GET of each backup.json."""
    store = DirBucket("bucket-a")
    start = NOW - timedelta(days=30)
    for n in range(500):
        started = start + timedelta(minutes=80 * n)
        backup_id = f"{started:%Y%m%dT%H%M%SZ}-{n:04d}"
        hours = (NOW - started).total_seconds() / 3600 - 0.5
        add_backup(store, CLUSTER, backup_id, hours_ago=hours)
    ship(store, "bin.000003", NOW - timedelta(seconds=30), "20261110T000000Z-bbbb")
    caught_up(store, NOW - timedelta(seconds=10), "20261110T000000Z-bbbb")
    expected = read_catalog(store, CLUSTER, "", shipping=True)  # the index is current
    counting = CountingStore(store)

    health = read_catalog(counting, CLUSTER, "", shipping=True)

    assert health == expected
    assert health.complete_backups == 500
    # GETs: index.json, the newest binlog's entry, shipping.json (never a backup.json);
    # listings: the backup ids after the index's newest, and the prefix for its bytes and
    # newest binlog (a page per 1,000 objects: 500 backups hold 1,000 and more)
    pages = math.ceil(len(list(store.list(f"{CLUSTER}/"))) / PAGE)
    assert pages == 2
    assert counting.counts == {"get": 3, "list": 1 + pages}, counting.counts


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def write_state(
    path: Path, *, shipping: str | None = "s3-a", locations: dict[str, Location] | None = None
) -> None:
    entry = ClusterEntry(
        cluster=CLUSTER,
        app="mysql",
        binlog_max_lag=60 if shipping else None,
        shipping_location=shipping,
        schedule_max_interval=86400,
        jobs={"backup": JobOutcomes(failed_at=(format_time(NOW),), last_failed=True)},
    )
    state_file.write(
        ExporterState(locations=locations or {"s3-a": location()}, clusters=(entry,)), path
    )


@pytest.fixture
def s3_store() -> FakeS3:
    return FakeS3()


def sources_for(path: Path, s3: FakeS3, clock: Clock) -> Sources:
    return Sources(path, opener=s3.open, clock=clock)


def test_storage_is_read_at_most_once_a_minute_whatever_the_scrape_rate(
    tmp_path: Path, s3_store: FakeS3, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "exporter.json"
    write_state(path)
    bucket = s3_store.bucket("bucket-a")
    add_backup(bucket, CLUSTER, "20261121T020000Z-0002", hours_ago=2)
    reads: list[str] = []
    original = bucket.list

    def counting(prefix: str = "") -> Iterator[ObjectInfo]:
        reads.append(prefix)
        return original(prefix)

    monkeypatch.setattr(bucket, "list", counting)
    clock = Clock()
    sources = sources_for(path, s3_store, clock)
    sources.load()
    assert sources.refresh_due()
    sources.refresh()
    first = len(reads)
    assert first > 0

    for _ in range(20):  # scrapes
        render(sources.snapshot())
        clock.now += 2
    assert not sources.refresh_due()
    assert len(reads) == first

    clock.now += 30  # 70 s after the read
    assert sources.refresh_due()


def test_a_storage_error_marks_the_catalog_down_and_keeps_its_last_readings(
    tmp_path: Path, s3_store: FakeS3, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "exporter.json"
    write_state(path)
    bucket = s3_store.bucket("bucket-a")
    add_backup(bucket, CLUSTER, "20261121T020000Z-0002", hours_ago=2)
    clock = Clock()
    sources = sources_for(path, s3_store, clock)
    sources.load()
    sources.refresh()
    [before] = sources.snapshot().locations
    assert before.catalog_up
    assert before.complete_backups == 1

    bucket.denied = True
    clock.now += 61
    sources.refresh()

    [after] = sources.snapshot().locations
    assert not after.catalog_up
    assert after.complete_backups == 1  # the last reading stays: alerts need no gap
    assert "AccessDeniedError" in caplog.text
    assert SECRET not in caplog.text


def test_a_location_never_read_is_down_with_nothing_else(tmp_path: Path, s3_store: FakeS3):
    path = tmp_path / "exporter.json"
    write_state(path)
    s3_store.bucket("bucket-a").denied = True
    sources = sources_for(path, s3_store, Clock())
    sources.load()
    sources.refresh()

    [health] = sources.snapshot().locations
    assert health == sources_mod.LocationHealth(CLUSTER, "s3-a", catalog_up=False)


def test_the_default_location_is_labelled_empty_and_jobs_come_from_the_file(
    tmp_path: Path, s3_store: FakeS3
):
    path = tmp_path / "exporter.json"
    write_state(path, shipping="default", locations={"default": location("default", "bucket-d")})
    sources = sources_for(path, s3_store, Clock())
    sources.load()
    sources.refresh()

    snapshot = sources.snapshot()

    assert [h.location for h in snapshot.locations] == [""]
    [job] = snapshot.jobs
    assert (job.job_type, job.failed_at, job.last_failed) == ("backup", (NOW.timestamp(),), True)
    [settings] = snapshot.clusters
    assert settings.binlog_max_lag_seconds == 60
    assert settings.schedule_max_interval_seconds == 86400


def test_a_broken_file_keeps_the_previous_state(tmp_path: Path, s3_store: FakeS3):
    path = tmp_path / "exporter.json"
    write_state(path)
    sources = sources_for(path, s3_store, Clock())
    sources.load()
    path.write_text("{not json")

    sources.reload()

    assert [c.cluster for c in sources.state.clusters] == [CLUSTER]


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(state_file.StateFileError, match=r"cannot read .*exporter\.json"):
        state_file.read(tmp_path / "exporter.json")
    (tmp_path / "newer.json").write_text(json.dumps({"format-version": 99}))
    with pytest.raises(state_file.StateFileError, match="format-version 99"):
        state_file.read(tmp_path / "newer.json")


def test_changed_credentials_are_read_at_once(tmp_path: Path, s3_store: FakeS3):
    path = tmp_path / "exporter.json"
    write_state(path)
    clock = Clock()
    sources = sources_for(path, s3_store, clock)
    sources.load()
    sources.refresh()
    assert not sources.refresh_due()

    write_state(path, locations={"s3-a": location(bucket="bucket-new")})
    sources.reload()

    assert sources.refresh_due()


def test_redact_hides_both_keys():
    text = redact("key AKIA-A secret SECRET-A", {"a": location()})
    assert text == "key *** secret ***"


@pytest.mark.parametrize(
    ("main", "full", "gap"),
    [
        ("0 2 * * *", "", 86400),
        ("0 2 * * 1", "", 7 * 86400),
        ("0 2 * * 1-5", "", 3 * 86400),  # Friday to Monday
        ("*/5 * * * *", "0 3 * * 0", 300),
        ("0 */6 * * *", "30 1 * * *", 6 * 3600),
        ("", "", None),
    ],
)
def test_the_longest_gap_between_scheduled_backups(main: str, full: str, gap: float | None):
    start = datetime.datetime(2026, 11, 29, 4, 0, tzinfo=datetime.timezone.utc)
    assert state_file.max_interval(Schedule(main, "full", full), start) == gap


def test_a_broken_file_is_logged_once_not_at_every_poll(
    tmp_path: Path, s3_store: FakeS3, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "exporter.json"
    write_state(path)
    sources = sources_for(path, s3_store, Clock())
    sources.load()
    path.unlink()

    for _ in range(5):  # polls every 5 s
        sources.reload()

    assert caplog.text.count("keeping the previous state") == 1
    write_state(path)
    sources.reload()
    path.write_text("[]")
    sources.reload()
    assert caplog.text.count("keeping the previous state") == 2  # a new problem: said again


def test_a_lasting_storage_error_is_logged_once_and_its_end_too(
    tmp_path: Path, s3_store: FakeS3, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    path = tmp_path / "exporter.json"
    write_state(path)
    bucket = s3_store.bucket("bucket-a")
    bucket.denied = True
    clock = Clock()
    sources = sources_for(path, s3_store, clock)
    sources.load()

    for _ in range(3):  # three minutes of refreshes
        sources.refresh()
        clock.now += 61
    bucket.denied = False
    sources.refresh()

    assert caplog.text.count("reading the catalog of model-uuid/mysql at 's3-a' failed") == 1
    assert caplog.text.count("reading the catalog of model-uuid/mysql at 's3-a' works again") == 1


def test_the_lag_is_measured_at_the_read_not_grown_by_the_read_interval(
    tmp_path: Path, s3_store: FakeS3
):
    # storage is read once a minute; an idle database caught up 10 s before that read must
    # not show 10 + 50 s of lag at a scrape 50 s later (with a 60 s RPO the alert would fire
    # for part of every minute, and forever if Prometheus evaluates in phase with the reads)
    path = tmp_path / "exporter.json"
    write_state(path)
    bucket = s3_store.bucket("bucket-a")
    ship(bucket, "bin.000008", NOW - timedelta(days=2), "20261101T000000Z-aaaa")
    caught_up(bucket, NOW - timedelta(seconds=10), "20261101T000000Z-aaaa")
    clock = Clock()
    sources = sources_for(path, s3_store, clock)
    sources.load()
    sources.refresh()

    clock.now += 50
    text = render(sources.snapshot())

    lag = 'database_backup_binlog_lag_seconds{cluster="model-uuid/mysql",location="s3-a"}'
    assert f"{lag} 10.0" in text
