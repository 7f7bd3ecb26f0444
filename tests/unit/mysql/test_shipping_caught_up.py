"""The shipper's caught-up record: its document, and how often a run writes it.

Runs against a real MariaDB and RGW in tests/workload/test_binlog_lag_idle.py.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import (
    ShippingStatus,
    read_shipping_status,
    shipping_status_key,
    write_shipping_status,
)
from database_backup.catalog.errors import MetadataError
from database_backup.mysql.binlog.shipping import record_caught_up
from tests.unit.catalog.memstore import MemoryStore

CLUSTER = "model-uuid/mysql"
T = datetime(2026, 11, 29, 4, 0, 0, tzinfo=timezone.utc)
TIMELINE = "20261101T000000Z-aaaa"


def status(at: datetime = T, timeline: str = TIMELINE) -> ShippingStatus:
    return ShippingStatus(
        caught_up_at=at, timeline=timeline, binlog_file="bin.000009", binlog_offset=385,
        unit="mysql/0",
    )  # fmt: skip


def test_the_record_round_trips_and_is_absent_before_the_first_write():
    catalog = Catalog(MemoryStore(), CLUSTER)
    assert read_shipping_status(catalog) is None

    write_shipping_status(catalog, status())

    assert read_shipping_status(catalog) == status()
    raw = json.loads(catalog.storage.get_bytes(f"{CLUSTER}/binlogs/shipping.json"))
    assert raw["position"] == {"file": "bin.000009", "offset": 385}
    assert raw["timeline"] == TIMELINE


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"format-version": 9}', "unknown format-version"),
        (b'{"format-version": 1, "timeline": "t"}', "lacks its timeline or binlog position"),
        (
            b'{"format-version": 1, "timeline": "t", "position": {"file": "b.1", "offset": -1}}',
            "invalid binlog offset",
        ),
        (
            b'{"format-version": 1, "timeline": "t", "position": {"file": "b.1", "offset": 4},'
            b' "caught-up-at": "yesterday"}',
            "not an ISO 8601 time",
        ),
    ],
)
def test_a_malformed_record_is_a_clear_error(document: bytes, says: str):
    catalog = Catalog(MemoryStore(), CLUSTER)
    catalog.storage.put_bytes(shipping_status_key(catalog), document)
    with pytest.raises(MetadataError, match=says):
        read_shipping_status(catalog)


def puts(store: MemoryStore) -> int:
    return store.writes.count(f"{CLUSTER}/binlogs/shipping.json")


def test_a_caught_up_run_writes_at_most_once_per_interval(tmp_path: Path):
    store = MemoryStore()
    catalog = Catalog(store, CLUSTER)

    assert record_caught_up(tmp_path, catalog, status(T), every=15)
    assert not record_caught_up(tmp_path, catalog, status(T + timedelta(seconds=10)), every=15)
    assert record_caught_up(tmp_path, catalog, status(T + timedelta(seconds=15)), every=15)

    assert puts(store) == 2
    assert read_shipping_status(catalog) == status(T + timedelta(seconds=15))


def test_another_timeline_another_cluster_or_a_clock_gone_back_writes_at_once(tmp_path: Path):
    store = MemoryStore()
    catalog = Catalog(store, CLUSTER)
    record_caught_up(tmp_path, catalog, status(T), every=600)

    assert record_caught_up(tmp_path, catalog, status(T, "20261110T000000Z-bbbb"), every=600)
    other = Catalog(store, "model-uuid/other")
    assert record_caught_up(tmp_path, other, status(T, "20261110T000000Z-bbbb"), every=600)
    later = T + timedelta(seconds=1)
    assert record_caught_up(tmp_path, other, status(later, "20261110T000000Z-bbbb"), every=0)
    assert record_caught_up(
        tmp_path, other, status(T - timedelta(hours=1), "20261110T000000Z-bbbb"), every=600
    )


class RefusingStore(MemoryStore):
    def put_bytes(self, key: str, data: bytes) -> None:
        raise PermissionError("AccessDenied")


def test_a_refused_write_is_logged_not_raised_and_tried_again_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    catalog = Catalog(RefusingStore(), CLUSTER)
    with caplog.at_level(logging.WARNING):
        assert not record_caught_up(tmp_path, catalog, status(T), every=600)
    assert "could not record in storage that shipping is caught up" in caplog.text

    working = Catalog(MemoryStore(), CLUSTER)
    assert record_caught_up(tmp_path, working, status(T + timedelta(seconds=1)), every=600)
