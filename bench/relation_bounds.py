"""Relation data at its bounds: the largest requirer bag and history, and what a hook pays.

Run: ``uv run --frozen python -m bench.relation_bounds`` (about half a minute). No server,
no S3: it builds, with the library on the path,

- the largest requirer application databag the interface's bounds allow: MAX_JOBS jobs,
  each a logical backup of 256 databases of 64 characters and 256 tables of 129, every
  bounded text at its bound, the encoded `jobs` padded (an unknown key per job, which a
  provider parses but does not validate) up to the size bound, and 16 CA chains of 64 KiB;
- the same bag as the issue measured it before the bounds (``--before``): 30 jobs of 1,000
  tables each (the old schema allowed 1,000 databases and 10,000 tables of 257 characters);
- the largest manager history: MAX_RECORDS records, each of the largest job.

It prints their sizes and, as the median of ``--rounds`` runs: the decode + validate time
of the bag (one `decode_requests`, cache cleared), and a whole provider hook
(`relation-changed` on the provider leader through ops.testing, the library's provider
with a charm that starts every job it is given), with the number of times the hook
validated a job. Target: < 0.2 s per hook at the bounds.

To measure the code before the bounds, run the same file with an older library first on
the path, e.g. ``git archive <rev> lib | tar -x -C /tmp/old`` then
``PYTHONPATH=/tmp/old/lib uv run --frozen python -m bench.relation_bounds --before``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ops
from ops import testing

from database_backup.interface import (
    DatabaseBackupProvider,
    JobRequestedEvent,
    JobState,
    JobStatus,
    codec,
    schemas,
)

CREDENTIALS = testing.Secret({"access-key": "ak", "secret-key": "sk"})
META = {
    "name": "bench-db",
    "provides": {"database-backup": {"interface": "database_backup"}},
    "peers": {"peers": {"interface": "bench_peers"}},
}
PEM_BODY = 65536 - 60  # a chain at the 64 KiB bound, with its BEGIN/END lines
MAX_JOBS = getattr(codec, "MAX_JOBS", 30)
MAX_JOBS_CHARS = getattr(codec, "MAX_JOBS_CHARS", 0)
MAX_NAMES = getattr(codec, "MAX_NAMES", 256)


class BenchProvider(ops.CharmBase):
    """A database charm reduced to the library: every job it is given starts."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupProvider(self, peer_relation_name="peers")
        framework.observe(self.backups.on.job_requested, self._on_job_requested)

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        status = JobStatus.for_request(event.job, JobState.RUNNING, phase="streaming")
        self.backups.publish_status(event.relation, status)


def _pem(n: int) -> str:
    body = "\n".join(f"{n:04d}".ljust(64, "A") for _ in range(PEM_BODY // 65))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _storage_config(chain_id: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bucket": "b" * 63,
        "endpoint": "https://" + "e" * 2040,
        "region": "r" * 64,
        "path": "p" * 1024,
        "uri-style": "virtual",
        "credentials-secret-id": CREDENTIALS.id,
    }
    if chain_id is not None:
        config["tls-ca-chain-id"] = chain_id
    return config


def largest_job(n: int, chain_id: str | None) -> dict[str, Any]:
    """One job with every bounded value at its bound."""
    return {
        "job-id": f"backup-20261122T071500Z-{n:06x}".ljust(128, "x"),
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": _storage_config(chain_id),
        "backup-kind": "logical",
        "databases": [f"{d:03d}".ljust(64, "d") for d in range(MAX_NAMES)],
        "tables": [f"{t:03d}".ljust(64, "s") + "." + "t" * 64 for t in range(MAX_NAMES)],
        "encryption-secret-id": "secret:" + "k" * 249,
        "compression-level": 19,
        "description": "x" * 500,
        "artefact-path": "a" * 2048,
        "requested-at": "2026-11-22T07:15:00.123456+00:00",
    }


def largest_bag() -> dict[str, str]:
    """The largest requirer databag the bounds allow (jobs padded to the size bound)."""
    pems = [_pem(n) for n in range(16)]
    chains = {hashlib.sha256(pem.encode()).hexdigest()[:16]: pem for pem in pems}
    ids = sorted(chains)
    jobs = [largest_job(n, ids[n % len(ids)]) for n in range(MAX_JOBS)]
    if MAX_JOBS_CHARS:  # a library without the size bound: no padding
        spare = MAX_JOBS_CHARS - len(json.dumps(jobs, separators=(",", ":")))
        pad = spare // MAX_JOBS - len(',"x-padding":""')
        for item in jobs:
            item["x-padding"] = "z" * pad
    raw = json.dumps(jobs, separators=(",", ":"))
    assert not MAX_JOBS_CHARS or len(raw) <= MAX_JOBS_CHARS, len(raw)
    bag = {"jobs": raw, "tls-ca-chains": json.dumps(chains, separators=(",", ":"))}
    schemas.validate(bag, schemas.REQUIRER)
    return bag


def before_bag() -> dict[str, str]:
    """The issue's measurement: 30 jobs of 1,000 tables (valid under the old schema)."""
    jobs = []
    for n in range(30):
        item = largest_job(n, None)
        item["job-id"] = f"backup-20261122T071500Z-{n:06x}"
        item["databases"] = [f"db{d}" for d in range(10)]
        item["tables"] = [f"shop.table_{t:05d}" for t in range(1000)]
        item["storage-config"]["endpoint"] = "https://s3.example.com"
        item["storage-config"]["path"] = "prod"
        del item["artefact-path"]
        jobs.append(item)
    return {"jobs": json.dumps(jobs, separators=(",", ":"))}


def _decode(bag: dict[str, str]) -> Any:
    cached = getattr(codec, "_decode_requests", None)
    if cached is not None:
        cached.cache_clear()
    if decode_bag := getattr(codec, "decode_bag", None):
        return decode_bag(bag)
    return codec.decode_requests(bag["jobs"])


def _median(rounds: int, run: Callable[[], object]) -> float:
    times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _hook(bag: dict[str, str]) -> Callable[[], object]:
    def run() -> object:
        cached = getattr(codec, "_decode_requests", None)
        if cached is not None:
            cached.cache_clear()
        relation = testing.Relation(
            "database-backup",
            interface="database_backup",
            remote_app_name="backup-manager",
            remote_app_data=bag,
        )
        ctx = testing.Context(BenchProvider, meta=META)
        state = testing.State(
            leader=True,
            relations=[relation, testing.PeerRelation("peers")],
            secrets=[CREDENTIALS],
        )
        return ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)

    return run


