"""`restore`, `recover` and `pitr`: putting data back into the running server.

- `restore --backup-id ID [--databases ... | --tables ...]`: a logical backup is applied
  to the running server (optionally only those parts); a physical one (an incremental one
  with its chain) replaces the datadir. Once binlogs are shipped, a physical restore ships
  the server's binlogs first and starts a new timeline (like `pitr` without replay), so
  the old and the new history never mix in storage (`--no-ship-first` when the server is
  lost);
- `recover`: undo a restore whose process died (a restore does this by itself first);
- `pitr --target TIME|latest [--backup-id ID] [--plan-only] [--no-ship-first]`:
  point-in-time recovery into the running server (needs the spec's `server` section).

`restore` and `pitr` take `--source-cluster <model-uuid>/<app>` to clone another cluster
(same bucket and path): its backup is restored and its binlogs replayed, then this server
writes its own timeline and backups under the spec's `cluster-id`; the source's prefix is
only read.

Shipping and recovery share a lock in `<workdir>/binlogs/`.

A restore's start: the server's status and flavour (processes) are asked in a thread
while the storage client is built (the AWS SDK's import, GIL-bound); `backup.json` is read
once and both are handed to the engine, which asks neither again.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

from database_backup.catalog import BackupMetadata, Catalog, check_cluster_id
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.contract import EngineSpec, SpecError
from database_backup.mysql import (
    ProgressEvent,
    plan_recovery,
    recover_interrupted_restore,
    recover_to_point,
    restore_logical,
    restore_physical,
)
from database_backup.mysql.binlog.shipping import binlog_lock
from database_backup.mysql.errors import EngineError
from database_backup.mysql.flavour import Flavour, detect
from database_backup.mysql.physical.restore import ServerProbe, in_background, probe_server
from database_backup.mysql.pitr.plan import parse_target

from . import options
from .factories import make_catalog, make_connection, make_server
from .report import done
from .state import StateFile

logger = logging.getLogger("database_backup.cli")


def register(new_command: options.NewCommand) -> None:
    """Add the `restore` and `recover` commands."""
    restore = new_command("restore", "restore a backup in place")
    restore.add_argument("--backup-id", required=True, help="the backup to restore")
    restore.add_argument(
        "--parallel",
        type=options.positive,
        default=1,
        help="xbstream -x threads (MySQL; MariaDB streams are unpacked in-process)",
    )
    restore.add_argument(
        "--verify-timeout", type=float, default=120.0, help="seconds for the server to answer"
    )
    restore.add_argument(
        "--no-ship-first",
        action="store_true",
        help="physical, with binlogs shipped: do not ship the server's binlogs first",
    )
    _source_option(restore)
    parts = restore.add_mutually_exclusive_group()
    parts.add_argument(
        "--databases", type=options.names, help="logical: restore only these databases"
    )
    parts.add_argument(
        "--tables", type=options.names, help="logical: restore only these db.tables"
    )
    new_command("recover", "undo a restore whose process died (server section)")


def register_pitr(new_command: options.NewCommand) -> None:
    """Add the `pitr` command."""
    pitr = new_command("pitr", "point-in-time recovery in place")
    pitr.add_argument(
        "--target", type=options.target, required=True, help="ISO 8601 time or latest"
    )
    pitr.add_argument("--backup-id", help="start from this backup (default: newest suitable)")
    pitr.add_argument("--plan-only", action="store_true", help="print the plan, change nothing")
    pitr.add_argument(
        "--no-ship-first", action="store_true", help="do not ship the server's binlogs first"
    )
    pitr.add_argument("--binlog-dir", help="where the binlog files are (default: the server's)")
    pitr.add_argument("--compression-level", type=options.level, default=3, help="zstd level")
    pitr.add_argument("--verify-timeout", type=float, default=120.0, help="seconds to answer")
    _source_option(pitr)


def _source_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source-cluster",
        help="clone: read the backup (and binlogs) of this cluster id, like <model-uuid>/<app>",
    )


def _source(args: argparse.Namespace, catalog: Catalog) -> Catalog | None:
    """The catalog to read from when cloning another cluster (same storage), else None.

    Raises:
        SpecError: the source cluster id is not a safe prefix.
    """
    given: str | None = args.source_cluster
    if not given or given.strip("/") == catalog.cluster_id:
        return None
    try:
        return Catalog(catalog.storage, check_cluster_id(given.strip("/")))
    except ValueError as exc:
        raise SpecError(f"invalid source cluster: {exc}") from None


def cmd_restore(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Physical restore (chains included) or logical restore."""
    work = spec.work_dir / f"restore-{args.backup_id}"
    probe = in_background(lambda: _probe(spec, work), "restore-probe")  # processes: GIL free
    catalog = make_catalog(spec)  # the SDK's import and the client, meanwhile
    source = _source(args, catalog)
    meta = (source or catalog).read_metadata(args.backup_id)
    if meta.kind != "logical":
        if args.databases or args.tables:
            raise SpecError("--databases/--tables restore parts of logical backups only")
        _restore_physical(args, spec, state, (catalog, source), meta, probe)
        return
    state.update(backup_id=args.backup_id, phase="download")  # then check, apply
    result = restore_logical(
        make_connection(spec),
        source or catalog,
        args.backup_id,
        databases=args.databases or (),
        tables=args.tables or (),
        key=spec.encryption_key,
        progress=lambda event: _logical_progress(state, event),
        workdir=work,
        meta=meta,
        flavour=_flavour_of(probe()),
    )
    summary = {
        "backup-id": result.backup_id,
        "databases": result.databases,
        "tables": result.tables,
        "bytes-applied": result.bytes_applied,
        "seconds": round(result.seconds, 3),
    }
    done(state, summary, "restore complete")


