"""`backup`: full or incremental physical backups, and logical backups.

- `backup [--kind full]`: a full physical backup;
- `backup --kind incremental [--parent-id ID]`: incremental physical backup (parent: the
  newest physical backup by default);
- `backup --kind logical [--databases a,b | --tables db.t1,db.t2]`: logical backup (the
  whole server when neither is given).

Every kind takes `--table-sums-budget SECONDS` (0: measure no table sums, say so in
``backup.json``) and `--table-sums-max-table-mb MB`: the bounds of the per-table row
counts and checksums measured beside the stream and, where the binlog says a table
changed meanwhile, after it (`mysql.tablesums.Beside`).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import TypedDict

from database_backup.catalog import new_backup_id
from database_backup.contract import EngineSpec, SpecError
from database_backup.mysql import (
    ProgressCallback,
    backup_full,
    backup_incremental,
    backup_logical,
)
from database_backup.mysql.tablesums import Limits
from database_backup.timefmt import utc_now

from . import options
from .factories import make_catalog, make_connection
from .report import done
from .state import StateFile

logger = logging.getLogger("database_backup.cli")

KINDS = ("full", "incremental", "logical")
MIB = 2**20
_SUMS_BUDGET = int(Limits().budget_seconds)
_SUMS_TABLE_MB = Limits().max_table_bytes // MIB


class _Common(TypedDict):
    """The keyword arguments every kind of backup takes."""

    backup_id: str
    job_id: str | None
    compression_level: int | None
    key: bytes | None
    progress: ProgressCallback
    workdir: Path
    description: str | None
    table_sums_limits: Limits


def register(new_command: options.NewCommand) -> None:
    """Add the `backup` command."""
    backup = new_command("backup", "take a full physical backup")
    backup.add_argument("--backup-id", help="id of the new backup (default: generated)")
    backup.add_argument("--job-id", help="job id recorded in the metadata")
    backup.add_argument("--description", help="free text recorded in the metadata")
    backup.add_argument("--compression-level", type=options.level, default=3, help="zstd level")
    backup.add_argument("--no-compression", action="store_true", help="store uncompressed")
    backup.add_argument("--parallel", type=options.positive, default=1, help="copy threads")
    backup.add_argument("--kind", choices=KINDS, default="full", help="backup kind")
    backup.add_argument("--parent-id", help="parent of an incremental backup (default: newest)")
    scope = backup.add_mutually_exclusive_group()
    scope.add_argument("--databases", type=options.names, help="logical: only these databases")
    scope.add_argument("--tables", type=options.names, help="logical: only these db.table tables")
    backup.add_argument(
        "--table-sums-budget",
        type=options.budget,
        default=_SUMS_BUDGET,
        metavar="SECONDS",
        help="time for the per-table row counts and checksums, beside the stream and "
        f"again after it (0: none measured; default {_SUMS_BUDGET})",
    )
    backup.add_argument(
        "--table-sums-max-table-mb",
        type=options.positive,
        default=_SUMS_TABLE_MB,
        metavar="MB",
        help=f"tables with more data get no table sum (default {_SUMS_TABLE_MB})",
    )


def cmd_backup(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Full, incremental or logical backup."""
    if args.kind == "full" and (args.databases or args.tables):
        raise SpecError("--databases/--tables are for --kind logical")
    backup_id: str = args.backup_id or new_backup_id(utc_now())
    level: int | None = None if args.no_compression else args.compression_level
    state.update(backup_id=backup_id, phase="backup")
    common = _Common(
        backup_id=backup_id,
        job_id=args.job_id,
        compression_level=level,
        key=spec.encryption_key,
        progress=state.progress,
        workdir=spec.work_dir / f"backup-{backup_id}",
        description=args.description,
        table_sums_limits=Limits(
            budget_seconds=args.table_sums_budget,
            max_table_bytes=args.table_sums_max_table_mb * MIB,
        ),
    )
    if args.kind == "full":
        logger.info("starting full backup %s of cluster %s", backup_id, spec.cluster_id)
        meta = backup_full(
            make_connection(spec),
            # built in the engine's preflight thread, started with the backup tool: importing
            # boto3 and creating the S3 client overlap with the tool's first seconds
            functools.partial(make_catalog, spec),
            parallel=args.parallel,
            **common,
        )
    elif args.kind == "incremental":
        meta = backup_incremental(
            make_connection(spec),
            make_catalog(spec),
            parent_id=args.parent_id,
            parallel=args.parallel,
            **common,
        )
    else:
        meta = backup_logical(
            make_connection(spec),
            make_catalog(spec),
            databases=args.databases,
            tables=args.tables,
            **common,
        )
    done(state, meta.to_dict(), "backup complete")
