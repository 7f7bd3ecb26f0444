"""Point-in-time replay applies transactions bigger than the server's default packet limit.

`mariadb-binlog` prints each row-based statement's events as one `BINLOG '...'` statement,
a third bigger than the events themselves: a single UPDATE of a large table is a packet
over the client's and the server's default `max_allowed_packet` (16 MiB).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from database_backup.mysql.binlog.replay import replay
from database_backup.mysql.flavour import for_name
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, shutdown

ROWS = 150_000


@pytest.fixture(scope="module")
def target(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    """A second, empty server the source's binlogs are replayed into."""
    db = make_mariadb("replay-target", server_id=2)
    yield db
    shutdown(db)


def test_a_transaction_larger_than_the_default_packet_limit_is_replayed(
    server: MariaDBServer, target: MariaDBServer, tmp_path: Path
) -> None:
    server.execute(
        "CREATE DATABASE big; USE big;"  # noqa: S608 - test data
        "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(200)) ENGINE=InnoDB;"
        f"INSERT INTO t SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_{ROWS};"
        "UPDATE t SET note = REPEAT(SHA1(id), 4);"  # one statement, every row
    )
    server.execute("FLUSH BINARY LOGS")
    files = sorted(server.binlog_dir.glob("bin.[0-9]*"))[:-1]
    assert sum(path.stat().st_size for path in files) > 24 * 1024 * 1024
    assert int(server.scalar("SELECT @@max_allowed_packet")) <= 16 * 1024 * 1024

    target.execute("RESET MASTER")  # its own set-up GTIDs would be out of order with the source's
    replay(connection(target), for_name("mariadb"), files, workdir=tmp_path)

    assert target.checksum_tables("big") == server.checksum_tables("big")
    # the server's own limit is back to what it was
    assert target.scalar("SELECT @@max_allowed_packet") == server.scalar(
        "SELECT @@max_allowed_packet"
    )
