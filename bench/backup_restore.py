"""Backup and restore throughput of the engine against the same tools with nothing in between.

Run: ``uv run --frozen python -m bench.backup_restore --size-mb 256`` (about a minute and a
half; ``--sizes 256,1024`` is the full memory run). It starts its own MariaDB and Ceph RGW
(tests/infra), fills a database of the given size, then prints, measured in this one run:

- raw tool rate: ``mariabackup --backup --stream`` to /dev/null;
- baseline backup: ``mariabackup | zstd -3 -T0 | python -c <boto3 upload_fileobj>`` (no
  checksum), a shell pipeline whose uploader is its own Python process, started with the
  pipeline (it imports boto3 and builds its client while mariabackup already runs);
- product backup: ``database-backup backup`` (CLI subprocess: zstd, sha256, multipart).
  Both backups are timed the same way: from spawning the command to its exit, each a
  cold process with its own S3 client and connections;
- baseline restore: ``boto3 download | zstd -d | mbstream -x`` + ``mariabackup --prepare``;
- product restore: ``restore_physical`` up to the prepared copy (comparable part) and in
  total (plus stop, swap, start, check);
- peak RSS of the worker process (the CLI's own VmHWM, without the tool's) at each of
  ``--sizes``, and its growth between the smallest and the largest.

Targets: backup <= 1.0x baseline, restore <= 1.1x, RSS growth < 20%.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from database_backup.catalog import Catalog
from database_backup.mysql import ConnectionSpec, ProgressEvent, backup_full, restore_physical
from database_backup.storage import S3Config, S3Storage
from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer

MiB = 1 << 20
CLUSTER = "bench/mariadb"
BUCKET = "bench"
BASELINE_KEY = "baseline/data.xbstream.zst"
# the baseline's uploader: plain boto3 as the test gateway's client sets it up (path style,
# checksums only when required), 16 MiB parts, 4 in flight; keys from the environment
_UPLOADER = """
import os, sys
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
env = os.environ
client = boto3.client(
    "s3", endpoint_url=env["BENCH_S3_ENDPOINT"], region_name=env["BENCH_S3_REGION"] or None,
    aws_access_key_id=env["BENCH_S3_ACCESS_KEY"],
    aws_secret_access_key=env["BENCH_S3_SECRET_KEY"],
    config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                  response_checksum_validation="when_required"),
)
config = TransferConfig(multipart_chunksize=16 << 20, max_concurrency=4)
client.upload_fileobj(sys.stdin.buffer, env["BENCH_S3_BUCKET"], env["BENCH_S3_KEY"],
                      Config=config)
"""
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent, so a
# child of a large process would report the parent's size
_RSS_WRAPPER = """
import os, sys
from database_backup.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
with open(os.environ["BENCH_RSS_FILE"], "w") as out:
    out.write(status.split("VmHWM:")[1].split()[0])
