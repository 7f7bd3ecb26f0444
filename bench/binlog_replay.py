"""Binlog replay of point-in-time recovery against the bare `mariadb-binlog | mariadb`.

Run: ``uv run --frozen python -m bench.binlog_replay --size-mb 64`` (a few minutes;
``--size-mb 1024`` for the 1 GiB figure of issue 14). It starts its own Ceph RGW and two
MariaDB servers (tests/infra), the target configured like the mysql-server charm's
(`log_slave_updates` ON, the source's server id), writes about ``--size-mb`` of
row-format binlogs on the source (batched inserts and updates), ships them with
``ship_binlogs`` (zstd + encryption), then replays the same files into the target from
the same empty state each time, ``--rounds`` rounds with the three kinds interleaved:

- bare: ``mariadb-binlog <the local files> | mariadb`` (a shell pipe, nothing else);
- client pipe (the old route): ``replay.replay(route="client-pipe")``, each file fetched
  from S3, verified, decrypted and decompressed one ahead of the replay;
- applier (the new route): ``replay.replay()`` (MariaDB's replication applier, parallel
  workers), the files fetched the same way, staged one ahead of the applier.

Every replay is checked against the source's CHECKSUM TABLE. It prints the medians, the
rates and the speed-ups bare/route (time ratio; target for the applier >= 1.5).
The product runs in this process (its imports are paid once, ~1 s), the server is reset
between runs (database dropped, binary log emptied) and the page cache is not dropped.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.mysql import ConnectionSpec
from database_backup.mysql.binlog.replay import APPLIER, AUTO, CLIENT_PIPE, replay
from database_backup.mysql.binlog.shipping import ship_binlogs
from database_backup.mysql.flavour import for_name
from database_backup.mysql.pitr.recover import download_binlog
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer

MiB = 1 << 20
CLUSTER = "bench/binlogs"
BASELINE = "bare mariadb-binlog | mariadb"
PIPE = "client pipe (old route), from S3"
APPLY = "applier (new route), from S3"


def _conn(server: MariaDBServer) -> ConnectionSpec:
    return ConnectionSpec(
        user=server.user, password=server.password, host=server.host, port=server.port
    )


def write_binlogs(server: MariaDBServer, size_mb: int, file_mb: int) -> None:
    """Batched inserts and updates until the binlogs hold about `size_mb` (`file_mb` files)."""
    server.execute(
        "CREATE DATABASE bench; CREATE TABLE bench.t (id INT PRIMARY KEY, n INT, "
        "payload VARCHAR(200)) ENGINE=InnoDB;"
    )
    batch, first = 20_000, 1
    while _binlog_bytes(server) < size_mb * MiB:
        last = first + batch - 1
        server.execute(
            f"INSERT INTO bench.t SELECT seq, seq % 1000, REPEAT(MD5(seq), 5) "  # noqa: S608
            f"FROM bench.seq_{first}_to_{last};"
            f"UPDATE bench.t SET n = n + 1 WHERE id BETWEEN {first} AND {first + batch // 4};"
        )
        first = last + 1
        if int(server.query("SHOW MASTER STATUS")[0][1]) > file_mb * MiB:
            server.execute("FLUSH BINARY LOGS")


def _binlog_bytes(server: MariaDBServer) -> int:
    return sum(int(row[1]) for row in server.query("SHOW BINARY LOGS"))


def reset(target: MariaDBServer) -> None:
    """Empty state: no bench database, an empty binary log (GTID strict mode)."""
    target.execute("DROP DATABASE IF EXISTS bench; RESET MASTER;")


def baseline(target: MariaDBServer, files: list[Path]) -> float:
    """Time of `mariadb-binlog files | mariadb`."""
    names = " ".join(str(path) for path in files)
    command = (
        f"mariadb-binlog {names} | mariadb --defaults-file={target.defaults_file} --binary-mode"
    )
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.monotonic() - started


def product(
    target: MariaDBServer,
    index: BinlogCatalog,
    timeline: str,
    key: bytes,
    work: Path,
    *,
    route: str,
) -> float:
    """Time of the recovery's replay, fetching each shipped file from S3 one ahead."""
    flavour = for_name("mariadb")
    entries = index.entries(timeline)
    fetch_dir = work / "fetched"

    def fetcher(entry: BinlogEntry) -> Callable[[], Path]:
        return lambda: download_binlog(index, entry, fetch_dir, key)

    started = time.monotonic()
    sources: list[Path | Callable[[], Path]] = [fetcher(entry) for entry in entries]
    stats = replay(_conn(target), flavour, sources, workdir=work, route=route)
    elapsed = time.monotonic() - started
    shutil.rmtree(fetch_dir, ignore_errors=True)
    wanted = APPLIER if route == AUTO else route
    assert stats.route == wanted, f"the {stats.route} route ran ({stats.fallback})"
    return elapsed


def _report(count: int, raw: int, stored: int, times: dict[str, list[float]]) -> None:
    print(f"binlogs: {count} files, {raw / MiB:.1f} MiB raw, {stored / MiB:.1f} MiB stored")
    for name, runs in times.items():
        middle = statistics.median(runs)
        rate = raw / MiB / middle
        print(f"{name:34}: {middle:6.2f} s {rate:7.1f} MiB/s  runs {[round(t, 2) for t in runs]}")
    base = statistics.median(times[BASELINE])
    for name in (PIPE, APPLY):
        ratio = base / statistics.median(times[name])
        print(f"{'speed-up ' + name.split(' (')[0] + ' vs bare':34}: {ratio:6.2f}x")
    print("data: CHECKSUM TABLE equal to the source after every replay")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the speed-ups."""
    parser = argparse.ArgumentParser(description="binlog replay rate vs mariadb-binlog | mariadb")
    parser.add_argument("--size-mb", type=int, default=64, help="binlog volume to replay")
    parser.add_argument("--file-mb", type=int, default=16, help="rotate binlogs at this size")
    parser.add_argument("--rounds", type=int, default=3, help="replays of each kind (median)")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-binlog-"))
    gateway = CephS3(base / "ceph", memstore_bytes=max(1024, 4 * args.size_mb) * MiB)
    source = MariaDBServer(base / "source", server_id=1)
    target = MariaDBServer(base / "target", server_id=1, extra_args=("--log-slave-updates",))
    try:
        gateway.start()
        source.start()
        target.start()
        gateway.create_bucket("bench")
        storage = S3Storage(gateway.s3_config("bench"))
        catalog = Catalog(storage, CLUSTER)
        key = generate_key()
        write_binlogs(source, args.size_mb, args.file_mb)
        shipped = ship_binlogs(_conn(source), catalog, workdir=base / "work", key=key, flush=True)
        files = [source.binlog_dir / name for name in [*shipped.already, *shipped.shipped]]
        raw = sum(path.stat().st_size for path in files)
        wanted = source.checksum_tables("bench")
        index = BinlogCatalog(catalog)
        times: dict[str, list[float]] = {BASELINE: [], PIPE: [], APPLY: []}
        for _round in range(args.rounds):
            for name in times:
                reset(target)
                if name == BASELINE:
                    seconds = baseline(target, files)
                else:
                    route = CLIENT_PIPE if name == PIPE else AUTO
                    seconds = product(target, index, shipped.timeline, key, base / "work",
                                      route=route)  # fmt: skip
                times[name].append(seconds)
                assert target.checksum_tables("bench") == wanted, f"{name}: data differs"
        _report(len(files), raw, shipped.stored_bytes, times)
    finally:
        for server in (source, target):
            server.stop()
        gateway.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
