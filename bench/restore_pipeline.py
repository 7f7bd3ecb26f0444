"""The restore data path alone: framed vs single-frame zstd artefacts against the aws CLI.

Run: ``uv run --frozen python -m bench.restore_pipeline --sizes 256,1024 --rounds 3``.
It starts its own MariaDB and Ceph RGW (tests/infra), grows one InnoDB table to each
size, takes ONE ``mariabackup --stream=xbstream`` of it to a local file, and stores that
same raw stream twice with the library's own upload: once as independent zstd frames (how
backups are written now) and once as a single zstd frame (how they were written before
issue 14, via ``CompressReader``). Then, in interleaved rounds, every variant goes from
the object in RGW to a prepared copy (``mariabackup --prepare``), each as a cold process
timed from spawn to exit:

    framed:   python: open_stream -> decode (digest, frames decoded in parallel)
              -> mbstream -x, then prepare
    single:   the same code on the single-frame object (sequential zstd)
    aws:      ``aws s3api get-object ... /dev/fd/3 | zstd -d -T0 | mbstream -x`` + prepare,
              the same peer pipeline as ``bench/backup_restore.py`` (``aws s3 cp ... -``
              hangs here: see that module)

Printed per size: median seconds, CPU seconds (user + system of the process and all its
children, from wait4), and the ratio of each product variant to the aws pipeline. The
full backup/restore comparison (with rclone, backup side, worker RSS) is
``bench/backup_restore.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.backup_restore import Endpoint, aws_binary, peer_restore_command, write_peer_files
from bench.environment import bench_environment

MiB = 1 << 20
BUCKET = "bench"
VARIANTS = ("framed", "single", "aws")

# One restore by the product's library, in a fresh interpreter (imports included).
_PRODUCT = """
import json, os, subprocess, sys
from database_backup.mysql.toolrun import pump
from database_backup.storage import S3Config, S3Storage
from database_backup.stream import decode
args = json.loads(sys.argv[1])
config = S3Config(bucket=args["bucket"], endpoint=args["endpoint"], region=args["region"],
                  access_key=os.environ["BENCH_S3_ACCESS"],
                  secret_key=os.environ["BENCH_S3_SECRET"])
storage = S3Storage(config)
reader = decode(storage.open_stream(args["key"]), key=None, compressed=True,
                expected_sha256=args["sha256"], expected_size=args["size"])
proc = subprocess.Popen(["mbstream", "-x", "-C", args["target"]], stdin=subprocess.PIPE)
pump(reader, proc.stdin, chunk=4 << 20, depth=2)
proc.stdin.close()
if proc.wait() != 0:
    sys.exit("mbstream failed")
subprocess.run(["mariabackup", "--prepare", "--target-dir=" + args["target"],
                "--use-memory=256M"], check=True, capture_output=True)
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `argv`; return (wall seconds, CPU seconds of it and every child it waited for)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def fill(server: Any, size_mib: int) -> None:
    """Grow `bench.t` to about `size_mib` MiB of tablespace."""
    server.execute("CREATE DATABASE IF NOT EXISTS bench")
    server.execute(
        "CREATE TABLE IF NOT EXISTS bench.t (id BIGINT PRIMARY KEY, a CHAR(32), b CHAR(32),"
        " c VARCHAR(64), n DOUBLE) ENGINE=InnoDB"
    )
    tablespace = server.datadir / "bench" / "t.ibd"
    while (size := tablespace.stat().st_size / MiB) < size_mib * 0.97:
        have = int(server.scalar("SELECT COALESCE(MAX(id), 0) FROM bench.t"))
        batch = max(10_000, min(int((size_mib - size) * 4_500), 500_000))
        server.execute(
            "SET SESSION sql_log_bin = 0;"  # noqa: S608 - numbers only
            f" INSERT INTO bench.t SELECT seq + {have}, MD5(seq), MD5(seq * 7),"
            " CONCAT('row ', seq, ' of bench ', REPEAT(CHAR(65 + seq % 26), seq % 20)),"
            f" RAND(seq) FROM seq_1_to_{batch}",
            database="bench",
        )


def store(storage: Any, key: str, raw: Path, framed: bool) -> tuple[str, int]:
    """Upload the raw stream compressed one way or the other; return (sha256, stored size)."""
    from database_backup.stream import CompressReader, DigestReader, encode

    with raw.open("rb") as source:
        if framed:
            stream, digest = encode(source, compression_level=3, key=None)
        else:
            digest = DigestReader(CompressReader(source, level=3))
            stream = digest
        storage.upload_stream(key, stream)
    return digest.sha256, digest.bytes_read


