"""`ship-binlogs`, `list-binlogs` and `purge-binlogs`: the shipped binary logs.

- `ship-binlogs [--flush] [--rotate-after SECONDS]`: upload the closed binlogs not shipped
  yet (run it on a timer; `--flush` rotates first so the recovery window reaches now,
  `--rotate-after` rotates only once the open binlog's oldest event is that old);
- `list-binlogs`: timelines and shipped files (JSON);
- `purge-binlogs [--dry-run]`: delete the shipped binlogs no complete backup needs.
"""

from __future__ import annotations

import argparse

from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.contract import EngineSpec
from database_backup.mysql import ship_binlogs

from . import options
from .factories import make_catalog, make_connection
from .report import done
from .state import StateFile


def register_ship(new_command: options.NewCommand) -> None:
    """Add the `ship-binlogs` command."""
    ship = new_command("ship-binlogs", "ship closed binlogs to S3")
    ship.add_argument("--flush", action="store_true", help="rotate the binlog first")
    ship.add_argument("--compression-level", type=options.level, default=3, help="zstd level")
    ship.add_argument("--no-compression", action="store_true", help="store uncompressed")
    ship.add_argument("--binlog-dir", help="where the binlog files are (default: the server's)")
    ship.add_argument("--lock-timeout", type=float, default=0.0, help="seconds to wait")
    ship.add_argument(
        "--rotate-after",
        type=float,
        default=None,
        help="rotate the open binlog (and ship it) once its oldest event is this many "
        "seconds old (bounds how far storage lags behind a quiet server)",
    )


def register_listing(new_command: options.NewCommand) -> None:
    """Add the `list-binlogs` and `purge-binlogs` commands."""
    new_command("list-binlogs", "timelines and shipped binlogs")
    purge = new_command("purge-binlogs", "delete unneeded binlogs")
    purge.add_argument("--dry-run", action="store_true", help="only say what would go")


def cmd_ship(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Ship closed binlogs."""
    state.update(phase="ship")
    result = ship_binlogs(
        make_connection(spec),
        make_catalog(spec),
        workdir=spec.work_dir / "binlogs",
        key=spec.encryption_key,
        compression_level=None if args.no_compression else args.compression_level,
        flush=args.flush,
        binlog_dir=args.binlog_dir,
        progress=state.progress,
        lock_timeout=args.lock_timeout,
        rotate_after=args.rotate_after,
    )
    done(state, result.to_dict(), f"shipped {len(result.shipped)} binlog(s)")


def cmd_list_binlogs(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Timelines and their shipped files."""
    index = BinlogCatalog(make_catalog(spec))
    rows: list[dict[str, object]] = []
    for timeline in index.timelines():
        files: list[dict[str, object]] = [
            {
                "name": entry.name,
                "first-event-at": (
                    entry.first_event_at.isoformat() if entry.first_event_at else None
                ),
                "last-event-at": entry.last_event_at.isoformat(),
                "gtids": entry.last_gtids,
                "stored-size": entry.stored_size,
            }
            for entry in index.entries(timeline.timeline_id)
        ]
        rows.append(
            {
                "timeline": timeline.timeline_id,
                "created-at": timeline.created_at.isoformat(),
                "parent": timeline.parent,
                "fork-backup": timeline.fork_backup,
                "files": files,
            }
        )
    done(state, rows, f"{len(rows)} timeline(s)")


def cmd_purge_binlogs(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Delete shipped binlogs that no complete backup needs."""
    catalog = make_catalog(spec)
    # the complete backups from the cluster's index, as the retention worker reads them
    # (`purge_with_binlogs`), not a GET of every backup.json
    kept = list(catalog.read_index().complete)
    doomed = BinlogCatalog(catalog).purge(kept, dry_run=args.dry_run)
    result = [f"{entry.timeline}/{entry.name}" for entry in doomed]
    verb = "would delete" if args.dry_run else "deleted"
    done(state, result, f"{verb} {len(result)} binlog(s)")
