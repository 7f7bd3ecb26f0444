"""Control-plane cost at catalog scale: list, newest, restore-target, retention selection.

Run: ``uv run --frozen python -m bench.catalog_scale`` (about three minutes).
It starts its own Ceph RGW (tests/infra), writes the metadata of 100, 500 and 2,000
backups of one cluster (tiny objects: ``backup.json`` and a 4-byte artefact each, every
50th backup held, as an older provider wrote them: no index), then times and counts the
S3 requests (botocore's own call events) of one call of each operation, as a hook runs
it (a new catalog object each time):

- before (no index): what the manager did until the index came - ``list_backups`` (a
  full listing and a GET of every ``backup.json``) plus ``holds()`` (a GET per hold);
- after (the index): ``Catalog.read_index`` (what the manager's ``Catalogs.rows``,
  ``newest`` and ``restore_target`` read) and ``Catalog.purge(dry_run=True)`` for the
  retention selection, once ``reindex`` has built the index (its one-off cost is printed).

Prints one row per size and operation: seconds (best of ``--rounds``) and requests,
before and after, and the ratio. Target (issue 14): <= 1.0 s and <= 3 requests at 2,000.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from database_backup.catalog import (
    BackupMetadata,
    Catalog,
    RetentionPolicy,
    select_for_deletion,
)
from database_backup.catalog.documents import dump_document
from database_backup.catalog.metadata import format_time
from database_backup.storage import S3Storage, plan_parts
from database_backup.storage.checksum import PartsChecksum
from tests.infra.ceph import CephS3

MiB = 1 << 20
SIZES = (100, 500, 2000)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=120)
POLICY = RetentionPolicy(min_count=2, max_count=336)  # two weeks of hourly backups
OPERATIONS = ("list-backups rows", "newest", "restore-target", "retention selection")


class Requests:
    """Counts the S3 requests of one client (botocore's before-call events)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.s3", self._seen)

    def _seen(self, **_: Any) -> None:
        with self._lock:
            self.count += 1


PARTS_SHA256 = PartsChecksum("ab" * 32, plan_parts()).to_json()


def metadata(number: int) -> BackupMetadata:
    """Hourly backups: a full one a day, incrementals on top of it."""
    started = T0 + timedelta(hours=number)
    full = number % 24 == 0
    return BackupMetadata(
        backup_id=f"{started:%Y%m%dT%H%M%SZ}-{number:04x}",
        kind="full" if full else "incremental",
        parent_id=None
        if full
        else f"{started - timedelta(hours=1):%Y%m%dT%H%M%SZ}-{number - 1:04x}",
        started_at=started,
        finished_at=started + timedelta(minutes=3),
        artefacts=["data.xbstream.zst"],
        stored_size=4,
        parts_sha256=PARTS_SHA256,  # what backups record since backup.json format 2
        compression="zstd",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6",
        description=f"bench backup {number}",
    )


def seed(storage: S3Storage, cluster: str, first: int, last: int) -> None:
    """Backups number `first` to `last - 1`, as a provider without the index wrote them."""
    catalog = Catalog(storage, cluster)
    catalog.ensure_cluster()

    def write(number: int) -> None:
        meta = metadata(number)
        storage.put_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]), b"data")
        if number % 50 == 0:
            hold = {"format-version": 1, "backup-id": meta.backup_id,
                    "preserve-until": format_time(NOW + timedelta(days=30))}  # fmt: skip
            storage.put_bytes(catalog.artefact_key(meta.backup_id, "preserve.json"),
                              dump_document(hold))  # fmt: skip
        key = catalog.backup_prefix(meta.backup_id) + "backup.json"
        storage.put_bytes(key, dump_document(meta.to_dict()))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(first, last)))


def before(storage: S3Storage, cluster: str, operation: str) -> object:
    """The operation as the manager ran it without the index."""
    catalog = Catalog(storage, cluster, clock=lambda: NOW)
    if operation == "list-backups rows":
        return catalog.list_backups(include_incomplete=True), catalog.holds()
    complete = [b for b in catalog.list_backups() if isinstance(b, BackupMetadata)]
    if operation == "newest":
        return complete[-1]
    if operation == "restore-target":
        target = NOW - timedelta(days=2)
        return [b for b in complete if b.finished_at <= target][-1]
    entries = catalog.list_backups(include_incomplete=True)
    return select_for_deletion(entries, catalog.holds(), POLICY, NOW)


def after(storage: S3Storage, cluster: str, operation: str) -> object:
    """The operation as the manager runs it now: one ``read_index``, then pure selection.

    (The manager's ``Catalogs.rows``/``newest``/``restore_target`` are this read and the
    same selection; tests/unit/catalog/test_index.py counts their requests directly.)
    """
    catalog = Catalog(storage, cluster, clock=lambda: NOW)
    if operation == "retention selection":
        return catalog.purge(POLICY, dry_run=True)
    view = catalog.read_index()
    if operation == "list-backups rows":
        return view.entries(include_incomplete=True), view.holds(), view.verifications()
    if operation == "newest":
        return view.complete[-1]
    target = NOW - timedelta(days=2)
    return [b for b in view.complete if b.finished_at <= target][-1]


def measure(
    run: Callable[[S3Storage, str, str], object],
    storage: S3Storage,
    cluster: str,
    operation: str,
    rounds: int,
) -> tuple[float, int]:
    """Best time of `rounds` calls, and the requests of one call."""
    counter = Requests(storage.client)
    best = float("inf")
    requests = 0
    for _ in range(rounds):
        counter.count = 0
        started = time.perf_counter()
        run(storage, cluster, operation)
        best = min(best, time.perf_counter() - started)
        requests = counter.count
    return best, requests


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description="catalog operations at 100/500/2,000 backups")
    parser.add_argument("--rounds", type=int, default=3, help="calls of each (best kept)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    gateway = CephS3(base / "ceph", memstore_bytes=1024 * MiB)
    rows: list[tuple[int, str, float, int, float, int]] = []
    try:
        gateway.start()
        gateway.create_bucket("bench")
        storage = S3Storage(gateway.s3_config("bench"))
        cluster, seeded = "bench/mysql", 0
        for size in sorted(args.sizes):
            seed(storage, cluster, seeded, size)
            seeded = size
            old = {op: measure(before, storage, cluster, op, args.rounds) for op in OPERATIONS}
            started = time.perf_counter()
            Catalog(storage, cluster).reindex()
            built = time.perf_counter() - started
            index_bytes = len(storage.get_bytes(f"{cluster}/index.json"))
            print(
                f"{size} backups: reindex {built:.2f} s, index.json {index_bytes / 1024:.0f} KiB"
            )
            for op in OPERATIONS:
                new = measure(after, storage, cluster, op, args.rounds)
                rows.append((size, op, *old[op], *new))
        _report(rows)
    finally:
        gateway.stop()
        shutil.rmtree(base, ignore_errors=True)  # the gateway's data: nothing left behind
    return 0


def _report(rows: list[tuple[int, str, float, int, float, int]]) -> None:
    print()
    head = ("backups", "operation", "before", "req", "after", "req", "ratio")
    print("{:>7}  {:20}  {:>8} {:>5}  {:>7} {:>4}  {}".format(*head))
    for size, op, old_s, old_n, new_s, new_n in rows:
        ratio = old_s / new_s if new_s else float("inf")
        line = f"{size:>7}  {op:20}  {old_s:7.3f}s {old_n:>5}  {new_s:6.3f}s {new_n:>4}"
        print(f"{line}  {ratio:4.0f}x")


if __name__ == "__main__":
    raise SystemExit(main())
