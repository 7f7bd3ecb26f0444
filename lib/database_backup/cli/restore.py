"""Command-line commands of the engine's part 2, registered into `database_backup.cli`.

- `backup --kind incremental [--parent-id ID]`: incremental physical backup (parent:
  the newest physical backup by default);
- `backup --kind logical [--databases a,b | --tables db.t1,db.t2]`: logical backup (the
  whole server when neither is given);
- `restore --backup-id ID [--databases ... | --tables ...]`: a logical backup is applied
  to the running server (optionally only those parts); an incremental one is restored
  with its chain; once binlogs are shipped, a physical restore ships the server's
  binlogs first and starts a new timeline (like `pitr` without replay), so the old and
  the new history never mix in storage (`--no-ship-first` when the server is lost);
- `ship-binlogs [--flush]`: upload the closed binlogs not shipped yet (run it on a
  timer; `--flush` rotates first so the recovery window reaches now);
- `pitr --target TIME|latest [--backup-id ID] [--plan-only] [--no-ship-first]`:
  point-in-time recovery into the running server (needs the spec's `server` section);
- `list-binlogs`: timelines and shipped files (JSON);
- `purge-binlogs [--dry-run]`: delete the shipped binlogs no complete backup needs.

Shipping and recovery share a lock in `<workdir>/binlogs/`. Same spec file, state file
and exit codes as the other commands.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from database_backup.catalog import Catalog
    from database_backup.cli import Spec, StateFile

KINDS = ("full", "incremental", "logical")
_bound: list[Any] = []


def bind(module: Any) -> None:
    """Use `module`'s helpers (the running `database_backup.cli`, also as `__main__`).

    `python -m database_backup.cli` runs the module as `__main__`; importing it again
    by name would make a second copy whose error classes the first does not catch.
    """
    _bound[:] = [module]


def _cli() -> Any:
    if not _bound:
        from database_backup import cli

        bind(cli)
    return _bound[0]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name (comma-separated)")
    return names


def _target(text: str) -> str:
    from database_backup.mysql.pitr import parse_target

    try:
        parse_target(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "use 'latest' or an ISO 8601 time like 2026-11-22T07:15:00Z"
        ) from None
    return text


def register(
    sub: Any,
    common: argparse.ArgumentParser,
    *,
    backup: argparse.ArgumentParser,
    restore: argparse.ArgumentParser,
) -> None:
    """Add part 2's options and commands to the parser built by `cli.build_parser`."""
    cli = _cli()
    backup.add_argument("--kind", choices=KINDS, default="full", help="backup kind")
    backup.add_argument("--parent-id", help="parent of an incremental backup (default: newest)")
    scope = backup.add_mutually_exclusive_group()
    scope.add_argument("--databases", type=_names, help="logical: only these databases")
    scope.add_argument("--tables", type=_names, help="logical: only these db.table tables")
    restore.add_argument(
        "--no-ship-first",
        action="store_true",
        help="physical, with binlogs shipped: do not ship the server's binlogs first",
    )
    parts = restore.add_mutually_exclusive_group()
    parts.add_argument("--databases", type=_names, help="logical: restore only these databases")
    parts.add_argument("--tables", type=_names, help="logical: restore only these db.tables")

    ship = sub.add_parser("ship-binlogs", parents=[common], help="ship closed binlogs to S3")
    ship.add_argument("--flush", action="store_true", help="rotate the binlog first")
    ship.add_argument("--compression-level", type=cli._level, default=3, help="zstd level")
    ship.add_argument("--no-compression", action="store_true", help="store uncompressed")
    ship.add_argument("--binlog-dir", help="where the binlog files are (default: the server's)")
    ship.add_argument("--lock-timeout", type=float, default=0.0, help="seconds to wait")

    pitr = sub.add_parser("pitr", parents=[common], help="point-in-time recovery in place")
    pitr.add_argument("--target", type=_target, required=True, help="ISO 8601 time or latest")
    pitr.add_argument("--backup-id", help="start from this backup (default: newest suitable)")
    pitr.add_argument("--plan-only", action="store_true", help="print the plan, change nothing")
    pitr.add_argument(
        "--no-ship-first", action="store_true", help="do not ship the server's binlogs first"
    )
    pitr.add_argument("--binlog-dir", help="where the binlog files are (default: the server's)")
    pitr.add_argument("--compression-level", type=cli._level, default=3, help="zstd level")
    pitr.add_argument("--verify-timeout", type=float, default=120.0, help="seconds to answer")

    sub.add_parser("list-binlogs", parents=[common], help="timelines and shipped binlogs")
    purge = sub.add_parser("purge-binlogs", parents=[common], help="delete unneeded binlogs")
    purge.add_argument("--dry-run", action="store_true", help="only say what would go")


