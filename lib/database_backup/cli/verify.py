"""`verify`: a restore drill (restore into a scratch server, check, remove it).

`verify --backup-id ID [--point-in-time T] [--scratch-root DIR] [--min-free-bytes N]
[--job-id J] [--unit U]`: the spec is a restore's (storage, encryption key, connection
and server section of the live server, which is only read). The state file's result
holds the interface's `verification` object; the verdict is also written beside the
backup in storage. Exit 0 on a pass; 1 on a fail or an error, the state's message (the
reason) starting with `drill failed:`, `drill refused:` or `cancelled:`; 2 on bad usage.
The scratch server and its directory are removed in every case (SIGTERM too); the next
drill removes what a killed one left.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from database_backup import stopping
from database_backup.contract import EngineSpec
from database_backup.mysql.drill import (
    DrillCancelledError,
    DrillFailedError,
    DrillRequest,
    LiveServer,
    run_drill,
)

from . import options
from .factories import make_catalog, make_connection
from .report import done
from .state import StateFile

#: the default scratch root, under the engine's work directory
SCRATCH_DIR = "drills"


def _bytes(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more bytes")
    return value


def register(new_command: options.NewCommand) -> None:
    """Add the `verify` command."""
    verify = new_command("verify", "restore drill: restore a backup into a scratch server")
    verify.add_argument("--backup-id", required=True, help="the backup to drill")
    verify.add_argument(
        "--point-in-time", type=options.target, help="replay binlogs to this time (or latest)"
    )
    verify.add_argument(
        "--scratch-root",
        type=Path,
        help=f"where scratch servers live (default: <workdir>/{SCRATCH_DIR}; never in the "
        "live datadir)",
    )
    verify.add_argument(
        "--min-free-bytes",
        type=_bytes,
        help="bytes to keep free there (default: max(10%% of the filesystem, 1 GiB))",
    )
    verify.add_argument("--job-id", help="the job asking (stored with the verdict)")
    verify.add_argument("--unit", help="this unit's name (default: $JUJU_UNIT_NAME)")
    verify.add_argument(
        "--parallel",
        type=options.positive,
        default=1,
        help="xbstream -x threads (MySQL; MariaDB streams are unpacked in-process)",
    )
    verify.add_argument(
        "--start-timeout", type=float, default=300.0, help="seconds for the scratch server"
    )
    verify.add_argument(
        "--sums-budget", type=float, default=600.0, help="seconds for the table sums"
    )


def cmd_verify(args: argparse.Namespace, spec: EngineSpec, state: StateFile) -> None:
    """Run the drill; record the verdict; raise on anything but a pass."""
    request = DrillRequest(
        backup_id=args.backup_id,
        scratch_root=args.scratch_root or spec.work_dir / SCRATCH_DIR,
        point_in_time=args.point_in_time,
        min_free_bytes=args.min_free_bytes,
        job_id=args.job_id,
        unit=args.unit or os.environ.get("JUJU_UNIT_NAME") or None,
        start_timeout=args.start_timeout,
        sums_budget_seconds=args.sums_budget,
        parallel=args.parallel,
    )
    datadir = Path(spec.server.datadir) if spec.server is not None else None
    state.update(backup_id=args.backup_id, phase="drill-restoring")
    try:
        outcome = run_drill(
            make_catalog(spec),
            LiveServer(make_connection(spec), datadir),
            request,
            key=spec.encryption_key,
            progress=state.progress,
        )
    except stopping.TerminatedError as exc:
        raise DrillCancelledError(str(exc)) from exc
    result = outcome.to_result()
    if not outcome.verification.passed:
        state.update(result=result)
        raise DrillFailedError(outcome.verification.reason or "the drill failed")
    done(state, result, "drill passed")