sys.exit(code)
"""


@dataclass
class Timing:
    """One measured run."""

    seconds: float
    raw_bytes: int = 0
    stored_bytes: int = 0

    def rate(self) -> str:
        """Raw MB/s."""
        return f"{self.raw_bytes / MiB / self.seconds:7.1f}" if self.seconds else "   -"


def fill_to(server: MariaDBServer, size_mb: int) -> float:
    """Grow `bench.t` until its tablespace file is about `size_mb` MiB; return its size."""
    server.execute("CREATE DATABASE IF NOT EXISTS bench")
    server.execute(
        "CREATE TABLE IF NOT EXISTS bench.t (id BIGINT PRIMARY KEY, a CHAR(32), b CHAR(32),"
        " c VARCHAR(64), n DOUBLE) ENGINE=InnoDB"
    )
    tablespace = server.datadir / "bench" / "t.ibd"
    while True:
        size = tablespace.stat().st_size / MiB
        if size >= size_mb * 0.97:
            return size
        have = int(server.scalar("SELECT COALESCE(MAX(id), 0) FROM bench.t"))
        # about 4,500 rows per MiB of tablespace
        batch = max(10_000, min(int((size_mb - size) * 4_500), 500_000))
        server.execute(
            f"INSERT INTO bench.t SELECT seq + {have}, MD5(seq), MD5(seq * 7),"  # noqa: S608
            " CONCAT('row ', seq, ' of bench ', REPEAT(CHAR(65 + seq % 26), seq % 20)),"
            f" RAND(seq) FROM seq_1_to_{batch}",
            database="bench",
        )


def timed_shell(command: str) -> float:
    """Run a bash pipeline with pipefail; return its wall time."""
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.monotonic() - started


def raw_tool(server: MariaDBServer, work: Path) -> Timing:
    """Mariabackup --stream to /dev/null (counting bytes)."""
    out = work / "raw.count"
    seconds = timed_shell(
        f"mariabackup --defaults-extra-file={server.defaults_file} --backup --stream=xbstream "
        f"--target-dir={work / 'xb'} 2>{work / 'raw.log'} | wc -c > {out}"
    )
    return Timing(seconds, int(out.read_text()))


def baseline_backup(server: MariaDBServer, client: Any, config: S3Config, work: Path) -> Timing:
    """Mariabackup | zstd -3 -T0 | python -c <boto3 upload_fileobj>, as one shell pipeline.

    The uploader is a fresh process, like the product's CLI: the comparison is between two
    commands timed from spawn to exit (an uploader inside this process would reuse a warm
    boto3 session, client and connections that no real run of the baseline has).
    """
    env = dict(
        os.environ,
        BENCH_S3_ENDPOINT=config.endpoint or "",
        BENCH_S3_REGION=config.region or "",
        BENCH_S3_ACCESS_KEY=config.access_key,
        BENCH_S3_SECRET_KEY=config.secret_key,
        BENCH_S3_BUCKET=config.bucket,
        BENCH_S3_KEY=BASELINE_KEY,
    )
    started = time.monotonic()
    subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"mariabackup --defaults-extra-file={server.defaults_file} --backup "
         f"--stream=xbstream --target-dir={work / 'xb'} 2>{work / 'base.log'} "
         f'| zstd -3 -T0 -q -c | "$BENCH_PYTHON" -c "$BENCH_UPLOADER"'],
        env=dict(env, BENCH_PYTHON=sys.executable, BENCH_UPLOADER=_UPLOADER),
        check=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    size = client.head_object(Bucket=config.bucket, Key=BASELINE_KEY)["ContentLength"]
    return Timing(seconds, 0, size)


def product_backup(spec: Path, work: Path, backup_id: str) -> tuple[Timing, int]:
    """Run the CLI as a subprocess; return its timing and its peak RSS (VmHWM, KiB)."""
    rss_file = work / f"rss-{backup_id}"
    env = dict(os.environ, BENCH_RSS_FILE=str(rss_file))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_WRAPPER, "--log-level", "WARNING", "backup",
         "--spec", str(spec), "--backup-id", backup_id, "--state-file",
         str(work / f"state-{backup_id}.json")],
        env=env, capture_output=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"product backup failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    result = json.loads(proc.stdout)
    return Timing(seconds, result["raw-size"], result["stored-size"]), int(rss_file.read_text())


def baseline_restore(client: Any, bucket: str, work: Path) -> Timing:
    """boto3 download | zstd -d | mbstream -x, then mariabackup --prepare."""
    target = work / "baseline-restore"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", f"zstd -d -q -c | mbstream -x -C {target}"],
        stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    config = TransferConfig(multipart_chunksize=16 * MiB, max_concurrency=4)
    client.download_fileobj(bucket, BASELINE_KEY, _Sink(proc.stdin), Config=config)
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("baseline extract failed")
    subprocess.run(
        ["mariabackup", "--prepare", f"--target-dir={target}", "--use-memory=256M"],
        check=True, capture_output=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    shutil.rmtree(target, ignore_errors=True)
    return Timing(seconds)


class _Sink:
    """A write-only file for download_fileobj that ignores seeks (sequential parts)."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            self._pipe.write(data)
        return len(data)