def _done(state: StateFile, result: Any, message: str) -> int:
    cli = _cli()
    state.update(status="success", phase="done", message=message, result=result)
    print(json.dumps(result, indent=2, default=str))
    return cli.EXIT_OK


def cmd_backup(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Full (part 1), incremental or logical backup."""
    cli = _cli()
    if args.kind == "full":
        if args.databases or args.tables:
            raise cli.SpecError("--databases/--tables are for --kind logical")
        return cli.cmd_backup(args, spec, state)
    from database_backup.catalog import new_backup_id

    catalog = cli.make_catalog(spec)
    backup_id = args.backup_id or new_backup_id(datetime.now(timezone.utc))
    level = None if args.no_compression else args.compression_level
    state.update(backup_id=backup_id, phase="backup")
    common: dict[str, Any] = {
        "backup_id": backup_id,
        "job_id": args.job_id,
        "compression_level": level,
        "key": spec.encryption_key,
        "progress": state.progress,
        "workdir": spec.workdir / f"backup-{backup_id}",
        "description": args.description,
    }
    if args.kind == "incremental":
        from database_backup.mysql.incremental import backup_incremental

        meta = backup_incremental(
            cli.make_connection(spec),
            catalog,
            parent_id=args.parent_id,
            parallel=args.parallel,
            **common,
        )
    else:
        from database_backup.mysql.logical import backup_logical

        meta = backup_logical(
            cli.make_connection(spec),
            catalog,
            databases=args.databases,
            tables=args.tables,
            **common,
        )
    return _done(state, meta.to_dict(), "backup complete")


def cmd_restore(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Physical restore (part 1, chains included) or logical restore."""
    cli = _cli()
    catalog = cli.make_catalog(spec)
    meta = catalog.read_metadata(args.backup_id)
    if meta.kind != "logical":
        if args.databases or args.tables:
            raise cli.SpecError("--databases/--tables restore parts of logical backups only")
        return _restore_physical(args, spec, state, catalog)
    from database_backup.mysql.logical_restore import restore_logical

    state.update(backup_id=args.backup_id, phase="apply")
    result = restore_logical(
        cli.make_connection(spec),
        catalog,
        args.backup_id,
        databases=args.databases or (),
        tables=args.tables or (),
        key=spec.encryption_key,
        progress=state.progress,
        workdir=spec.workdir / f"restore-{args.backup_id}",
    )
    summary = {
        "backup-id": result.backup_id,
        "databases": result.databases,
        "tables": result.tables,
        "bytes-applied": result.bytes_applied,
        "seconds": round(result.seconds, 3),
    }
    return _done(state, summary, "restore complete")


def _restore_physical(
    args: argparse.Namespace, spec: Spec, state: StateFile, catalog: Catalog
) -> int:
    """Part 1's restore; once binlogs are shipped, on a new timeline (see pitr)."""
    from database_backup.catalog.binlogs import BinlogCatalog
    from database_backup.mysql.binlogs import binlog_lock
    from database_backup.mysql.pitr import recover_to_point

    cli = _cli()
    with binlog_lock(spec.workdir / "binlogs", timeout=300):  # no shipment meanwhile
        if not BinlogCatalog(catalog).timelines():
            return cli.cmd_restore(args, spec, state)
    state.update(backup_id=args.backup_id, phase="ship")
    result = recover_to_point(
        cli.make_connection(spec),
        cli.make_server(spec),
        catalog,
        None,
        workdir=spec.workdir / "binlogs",
        backup_id=args.backup_id,
        key=spec.encryption_key,
        ship_first=not args.no_ship_first,
        progress=state.progress,
        verify_timeout=args.verify_timeout,
        replay_binlogs=False,
    )
    return _done(state, result.to_dict(), "restore complete (new binlog timeline)")


def cmd_ship(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Ship closed binlogs."""
    cli = _cli()
    from database_backup.mysql.binlogs import ship_binlogs

    state.update(phase="ship")
    result = ship_binlogs(
        cli.make_connection(spec),
        cli.make_catalog(spec),
        workdir=spec.workdir / "binlogs",
        key=spec.encryption_key,
        compression_level=None if args.no_compression else args.compression_level,
        flush=args.flush,
        binlog_dir=args.binlog_dir,
        progress=state.progress,
        lock_timeout=args.lock_timeout,
    )
    return _done(state, result.to_dict(), f"shipped {len(result.shipped)} binlog(s)")


def cmd_pitr(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Point-in-time recovery (or its plan)."""
    cli = _cli()
    from database_backup.mysql.pitr import parse_target, plan_recovery, recover_to_point

    target = parse_target(args.target)
    catalog = cli.make_catalog(spec)
    if args.plan_only:
        plan = plan_recovery(catalog, target, backup_id=args.backup_id)
        return _done(state, plan.to_dict(), "recovery plan")
    state.update(phase="ship")
    result = recover_to_point(
        cli.make_connection(spec),
        cli.make_server(spec),
        catalog,
        target,
        workdir=spec.workdir / "binlogs",
        backup_id=args.backup_id,
        key=spec.encryption_key,
        compression_level=args.compression_level,
        ship_first=not args.no_ship_first,
        binlog_dir=args.binlog_dir,
        progress=state.progress,
        verify_timeout=args.verify_timeout,
    )
    return _done(state, result.to_dict(), "point-in-time recovery complete")


def cmd_list_binlogs(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Timelines and their shipped files."""
    cli = _cli()
    from database_backup.catalog.binlogs import BinlogCatalog

    index = BinlogCatalog(cli.make_catalog(spec))
    rows = []
    for timeline in index.timelines():
        entries = index.entries(timeline.timeline_id)
        rows.append(
            {
                "timeline": timeline.timeline_id,
                "created-at": timeline.created_at.isoformat(),
                "parent": timeline.parent,
                "fork-backup": timeline.fork_backup,
                "files": [
                    {
                        "name": entry.name,
                        "first-event-at": (
                            entry.first_event_at.isoformat() if entry.first_event_at else None
                        ),
                        "last-event-at": entry.last_event_at.isoformat(),
                        "gtids": entry.last_gtids,
                        "stored-size": entry.stored_size,
                    }
                    for entry in entries
                ],
            }
        )
    return _done(state, rows, f"{len(rows)} timeline(s)")


def cmd_purge_binlogs(args: argparse.Namespace, spec: Spec, state: StateFile) -> int:
    """Delete shipped binlogs that no complete backup needs."""
    cli = _cli()
    from database_backup.catalog import BackupMetadata
    from database_backup.catalog.binlogs import BinlogCatalog

    catalog = cli.make_catalog(spec)
    kept = [entry for entry in catalog.list_backups() if isinstance(entry, BackupMetadata)]
    doomed = BinlogCatalog(catalog).purge(kept, dry_run=args.dry_run)
    result = [f"{entry.timeline}/{entry.name}" for entry in doomed]
    verb = "would delete" if args.dry_run else "deleted"
    return _done(state, result, f"{verb} {len(result)} binlog(s)")


COMMANDS = {
    "backup": cmd_backup,
    "restore": cmd_restore,
    "ship-binlogs": cmd_ship,
    "pitr": cmd_pitr,
    "list-binlogs": cmd_list_binlogs,
    "purge-binlogs": cmd_purge_binlogs,
}