def measure(base: Path, server: Any, gateway: Any, size: int, rounds: int) -> dict[str, Any]:
    """Every variant `rounds` times at `size` MiB; return the medians."""
    from database_backup.storage import S3Storage

    fill(server, size)
    raw = base / "raw.xbstream"
    with raw.open("wb") as out:
        subprocess.run(
            ["mariabackup", f"--defaults-extra-file={server.defaults_file}", "--backup",
             "--stream=xbstream", f"--target-dir={base / 'xb'}"],
            stdout=out, stderr=subprocess.DEVNULL, check=True,
        )  # fmt: skip
    storage = S3Storage(gateway.s3_config(BUCKET))
    stored = {name: store(storage, name, raw, name == "framed") for name in ("framed", "single")}
    storage.close()
    env = dict(os.environ, BENCH_S3_ACCESS=gateway.access_key, BENCH_S3_SECRET=gateway.secret_key)
    endpoint = Endpoint(
        gateway.endpoint, gateway.region, BUCKET, gateway.access_key, gateway.secret_key
    )
    peer_env = write_peer_files(base / "peers", endpoint).env(os.environ)
    aws = aws_binary()
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for number in range(rounds):
        order = VARIANTS[number % 3 :] + VARIANTS[: number % 3]
        for name in order:
            target = base / f"restore-{name}"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            if name == "aws":
                command = peer_restore_command("aws", endpoint, "single", target, aws)
                argv, run_env = ["bash", "-o", "pipefail", "-c", command], peer_env
            else:
                sha256, stored_size = stored[name]
                spec = {"bucket": BUCKET, "endpoint": gateway.endpoint,
                        "region": gateway.region, "key": name, "sha256": sha256,
                        "size": stored_size, "target": str(target)}  # fmt: skip
                argv, run_env = [sys.executable, "-c", _PRODUCT, json.dumps(spec)], env
            seconds, cpu_seconds = timed(argv, run_env)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            shutil.rmtree(target, ignore_errors=True)
            print(f"  {size} MiB {name}: {seconds:.2f} s, CPU {cpu_seconds:.2f} s", flush=True)
    raw_mib = raw.stat().st_size / MiB
    raw.unlink()
    return {
        "size": size,
        "raw_mib": raw_mib,
        "stored_mib": {name: stored[name][1] / MiB for name in stored},
        "wall": {name: statistics.median(values) for name, values in wall.items()},
        "cpu": {name: statistics.median(values) for name, values in cpu.items()},
    }


def report(results: list[dict[str, Any]], rounds: int) -> str:
    """The table of medians and ratios."""
    lines = [
        f"restore to a prepared copy, medians of {rounds}; ratio = variant / aws pipeline",
        f"{'size':>6} {'raw MiB':>8} {'variant':>8} {'stored MiB':>10} {'wall s':>7} "
        f"{'CPU s':>6} {'ratio':>6}",
    ]
    for result in results:
        for name in VARIANTS:
            stored = result["stored_mib"].get(name, result["stored_mib"]["single"])
            ratio = result["wall"][name] / result["wall"]["aws"]
            lines.append(
                f"{result['size']:>6} {result['raw_mib']:>8.0f} {name:>8} {stored:>10.1f} "
                f"{result['wall'][name]:>7.2f} {result['cpu'][name]:>6.2f} {ratio:>6.2f}"
            )
    one, five, _ = os.getloadavg()
    lines.append(f"load average {one:.1f} (1 min), {five:.1f} (5 min) at the end")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the restore-pipeline bench and print its table."""
    parser = argparse.ArgumentParser(description="Restore data path: framed vs single frame.")
    parser.add_argument("--sizes", default="256", help="database sizes in MiB, e.g. 256,1024")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] <= 0 or args.rounds < 1:
        parser.error("--sizes takes positive MiB values like 256,1024; --rounds at least 1")
    with bench_environment("bench-restore-", max(2048, 3 * sizes[-1]), BUCKET) as env:
        results = [measure(env.base, env.server, env.gateway, size, args.rounds) for size in sizes]
        print(report(results, args.rounds))
        return 0


if __name__ == "__main__":
    sys.exit(main())