def product_restore(
    server: MariaDBServer, catalog: Catalog, backup_id: str, work: Path
) -> tuple[Timing, float]:
    """restore_physical; return total timing and the time until the copy was prepared."""
    marks: dict[str, float] = {}
    started = time.monotonic()

    def progress(event: ProgressEvent) -> None:
        marks.setdefault(event.phase, time.monotonic() - started)

    result = restore_physical(
        _connection(server),
        server,
        catalog,
        backup_id,
        progress=progress,
        workdir=work / "restore",
    )
    total = time.monotonic() - started
    return Timing(total, result.raw_bytes, result.stored_bytes), marks.get("stop", total)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description="Backup/restore throughput against baselines.")
    parser.add_argument("--size-mb", type=int, default=256, help="database size to time")
    parser.add_argument("--sizes", default="64,256", help="sizes for the peak-RSS check")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (median)")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",")} | {args.size_mb})
    base = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    gateway = CephS3(base / "ceph", memstore_bytes=max(4096, 12 * max(sizes)) * MiB)
    server = MariaDBServer(base / "mariadb")
    try:
        gateway.start()
        server.start()
        return _run(args.size_mb, sizes, gateway, server, base, args.repeat)
    finally:
        server.stop()
        gateway.stop()
        shutil.rmtree(base, ignore_errors=True)


def engine_backup(server: MariaDBServer, catalog: Catalog, backup_id: str, work: Path) -> Timing:
    """`backup_full` in this process (the engine without the interpreter start)."""
    started = time.monotonic()
    meta = backup_full(_connection(server), catalog, backup_id=backup_id, workdir=work)
    return Timing(time.monotonic() - started, meta.raw_size or 0, meta.stored_size)


def _connection(server: MariaDBServer) -> ConnectionSpec:
    return ConnectionSpec(
        user=server.user, password=server.password, host=server.host, port=server.port
    )


