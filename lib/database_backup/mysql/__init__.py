"""The MySQL/MariaDB backup engine (no `ops` imports).

Usage::

    from database_backup.catalog import Catalog, new_backup_id
    from database_backup.mysql import ConnectionSpec, SystemdServer, backup_full, restore_physical

    conn = ConnectionSpec(user="backup", password=password, host="127.0.0.1", port=3306)
    meta = backup_full(conn, catalog, backup_id=new_backup_id(now), workdir=work)
    restore_physical(conn, SystemdServer("mysql", "/var/lib/mysql"), catalog,
                     meta.backup_id, key=None, progress=print, workdir=work)

Part 2: `incremental` (incremental backups, chains), `logical` / `logical_restore`
(SQL dumps, whole or in part; `sqlfilter` picks databases/tables), `binlogs` (shipping;
`binlogfile` reads a binlog's events), `recovery_plan` and `pitr` (point-in-time
recovery; `replay` applies binlogs).

Modules: `connection` (ConnectionSpec, 0600 defaults file, queries through the client),
`flavour` (MySQL or MariaDB, and their tools), `server` (ServerControl, SystemdServer,
CommandServer), `commands` (tool command lines), `physical` (full backup to S3),
`datadir` (staging, swap and roll-back), `restore` (restore in place), `progress`.
"""

from .binlogs import BinlogError, ShipResult, ship_binlogs
from .connection import ConnectionSpec, QueryError, run_query
from .flavour import Flavour, FlavourError, detect
from .incremental import ChainError, backup_incremental, resolve_chain
from .logical import LogicalBackupError, backup_logical
from .logical_restore import LogicalRestoreError, restore_logical
from .physical import BackupError, backup_full
from .pitr import RecoveryResult, recover_to_point
from .progress import ProgressCallback, ProgressEvent
from .recovery_plan import RecoveryError, RecoveryPlan, plan_recovery, plan_restore_point
from .restore import RestoreError, RestoreResult, recover_interrupted_restore, restore_physical
from .server import CommandServer, ServerControl, ServerControlError, SystemdServer

__all__ = [
    "BackupError",
    "BinlogError",
    "ChainError",
    "CommandServer",
    "ConnectionSpec",
    "Flavour",
    "FlavourError",
    "LogicalBackupError",
    "LogicalRestoreError",
    "ProgressCallback",
    "ProgressEvent",
    "QueryError",
    "RecoveryError",
    "RecoveryPlan",
    "RecoveryResult",
    "RestoreError",
    "RestoreResult",
    "ServerControl",
    "ServerControlError",
    "ShipResult",
    "SystemdServer",
    "backup_full",
    "backup_incremental",
    "backup_logical",
    "detect",
    "plan_recovery",
    "plan_restore_point",
    "recover_interrupted_restore",
    "recover_to_point",
    "resolve_chain",
    "restore_logical",
    "restore_physical",
    "run_query",
    "ship_binlogs",
]
