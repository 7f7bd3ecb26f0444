"""Binlog lag means data at risk, not an idle database (real MariaDB and RGW).

The exporter's lag is `now - max(newest shipped event, caught-up-at)`, the second from the
shipper's record `<cluster>/binlogs/shipping.json`: an idle server whose shipper runs stays
within the limit however long nobody writes; a stopped shipper, or writes still in the open
binlog, let it grow.
"""

from __future__ import annotations

import time
from pathlib import Path

from mysql_provider.shipping import shipping_cadence

from backup_manager.exporter.sources import read_catalog
from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import read_shipping_status
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.storage import S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection

CLUSTER = "model-0123/binlog-lag-idle"

SERVER_OPTIONS = {"server_id": 11}

LAG = 20  # binlog-max-lag
PERIOD, ROTATE_AFTER = shipping_cadence(LAG)  # the provider's timer: 10 s, 10 s


def lag(storage: S3Storage) -> float:
    """What the exporter reports now for the cluster (its own catalog read)."""
    health = read_catalog(storage, CLUSTER, "", shipping=True)
    assert health.binlog_last_event_at is not None
    return time.time() - health.binlog_last_event_at


def test_an_idle_database_with_shipping_on_stays_within_the_limit(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    server.execute(
        "CREATE DATABASE IF NOT EXISTS idle; CREATE TABLE IF NOT EXISTS idle.t (id INT)"
    )
    server.execute("INSERT INTO idle.t VALUES (1)")
    ship_binlogs(conn, catalog, workdir=tmp_path, flush=True)  # everything is in storage
    lags: list[float] = []
    for _ in range(4):  # 40 s without a write: twice the limit
        time.sleep(PERIOD)
        result = ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=ROTATE_AFTER)
        assert result.shipped == []
        assert result.caught_up_at is not None
        lags.append(lag(storage))
    print(f"lag after each idle cycle: {[round(v, 1) for v in lags]} s (limit {LAG} s)")
    assert max(lags) < LAG

    # bounded writes: a run right after one that recorded leaves the record alone
    before = read_shipping_status(catalog)
    time.sleep(1.5)
    ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=ROTATE_AFTER)
    assert read_shipping_status(catalog) == before


def test_a_write_still_in_the_open_binlog_is_not_caught_up(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    server.execute("CREATE DATABASE IF NOT EXISTS young")
    ship_binlogs(conn, catalog, workdir=tmp_path, flush=True)
    recorded = read_shipping_status(catalog)
    assert recorded is not None
    time.sleep(2)
    server.execute("CREATE TABLE IF NOT EXISTS young.t (id INT); INSERT INTO young.t VALUES (1)")
    written = time.time()

    # the write is too young to rotate: the run ships nothing and confirms nothing
    result = ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=600)

    assert result.shipped == []
    assert result.caught_up_at is None
    assert read_shipping_status(catalog) == recorded
    assert lag(storage) >= time.time() - written


def test_a_stopped_shipper_while_writes_continue_lags_past_the_limit(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    server.execute(
        "CREATE DATABASE IF NOT EXISTS busy; CREATE TABLE IF NOT EXISTS busy.t (id INT)"
    )
    ship_binlogs(conn, catalog, workdir=tmp_path, flush=True)
    assert lag(storage) < PERIOD
    # the shipper stops; writes go on
    started = time.monotonic()
    while time.monotonic() - started < LAG + 3:
        server.execute("INSERT INTO busy.t VALUES (1)")
        time.sleep(2)
    print(f"lag with the shipper stopped for {LAG + 3} s: {lag(storage):.1f} s")
    assert lag(storage) > LAG
