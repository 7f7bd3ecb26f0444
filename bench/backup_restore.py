"""Backup and restore of a real-sized database: the product against the peers a user would pick.

Set-up once: ``bash bench/setup.sh`` (the aws CLI into a private venv, rclone from Debian).
Run: ``uv run --frozen python -m bench.backup_restore --sizes 256,4096`` (``make bench``).
It starts its own MariaDB and Ceph RGW (tests/infra), grows one InnoDB table to each size
in turn and, at each size, times interleaved rounds (seven below 1 GiB, where one run takes
seconds and the machine's noise is a large part of it; three above) of:

- backup, all cold processes timed from spawn to exit, the same ``mariabackup --backup
  --stream=xbstream`` at the head of every pipeline:
    aws:     ``mariabackup | zstd -3 -T0 | aws s3 cp - s3://bucket/key``
    rclone:  ``mariabackup | zstd -3 -T0 | rclone rcat bench:bucket/key``
    product: ``python -m database_backup.cli backup`` (zstd, SHA-256, multipart upload)
- restore of that same artefact, up to a prepared copy (``mariabackup --prepare``):
    aws:     ``aws s3api get-object ... /dev/fd/3 | zstd -d -T0 | mbstream -x`` + prepare
    rclone:  ``rclone cat bench:bucket/key | zstd -d -T0 | mbstream -x`` + prepare
    product: ``python -m database_backup.cli restore`` into the running server; the time
             to its ``stop`` phase (the copy is prepared) is compared, its total (+ stop,
             swap, start, check) is printed beside it.

Each artefact is deleted right after its restore and the gateway's garbage collector run,
so the in-RAM (memstore) OSD never holds more than one artefact. The peers' keys live in
0600 config files the bench writes (``AWS_SHARED_CREDENTIALS_FILE``, ``RCLONE_CONFIG``) and
the product's in its environment; no key is ever on a command line.

The aws CLI trap: ``aws s3 cp s3://... -`` (s3transfer's download into a non-seekable
sink) hangs here: a 100 MiB object in 9 or 10 parts, or in one part with the threshold
raised, stalls after about 60 MiB with its threads idle; only 5 parts of 20 MiB got
through. So the aws restore streams the object with ``aws s3api get-object --bucket B --key
K /dev/fd/3 3>&1 >/dev/null`` (one plain GET written straight to the pipe; the JSON
response goes to /dev/null), the command a user falls back to. It is a single stream, like
``rclone cat``; uploads keep the CLI's defaults (8 MiB parts, 10 requests in flight).

Printed per size: median seconds, MB/s of the raw stream, ratio product / best peer, and
the worker's peak RSS (VmHWM of the CLI process itself, without its tools').
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environment import bench_environment, machine_busy, settle
from bench.figures import (
    LARGE_ROUNDS,
    MiB,
    mb_per_s,
    medians,
    per_round,
    ratio,
    round_order,
    rounds_for,
)

CLUSTER = "bench/mariadb"
BUCKET = "bench"
PEERS = ("aws", "rclone")
#: the product's backup again with its table sums off (`--compare-table-sums`): the data path
NO_SUMS = "product, table sums off"
RCLONE_REMOTE = "bench"
PREPARE_MEMORY = "--use-memory=256M"  # the product's own prepare setting
TOOLS_DIR = Path(os.environ.get("BENCH_TOOLS_DIR", Path.home() / ".cache/database-backup-bench"))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent, so a
# child of a large process would report the parent's size. The same `main` and the same
# exit (`leave`) as `python -m database_backup.cli`, plus one read of /proc at the end.
_RSS_WRAPPER = """
import os, sys
from database_backup.cli import main
from database_backup.cli.leaving import leave
code = main(sys.argv[1:])
with open(os.environ["BENCH_RSS_FILE"], "w") as out:
    out.write(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
leave(code)
"""


# -- the peers' configuration and command lines (pure: unit-tested) -------------------


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom every tool talks S3."""

    url: str
    region: str
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class PeerFiles:
    """The peers' private config files and the environment that points at them."""

    aws_config: Path
    aws_credentials: Path
    rclone_config: Path

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` without any AWS_/RCLONE_ setting of the caller, plus our config files."""
        env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env["AWS_CONFIG_FILE"] = str(self.aws_config)
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.aws_credentials)
        env["RCLONE_CONFIG"] = str(self.rclone_config)
        return env


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file nobody else can read (created 0600, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def write_peer_files(directory: Path, endpoint: Endpoint) -> PeerFiles:
    """Write the aws CLI's and rclone's config for `endpoint` (keys only in these 0600 files).

    The aws profile keeps the CLI's transfer defaults (8 MiB parts, 10 requests in flight),
    with path-style addressing and checksums only when required (RGW 16.2 has no CRC
    trailers), as a user of an older Ceph sets it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = PeerFiles(
        directory / "aws-config", directory / "aws-credentials", directory / "rclone.conf"
    )
    common = (
        f"region = {endpoint.region}\n"
        "request_checksum_calculation = when_required\n"
        "response_checksum_validation = when_required\n"
    )
    _write_private(files.aws_config, f"[default]\n{common}s3 =\n    addressing_style = path\n")
    keys = (
        f"aws_access_key_id = {endpoint.access_key}\n"
        f"aws_secret_access_key = {endpoint.secret_key}\n"
    )
    _write_private(files.aws_credentials, f"[default]\n{keys}")
    _write_private(
        files.rclone_config,
        f"[{RCLONE_REMOTE}]\ntype = s3\nprovider = Ceph\nenv_auth = false\n"
        f"access_key_id = {endpoint.access_key}\n"
        f"secret_access_key = {endpoint.secret_key}\n"
        f"endpoint = {endpoint.url}\nregion = {endpoint.region}\n"
        "force_path_style = true\nno_check_bucket = true\n",
    )
    return files


def aws_binary() -> str:
    """The aws CLI bench/setup.sh installed (else one on PATH)."""
    private = TOOLS_DIR / "awscli" / "bin" / "aws"
    found = str(private) if private.exists() else shutil.which("aws")
    if not found:
        raise SystemExit("the aws CLI is missing: run `bash bench/setup.sh` first")
    return found


def backup_source(defaults_file: Path, target_dir: Path, log: Path) -> str:
    """The head of every backup pipeline: mariabackup's xbstream, zstd level 3 on all cores."""
    return (
        f"mariabackup --defaults-extra-file={shlex.quote(str(defaults_file))} --backup "
        f"--stream=xbstream --target-dir={shlex.quote(str(target_dir))} "
        f"2>{shlex.quote(str(log))} | zstd -3 -T0 -q -c"
    )


def peer_backup_command(peer: str, endpoint: Endpoint, key: str, source: str, aws: str) -> str:
    """The shell pipeline a user would write to back up to S3 with `peer`."""
    if peer == "aws":
        url = shlex.quote(f"s3://{endpoint.bucket}/{key}")
        return f"{source} | {shlex.quote(aws)} --endpoint-url {endpoint.url} s3 cp - {url}"
    if peer == "rclone":
        return (
            f"{source} | rclone -q rcat {shlex.quote(f'{RCLONE_REMOTE}:{endpoint.bucket}/{key}')}"
        )
    raise ValueError(f"unknown peer {peer!r}: use one of {', '.join(PEERS)}")


def peer_restore_command(peer: str, endpoint: Endpoint, key: str, target: Path, aws: str) -> str:
    """The shell pipeline a user would write to unpack a backup from S3 with `peer`."""
    if peer == "aws":
        fetch = (  # not `s3 cp ... -`: it hangs (see the module doc)
            f"{shlex.quote(aws)} --endpoint-url {endpoint.url} s3api get-object "
            f"--bucket {shlex.quote(endpoint.bucket)} --key {shlex.quote(key)} "
            "/dev/fd/3 3>&1 >/dev/null"
        )
    elif peer == "rclone":
        fetch = f"rclone -q cat {shlex.quote(f'{RCLONE_REMOTE}:{endpoint.bucket}/{key}')}"
    else:
        raise ValueError(f"unknown peer {peer!r}: use one of {', '.join(PEERS)}")
    unpack = f"zstd -d -T0 -q -c | mbstream -x -C {shlex.quote(str(target))}"
    prepare = f"mariabackup --prepare --target-dir={shlex.quote(str(target))} {PREPARE_MEMORY}"
    return f"{fetch} | {unpack} && {prepare} >/dev/null 2>&1"


def product_argv(
    command: str, spec: Path, state: Path, backup_id: str, extra: Sequence[str] = ()
) -> list[str]:
    """The product's cold CLI process (`database_backup.cli.main`, plus a VmHWM read).

    Keys and the database password go in its environment, never here.
    """
    return [
        sys.executable, "-c", _RSS_WRAPPER, "--log-level", "WARNING", command,
        "--spec", str(spec), "--backup-id", backup_id, "--state-file", str(state), *extra,
    ]  # fmt: skip


# -- figures (pure: unit-tested) ---------------------------------------------------------


@dataclass
class SizeResult:
    """Medians at one database size (and every run's seconds, for their spread)."""

    size_mib: float
    raw_bytes: int
    stored: dict[str, int]
    backup: dict[str, float]
    restore: dict[str, float]
    restore_total: float
    rss_kib: dict[str, int]
    rounds: int = LARGE_ROUNDS
    #: every run's seconds, by "backup <tool>" / "restore <tool>"
    runs: dict[str, list[float]] = field(default_factory=dict[str, list[float]])
    #: median core-seconds the whole machine was busy during each tool's backup
    backup_cpu: dict[str, float] = field(default_factory=dict[str, float])


def report(results: Iterable[SizeResult], load: str) -> str:
    """The printed table: seconds, MB/s and product / best-peer ratios per size."""
    lines = [f"medians of interleaved rounds; {os.cpu_count()} CPUs; {load}"]
    for res in results:
        lines.append(
            f"\ndatabase {res.size_mib:.0f} MiB on disk, raw stream {res.raw_bytes / MiB:.0f} MiB,"
            f" median of {res.rounds} rounds"
        )
        lines.append(f"{'':10}{'tool':9}{'secs':>8}{'MB/s':>8}{'stored MiB':>12}  runs (s)")
        for what, table in (("backup", res.backup), ("restore", res.restore)):
            for name in (*PEERS, "product"):
                secs = table[name]
                stored = f"{res.stored[name] / MiB:.0f}" if what == "backup" else ""
                rate = mb_per_s(res.raw_bytes, secs)
                runs = " ".join(f"{run:.2f}" for run in res.runs.get(f"{what} {name}", ()))
                lines.append(
                    f"{what:10}{name:9}{secs:8.2f}{rate:8.1f}{stored:>12}  {runs}".rstrip()
                )
            value, best = ratio(table["product"], {p: table[p] for p in PEERS})
            lines.append(f"{what:10}ratio product / best peer ({best}): {value:.2f}x")
            lines.append(_per_round_line(what, best, res.runs))
            if what == "backup" and res.backup_cpu:
                lines.append(_cpu_line(res.backup_cpu, best))
            if what == "backup" and NO_SUMS in table:
                secs = table[NO_SUMS]
                rate = mb_per_s(res.raw_bytes, secs)
                lines.append(f"{what:10}{'product, table sums off':24}{secs:8.2f}{rate:8.1f}")
                value, best = ratio(secs, {p: table[p] for p in PEERS})
                lines.append(f"{what:10}ratio (table sums off) / best peer ({best}): {value:.2f}x")
        lines.append(
            f"restore   product total (+stop, swap, start, check): {res.restore_total:.2f} s"
        )
        lines.append(
            "worker peak RSS (VmHWM): "
            + ", ".join(f"{cmd} {kib / 1024:.0f} MiB" for cmd, kib in sorted(res.rss_kib.items()))
        )
    return "\n".join(lines)


def _cpu_line(cpu: Mapping[str, float], peer: str) -> str:
    """The machine's busy core-seconds per backup (the gateway and OSD included)."""
    names = (*PEERS, "product", NO_SUMS)
    shown = ", ".join(f"{name} {cpu[name]:.1f}" for name in names if name in cpu)
    line = f"{'backup':10}machine busy, core-s (median): {shown}"
    if "product" in cpu and cpu.get(peer):
        line += f"; product / {peer} {cpu['product'] / cpu[peer]:.2f}x"
    return line


def _per_round_line(what: str, peer: str, runs: Mapping[str, Sequence[float]]) -> str:
    """The same ratio round by round (product / `peer` in the same round), and its median."""
    product, theirs = runs.get(f"{what} product", ()), runs.get(f"{what} {peer}", ())
    if not product or not theirs:
        return f"{what:10}per round: no runs recorded"
    values = per_round(product, theirs)
    shown = " ".join(f"{value:.2f}" for value in values)
    return (
        f"{what:10}per round (product / {peer}, same round): {shown};"
        f" median {statistics.median(values):.2f}x"
    )


# -- running it --------------------------------------------------------------------------


def _shell(command: str, env: Mapping[str, str]) -> float:
    """Run a bash pipeline with pipefail; return its wall time."""
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], env=dict(env), check=True)
    return time.monotonic() - started


class _PhaseWatch:
    """Polls a CLI state file; remembers when each phase was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, float] = {}
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            try:
                phase = json.loads(self.path.read_text()).get("phase")
            except (OSError, ValueError):
                continue
            if isinstance(phase, str):
                self.seen.setdefault(phase, time.monotonic() - self.started)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Bench:
    """One MariaDB server, one gateway, the peers' files: what every run needs."""

    base: Path
    server: Any  # tests.infra.mariadb.MariaDBServer
    gateway: Any  # tests.infra.ceph.CephS3
    endpoint: Endpoint
    aws: str
    spec: Path
    backup_args: tuple[str, ...] = ()

    def settle(self) -> None:
        """The same start for every timed run (`environment.settle`)."""
        settle(self.server.datadir)

    def warm(self) -> bool:
        """Read `bench.t` into the server's buffer pool when it fits there (untimed).

        The product's restore restarts the server on the restored files with an empty
        buffer pool; a server that takes backups has run for hours, and holds a database
        that fits its pool there. Only the product's table sums read through the pool
        (`CHECKSUM TABLE`; the backup tools read the files), so without this every
        product backup after the first round met the cold pool a restore leaves, and no
        peer's did. Returns whether it read the table.
        """
        pool = int(self.server.scalar("SELECT @@innodb_buffer_pool_size"))
        size = int(
            self.server.scalar(
                "SELECT data_length + index_length FROM information_schema.tables"
                " WHERE table_schema = 'bench' AND table_name = 't'"
            )
        )
        if size > pool:
            return False
        self.server.execute("SELECT COUNT(*) FROM bench.t")
        return True

    def peer_env(self) -> dict[str, str]:
        """The peers' environment: it points at their private config files."""
        return write_peer_files(self.base / "peers", self.endpoint).env(os.environ)

    def product_env(self, rss_file: Path) -> dict[str, str]:
        """The CLI's environment: the keys and the DB password (never in argv or the spec)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["DATABASE_BACKUP_S3_ACCESS_KEY"] = self.endpoint.access_key
        env["DATABASE_BACKUP_S3_SECRET_KEY"] = self.endpoint.secret_key
        env["DATABASE_BACKUP_DB_PASSWORD"] = self.server.password
        env["BENCH_RSS_FILE"] = str(rss_file)
        return env

    # backups ---------------------------------------------------------------------

    def peer_backup(self, peer: str, key: str) -> tuple[float, int]:
        """Seconds of the peer's backup pipeline and the stored object's size."""
        work = self._fresh(f"xb-{peer}")
        source = backup_source(self.server.defaults_file, work, self.base / f"{peer}.log")
        command = peer_backup_command(peer, self.endpoint, key, source, self.aws)
        seconds = _shell(command, self.peer_env())
        head = self.gateway.client().head_object(Bucket=BUCKET, Key=key)
        return seconds, int(head["ContentLength"])

    def product_backup(
        self, backup_id: str, extra: Sequence[str] | None = None
    ) -> tuple[float, int, int, int]:
        """Seconds, raw bytes, stored bytes, worker VmHWM (KiB)."""
        rss = self.base / "rss-backup"
        started = time.monotonic()
        proc = subprocess.run(
            product_argv("backup", self.spec, self.base / "state-backup.json", backup_id,
                         self.backup_args if extra is None else extra),
            env=self.product_env(rss), capture_output=True, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(
                f"product backup failed ({proc.returncode}): {proc.stderr[-2000:]!r}"
            )
        result = json.loads(proc.stdout)
        return seconds, int(result["raw-size"]), int(result["stored-size"]), int(rss.read_text())

    # restores --------------------------------------------------------------------

    def peer_restore(self, peer: str, key: str) -> float:
        """Seconds of the peer's download + unpack + prepare (the copy is then removed)."""
        target = self._fresh(f"restore-{peer}")
        command = peer_restore_command(peer, self.endpoint, key, target, self.aws)
        seconds = _shell(command, self.peer_env())
        shutil.rmtree(target, ignore_errors=True)
        return seconds

    def product_restore(self, backup_id: str) -> tuple[float, float, int]:
        """Seconds to the prepared copy (the `stop` phase), in total, worker VmHWM (KiB)."""
        rss = self.base / "rss-restore"
        state = self.base / "state-restore.json"
        state.unlink(missing_ok=True)
        watch = _PhaseWatch(state)
        proc = subprocess.run(
            product_argv("restore", self.spec, state, backup_id),
            env=self.product_env(rss), capture_output=True, check=False,
        )  # fmt: skip
        total = time.monotonic() - watch.started
        watch.close()
        if proc.returncode != 0:
            raise RuntimeError(
                f"product restore failed ({proc.returncode}): {proc.stderr[-2000:]!r}"
            )
        if "stop" not in watch.seen:
            raise RuntimeError("the product restore never reported its `stop` phase")
        return watch.seen["stop"], total, int(rss.read_text())

    # artefacts -------------------------------------------------------------------

    def delete_all(self) -> None:
        """Delete every object in the bucket, then make the gateway free them now."""
        client = self.gateway.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})
        subprocess.run(
            ["radosgw-admin", "-c", str(self.gateway.conf), "-n", "client.rgw.test",
             "gc", "process", "--include-all"],
            capture_output=True, check=True, timeout=600,
        )  # fmt: skip

    def _fresh(self, name: str) -> Path:
        path = self.base / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        return path


def fill_to(server: Any, size_mb: int) -> float:
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
        # about 4,500 rows per MiB of tablespace; no binlog for the fill (nobody reads it)
        batch = max(10_000, min(int((size_mb - size) * 4_500), 500_000))
        server.execute(
            "SET SESSION sql_log_bin = 0;"  # noqa: S608 - numbers only
            f" INSERT INTO bench.t SELECT seq + {have}, MD5(seq), MD5(seq * 7),"
            " CONCAT('row ', seq, ' of bench ', REPEAT(CHAR(65 + seq % 26), seq % 20)),"
            f" RAND(seq) FROM seq_1_to_{batch}",
            database="bench",
        )


def turns(compare_sums: bool) -> tuple[str, ...]:
    """The runs of one round: every peer, the product and, to compare, its sums off."""
    return (*PEERS, "product", *((NO_SUMS,) if compare_sums else ()))


@contextlib.contextmanager
def _busy_into(cpu: dict[str, list[float]], name: str) -> Generator[None, None, None]:
    """Append to `cpu[name]` the core-seconds the machine was busy during the block."""
    before = machine_busy()
    yield
    cpu.setdefault(name, []).append(machine_busy() - before)


def measure(
    bench: Bench,
    size_mib: float,
    rounds: int,
    check_data: bool = True,
    compare_sums: bool = False,
) -> SizeResult:
    """`rounds` interleaved rounds of backup + restore by every tool, artefacts deleted.

    Every timed run starts settled (`Bench.settle`): nothing left to write back, the
    database's files out of the page cache; after the product's restore, which restarts
    the server, the table is read back into the buffer pool where it fits (`Bench.warm`).

    With `compare_sums`, the product's backup with the table sums off (`NO_SUMS`; its
    artefact is deleted unrestored) takes its own turn in the round order. Run right after
    the product's restore, as it was, it always followed a freshly restored, restarted
    server and came out 7-9% faster at 4 GiB, where no table is under the sums' cap
    (alternated on one server, the two are level: 28.0-32.7 s against 28.5-31.6 s).
    """
    backup: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    restore: dict[str, list[float]] = {}
    totals: list[float] = []
    stored: dict[str, int] = {}
    rss: dict[str, int] = {}
    raw_bytes = 0
    expected = bench.server.checksum_tables("bench") if check_data else None
    for n in range(rounds):
        for tool in round_order(n, turns(compare_sums)):
            if tool == NO_SUMS:
                bench.settle()
                no_sums = ("--table-sums-budget", "0")
                with _busy_into(cpu, NO_SUMS):
                    secs = bench.product_backup(f"bench-{int(size_mib)}-{n}-ns", no_sums)[0]
                backup.setdefault(NO_SUMS, []).append(secs)
            elif tool == "product":
                backup_id = f"bench-{int(size_mib)}-{n}"
                bench.settle()
                with _busy_into(cpu, tool):
                    secs, raw_bytes, stored[tool], hwm = bench.product_backup(backup_id)
                rss["backup"] = max(rss.get("backup", 0), hwm)
                backup.setdefault(tool, []).append(secs)
                bench.settle()
                prepared, total, hwm = bench.product_restore(backup_id)
                bench.warm()
                rss["restore"] = max(rss.get("restore", 0), hwm)
                restore.setdefault(tool, []).append(prepared)
                totals.append(total)
                if expected is not None:  # once per size: CHECKSUM TABLE of GiBs is slow
                    if bench.server.checksum_tables("bench") != expected:
                        raise RuntimeError("the restored data differs from the backed-up data")
                    expected = None
            else:
                key = f"peers/{tool}/{int(size_mib)}-{n}.xbstream.zst"
                bench.settle()
                with _busy_into(cpu, tool):
                    secs, stored[tool] = bench.peer_backup(tool, key)
                backup.setdefault(tool, []).append(secs)
                bench.settle()
                restore.setdefault(tool, []).append(bench.peer_restore(tool, key))
            bench.delete_all()
            print(f"  {size_mib:.0f} MiB round {n + 1}: {tool} done", flush=True)
    return SizeResult(
        size_mib=size_mib,
        raw_bytes=raw_bytes,
        stored=stored,
        backup=medians(backup),
        restore=medians(restore),
        restore_total=statistics.median(totals),
        rss_kib=rss,
        rounds=rounds,
        runs={
            **{f"backup {name}": runs for name, runs in backup.items()},
            **{f"restore {name}": runs for name, runs in restore.items()},
        },
        backup_cpu=medians(cpu),
    )


def _spec(base: Path, endpoint: Endpoint, server: Any) -> Path:
    """The product's spec: no secret in it (they come from the environment)."""
    from tests.workload.engine_helpers import start_command, stop_command

    spec = base / "spec.json"
    _write_private(spec, json.dumps({
        "cluster-id": CLUSTER,
        "storage": {"bucket": endpoint.bucket, "endpoint": endpoint.url,
                    "region": endpoint.region},
        "connection": {"host": server.host, "port": server.port, "user": server.user},
        "server": {"type": "command", "datadir": str(server.datadir),
                   "start": start_command(server), "stop": stop_command(server),
                   "status": ["mariadb-admin", f"--defaults-file={server.defaults_file}",
                              "ping"]},
        "workdir": str(base / "work"),
    }))  # fmt: skip
    return spec


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) at the end"


def main(argv: list[str] | None = None) -> int:
    """Run the bench at every size and print the table."""
    parser = argparse.ArgumentParser(description="Backup/restore against aws CLI and rclone.")
    parser.add_argument("--sizes", default="256", help="database sizes in MiB, e.g. 256,4096")
    parser.add_argument(
        "--rounds",
        type=int,
        help="interleaved rounds per size (median; default: at least 7 below 1 GiB and 3"
        " from there, in whole cycles of the round order)",
    )
    parser.add_argument(
        "--table-sums-budget",
        type=int,
        help="pass to the product's backup (0: no table sums; default: the product's own)",
    )
    parser.add_argument(
        "--compare-table-sums",
        action="store_true",
        help="also time each product backup with the table sums off (the data path alone)",
    )
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or sizes[0] <= 0 or (args.rounds is not None and args.rounds < 1):
        parser.error("--sizes takes positive MiB values like 256,4096; --rounds at least 1")
    aws = aws_binary()
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is missing: run `bash bench/setup.sh` first")

    # one artefact at a time is in RAM (deleted + gc after each run): 2x the largest size
    memstore = max(4096, 2 * sizes[-1])
    with bench_environment("bench-backup-", memstore, BUCKET) as env:
        base, server, gateway = env.base, env.server, env.gateway
        endpoint = Endpoint(
            gateway.endpoint, gateway.region, BUCKET, gateway.access_key, gateway.secret_key
        )
        extra = (
            ()
            if args.table_sums_budget is None
            else ("--table-sums-budget", str(args.table_sums_budget))
        )
        bench = Bench(base, server, gateway, endpoint, aws, _spec(base, endpoint, server), extra)
        results: list[SizeResult] = []
        for size in sizes:
            actual = fill_to(server, size)
            print(f"filled bench.t to {actual:.0f} MiB", flush=True)
            results.append(
                measure(
                    bench,
                    actual,
                    rounds_for(actual, args.rounds, len(turns(args.compare_table_sums))),
                    compare_sums=args.compare_table_sums,
                )
            )
        print(f"product backup options: {' '.join(extra) or '(defaults)'}")
        print(report(results, _load()))
        return 0


if __name__ == "__main__":
    sys.exit(main())