def interpreter_start() -> float:
    """Seconds to start Python and import the worker's modules (the CLI's fixed cost)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import database_backup.cli, database_backup.storage, "
         "database_backup.catalog, database_backup.mysql, database_backup.stream"],
        check=True,
    )  # fmt: skip
    return time.monotonic() - started


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _row(name: str, seconds: float, raw_bytes: int, base: float | None) -> tuple[str, ...]:
    rate = f"{raw_bytes / MiB / seconds:7.1f}" if raw_bytes and seconds else ""
    ratio = f"{seconds / base:.2f}x" if base else ""
    return (name, f"{seconds:6.2f}", rate, ratio)


def _spec_file(base: Path, config: S3Config, server: MariaDBServer) -> Path:
    spec = base / "spec.json"
    spec.write_text(json.dumps({
        "cluster-id": CLUSTER,
        "storage": {"bucket": config.bucket, "endpoint": config.endpoint,
                    "region": config.region, "access-key": config.access_key,
                    "secret-key": config.secret_key},
        "connection": {"host": server.host, "port": server.port, "user": server.user,
                       "password": server.password},
        "workdir": str(base / "work"),
    }))  # fmt: skip
    spec.chmod(0o600)
    return spec


def _throughput(
    server: MariaDBServer, gateway: CephS3, catalog: Catalog, spec: Path, base: Path, repeat: int
) -> list[tuple[str, ...]]:
    """Median timings of every measure at the current database size.

    The baseline and the product backups swap order from one run to the next, so neither
    always runs right after the other's upload (the gateway still digesting it).
    """
    client = gateway.client()
    s3_config: S3Config = gateway.s3_config(BUCKET)
    bucket = BUCKET
    checksum = server.checksum_tables("bench")
    runs: dict[str, list[float]] = {}
    raw_bytes = stored = base_stored = 0
    for n in range(repeat):
        raw = raw_tool(server, base)
        raw_bytes = raw.raw_bytes
        runs.setdefault("raw", []).append(raw.seconds)
        for which in ("baseline", "product") if n % 2 == 0 else ("product", "baseline"):
            if which == "baseline":
                baseline = baseline_backup(server, client, s3_config, base)
                base_stored = baseline.stored_bytes
                runs.setdefault("baseline", []).append(baseline.seconds)
            else:
                product, _ = product_backup(spec, base, f"timed-{n}")
                stored = product.stored_bytes
                runs.setdefault("product", []).append(product.seconds)
        engine = engine_backup(server, catalog, f"engine-{n}", base / "engine")
        runs.setdefault("engine", []).append(engine.seconds)
    runs["start"] = [interpreter_start() for _ in range(repeat)]
    for n in range(repeat):
        runs.setdefault("base-restore", []).append(baseline_restore(client, bucket, base).seconds)
        server.execute("UPDATE bench.t SET n = n + 1 WHERE id % 10 = 0")
        restored, prepared_at = product_restore(server, catalog, f"timed-{n}", base)
        if server.checksum_tables("bench") != checksum:
            raise RuntimeError("the restored data differs from the backed-up data")
        runs.setdefault("restore", []).append(restored.seconds)
        runs.setdefault("prepared", []).append(prepared_at)
    med = {name: _median(values) for name, values in runs.items()}
    return [
        _row("raw tool (mariabackup > /dev/null)", med["raw"], raw_bytes, None),
        _row("baseline backup (| zstd -3 -T0 | boto3)", med["baseline"], raw_bytes, None),
        _row("product backup: CLI process, sha256 on", med["product"], raw_bytes,
             med["baseline"]),
        _row("  of which interpreter start + imports", med["start"], 0, None),
        _row("product backup: engine in-process", med["engine"], raw_bytes, med["baseline"]),
        _row("baseline restore (dl | zstd -d | mbstream, prepare)", med["base-restore"],
             raw_bytes, None),
        _row("product restore up to the prepared copy", med["prepared"], raw_bytes,
             med["base-restore"]),
        _row("product restore total (+stop, swap, start, check)", med["restore"], raw_bytes,
             med["base-restore"]),
        (f"stored MiB: baseline {base_stored / MiB:.1f}, product {stored / MiB:.1f}", "", "", ""),
    ]  # fmt: skip


def _run(
    size_mb: int,
    sizes: list[int],
    gateway: CephS3,
    server: MariaDBServer,
    base: Path,
    repeat: int,
) -> int:
    gateway.create_bucket(BUCKET)
    config: S3Config = gateway.s3_config(BUCKET)
    spec = _spec_file(base, config, server)
    catalog = Catalog(S3Storage(config), CLUSTER)
    rss: dict[int, int] = {}
    rows: list[tuple[str, ...]] = []
    actual: dict[int, float] = {}
    for size in sizes:
        actual[size] = fill_to(server, size)
        _, rss[size] = product_backup(spec, base, f"rss-{size}")
        if size == size_mb:
            rows = _throughput(server, gateway, catalog, spec, base, repeat)
    print(f"\ndatabase bench.t {actual[size_mb]:.0f} MiB on disk, {os.cpu_count()} CPUs, "
          f"median of {repeat} runs")  # fmt: skip
    print(f"{'measure':55} {'secs':>6} {'MB/s':>7} {'ratio':>6}")
    for name, secs, rate, ratio in rows:
        print(f"{name:55} {secs:>6} {rate:>7} {ratio:>6}")
    print(f"\n{'peak RSS (VmHWM) of the backup worker (CLI process)':55} {'MB':>9}")
    for size in sizes:
        label = f"  database {actual[size]:.0f} MiB"
        print(f"{label:55} {rss[size] / 1024:9.1f}")
    small, large = rss[sizes[0]], rss[sizes[-1]]
    print(f"worker RSS growth {sizes[0]} -> {sizes[-1]} MiB: {(large - small) / small:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