def _work_per_hook(bag: dict[str, str]) -> tuple[int, int]:
    """(times the hook parsed the requirer's `jobs`, times it validated a job)."""
    parsed = validated = 0
    real_errors, real_load = schemas.errors_of, codec._load_array

    def counting(instance: Any, side: str, definition: str | None = None) -> list[str]:
        nonlocal validated
        validated += definition == "job"
        return real_errors(instance, side, definition)

    def loading(raw: str | None, *args: Any) -> Any:
        nonlocal parsed
        parsed += raw == bag["jobs"]
        return real_load(raw, *args)

    schemas.errors_of = counting
    codec._load_array = loading
    try:
        _hook(bag)()
    finally:
        schemas.errors_of = real_errors
        codec._load_array = real_load
    return parsed, validated


def largest_history_sizes() -> tuple[int, int]:
    """(bytes of the largest record, bytes of the largest history) as the manager stores it."""
    # the manager's code: src/ (after any PYTHONPATH given)
    sys.path.append(str(Path(__file__).resolve().parents[1] / "src"))
    history: Any = importlib.import_module("backup_manager.history")
    from database_backup.interface import JobRequest

    job = JobRequest.from_dict(largest_job(0, None))
    status = JobStatus.for_request(
        job,
        JobState.ERROR,
        message="m" * 2000,
        unit="u" * 128 + "/0",
        phase="p" * 64,
        started_at="2026-11-22T07:15:00Z",
        finished_at="2026-11-22T07:16:00Z",
        backup_id="b" * 128,
        size_bytes=2**62,
    )
    records = []
    for n in range(history.MAX_RECORDS):
        record = history.from_request(
            JobRequest.from_dict({**largest_job(n, None), "job-id": f"j{n}".ljust(128, "x")}),
            "a" * 128,
            "l" * 128,
            scheduled=True,
        )
        history.apply_status(record, status)
        records.append(record)
    one = len(json.dumps(records[0].to_json(), separators=(",", ":")))
    return one, len(history.dump(records))


def main() -> None:
    """Build the bags and the history, print sizes and times."""
    parser = argparse.ArgumentParser(description="Relation data at its bounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--before", action="store_true", help="the issue's bag: 30 jobs of 1,000 tables"
    )
    args = parser.parse_args()
    name, bag = (
        ("30 jobs x 1,000 tables", before_bag())
        if args.before
        else (
            f"largest bag the bounds allow ({MAX_JOBS} jobs)",
            largest_bag(),
        )
    )
    size = sum(len(value) for value in bag.values())
    decoded = _decode(bag)
    load = os.getloadavg()[0]
    print(f"library: {codec.__file__} (load average {load:.1f} on {os.cpu_count()} CPUs)")
    print(f"requirer bag: {name}")
    print(f"  size: {size / 1e6:.2f} MB ({len(bag['jobs']):,} characters of jobs)")
    print(f"  jobs accepted: {len(decoded.jobs)}, refused: {len(decoded.problems)}")
    decode = _median(args.rounds, lambda: _decode(bag))
    print(f"  decode + validate, once: {decode:.3f} s (median of {args.rounds})")
    hook_rounds = max(1, args.rounds // 2 + 1)
    hook = _median(hook_rounds, _hook(bag))
    empty = _median(hook_rounds, _hook({"jobs": "[]"}))
    parsed, validations = _work_per_hook(bag)
    per_hook = decode * parsed
    print(f"  per hook: the bag decoded {parsed} times, {validations} job validations")
    print(f"  decode + validate per hook: {per_hook:.3f} s")
    print(
        f"  whole provider hook, starting every job: {hook:.3f} s (median of {hook_rounds}; "
        f"the same hook with no jobs: {empty:.3f} s)"
    )
    print(f"  target: decode + validate < 0.2 s per hook: {'ok' if per_hook < 0.2 else 'OVER'}")
    one, whole = largest_history_sizes()
    print(f"largest history: one record {one:,} bytes, {whole / 1e6:.2f} MB for all records")


if __name__ == "__main__":
    main()
