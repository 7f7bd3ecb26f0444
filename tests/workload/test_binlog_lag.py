"""Bounded RPO on a real MariaDB and RGW: a quiet server's write reaches storage in time.

The open binlog is rotated and shipped once its oldest event reaches the rotation age the
provider asks for (lag - period); an idle server is never rotated.
"""

from __future__ import annotations

import time
from pathlib import Path

from mysql_provider.shipping import shipping_cadence

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.mysql.binlog.shipping import ship_binlogs
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection

CLUSTER = "model-0123/binlog-lag"

SERVER_OPTIONS = {"server_id": 9}

LAG = 20  # the RPO asked for (max-lag-seconds)
PERIOD, ROTATE_AFTER = shipping_cadence(LAG)  # what the provider sets up: 10 s, 10 s


def _shipped_seq(catalog: Catalog) -> int:
    """The highest GTID sequence number of domain 0 in storage (0 when none)."""
    index = BinlogCatalog(catalog)
    best = 0
    for timeline in index.timelines():
        for entry in index.entries(timeline.timeline_id):
            for gtid in entry.last_gtids:
                domain, _server, seq = gtid.split("-")
                if domain == "0":
                    best = max(best, int(seq))
    return best


def _files(server: MariaDBServer) -> list[str]:
    return [row[0] for row in server.query("SHOW BINARY LOGS")]


def test_a_quiet_servers_write_reaches_storage_within_the_lag(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    conn = connection(server)
    rotate_after = ROTATE_AFTER
    server.execute("CREATE DATABASE IF NOT EXISTS quiet; FLUSH BINARY LOGS;")
    ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=rotate_after)
    last_run = time.monotonic()  # the timer runs PERIOD seconds after a run ends
    time.sleep(2)  # just after a run: the next one finds the write too young (worst case)
    server.execute("CREATE TABLE quiet.t (id INT PRIMARY KEY); INSERT INTO quiet.t VALUES (1)")
    written = time.monotonic()
    wanted = int(server.scalar("SELECT @@gtid_binlog_pos").split("-")[2])
    assert _shipped_seq(catalog) < wanted  # the write is only in the open binlog
    elapsed = None
    while time.monotonic() - written < LAG + 2 * PERIOD:
        time.sleep(max(0.0, last_run + PERIOD - time.monotonic()))
        ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=rotate_after)
        last_run = time.monotonic()
        if _shipped_seq(catalog) >= wanted:
            elapsed = time.monotonic() - written
            break
    print(f"write shipped after {elapsed} s (lag {LAG} s, period {PERIOD} s)")
    assert elapsed is not None, f"the write was not shipped within {LAG + 2 * PERIOD} s"
    assert elapsed <= LAG + PERIOD

    # idle now: later runs neither rotate nor ship anything
    files = _files(server)
    for _ in range(3):
        time.sleep(rotate_after / 2 + 1)
        idle = ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=rotate_after)
        assert idle.shipped == []
    assert _files(server) == files


def test_a_fresh_write_is_left_in_the_open_binlog_until_it_ages(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    conn = connection(server)
    server.execute("CREATE DATABASE IF NOT EXISTS young; FLUSH BINARY LOGS;")
    ship_binlogs(conn, catalog, workdir=tmp_path)
    server.execute("CREATE TABLE young.t (id INT PRIMARY KEY); INSERT INTO young.t VALUES (1)")
    files = _files(server)
    result = ship_binlogs(conn, catalog, workdir=tmp_path, rotate_after=600)
    assert result.shipped == []
    assert _files(server) == files