def _logical_progress(state: StateFile, event: ProgressEvent) -> None:
    """A logical restore's progress; `data-changed` says whether statements were applied.

    The charm reads it when the worker died: False before the first statement, True from
    the `apply` phase on (nothing can put that back); a physical restore leaves it unset
    (its journal lets `recover` put the previous data back).
    """
    changed = event.phase == "apply"
    if state.state.data_changed is not True:
        state.update(data_changed=changed, force=changed)
    state.progress(event)


def _probe(spec: EngineSpec, work: Path) -> ServerProbe | None:
    """The server's status and flavour (without a server section: the flavour only).

    None when asking failed: the engine then asks again and reports the error as before.
    """
    try:
        work.mkdir(parents=True, exist_ok=True)
        if spec.server is not None:
            return probe_server(make_connection(spec), make_server(spec), work)
        return ServerProbe(running=True, flavour=detect(make_connection(spec), workdir=work))
    except (EngineError, OSError, SpecError) as exc:
        logger.debug("probing the server before the restore failed: %s", exc)
        return None


def _flavour_of(probe: ServerProbe | None) -> Flavour | None:
    return probe.flavour if probe is not None else None


def _restore_physical(
    args: argparse.Namespace,
    spec: EngineSpec,
    state: StateFile,
    catalogs: tuple[Catalog, Catalog | None],
    meta: BackupMetadata,
    probe: Callable[[], ServerProbe | None],
) -> None:
    """Replace the datadir; once binlogs are shipped, on a new timeline (see pitr)."""
    catalog, source = catalogs
    with binlog_lock(spec.work_dir / "binlogs", timeout=300):  # no shipment meanwhile
        if not BinlogCatalog(catalog).timelines():
            _restore_datadir(args, spec, state, source or catalog, meta, probe())
            return
    probe()  # finished before the shipping starts (its answer is not used there)
    state.update(backup_id=args.backup_id, phase="ship")
    result = recover_to_point(
        make_connection(spec),
        make_server(spec),
        catalog,
        None,
        workdir=spec.work_dir / "binlogs",
        backup_id=args.backup_id,
        key=spec.encryption_key,
        ship_first=not args.no_ship_first,
        progress=state.progress,
        verify_timeout=args.verify_timeout,
        replay_binlogs=False,
        source=source,
    )
    done(state, result.to_dict(), "restore complete (new binlog timeline)")


def _restore_datadir(
    args: argparse.Namespace,
    spec: EngineSpec,
    state: StateFile,
    catalog: Catalog,
    meta: BackupMetadata,
    probe: ServerProbe | None,
) -> None:
    """Restore a physical backup (with its chain) into the running server."""
    server = make_server(spec)
    state.update(backup_id=args.backup_id, phase="download")
    logger.info("restoring backup %s into %s", args.backup_id, server.datadir)
    result = restore_physical(
        make_connection(spec),
        server,
        catalog,
        args.backup_id,
        key=spec.encryption_key,
        progress=state.progress,
        workdir=spec.work_dir / f"restore-{args.backup_id}",
        verify_timeout=args.verify_timeout,
        parallel=args.parallel,
        meta=meta,
        probe=probe,
    )
    summary = {
        "backup-id": result.backup_id,
        "flavour": result.flavour,
        "server-version": result.server_version,
        "stored-bytes": result.stored_bytes,
        "raw-bytes": result.raw_bytes,
        "seconds": round(result.seconds, 3),
        "binlog-file": result.binlog_file,
        "binlog-position": result.binlog_position,
        "gtid-set": result.gtid_set,
        "recovered": result.recovered,
    }
    state.succeed("restore complete", summary)
    print(json.dumps(summary, indent=2))


def cmd_recover(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Undo a restore whose worker died (restore does this by itself first)."""
    server = make_server(spec)
    state.update(phase="recover")
    message = recover_interrupted_restore(server) or "no interrupted restore found"
    logger.info("%s", message)
    state.succeed(message)
    print(message)


def cmd_pitr(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Point-in-time recovery (or its plan)."""
    target = parse_target(args.target)
    catalog = make_catalog(spec)
    source = _source(args, catalog)
    if args.plan_only:
        plan = plan_recovery(source or catalog, target, backup_id=args.backup_id)
        done(state, plan.to_dict(), "recovery plan")
        return
    state.update(phase="ship")
    result = recover_to_point(
        make_connection(spec),
        make_server(spec),
        catalog,
        target,
        workdir=spec.work_dir / "binlogs",
        backup_id=args.backup_id,
        key=spec.encryption_key,
        compression_level=args.compression_level,
        ship_first=not args.no_ship_first,
        binlog_dir=args.binlog_dir,
        progress=state.progress,
        verify_timeout=args.verify_timeout,
        source=source,
    )
    done(state, result.to_dict(), "point-in-time recovery complete")
