"""The MySQL/MariaDB backup engine (no `ops` imports).

Usage::

    from database_backup.catalog import Catalog, new_backup_id
    from database_backup.mysql import ConnectionSpec, SystemdServer, backup_full, restore_physical

    conn = ConnectionSpec(user="backup", password=password, host="127.0.0.1", port=3306)
    meta = backup_full(conn, catalog, backup_id=new_backup_id(now), workdir=work)
    restore_physical(conn, SystemdServer("mysql", "/var/lib/mysql"), catalog,
                     meta.backup_id, key=None, progress=print, workdir=work)

Layout: shared tooling here (`connection`: ConnectionSpec, 0600 defaults file, queries
through the client; `flavour`: MySQL or MariaDB and their tools; `server`: ServerControl,
SystemdServer, CommandServer; `toolrun` / `toolstream`: running tools and streaming their
output to storage; `objects`: artefact streams; `progress`; `errors`), then one
subpackage per concept: `physical` (full and incremental backups, extract and prepare,
datadir swap, restore), `logical` (dump, restore, SQL filter), `binlog` (shipping,
reading, timeline ownership, replay) and `pitr` (plan, recover).
"""

from .binlog.shipping import BinlogError, ShipResult, ship_binlogs
from .connection import ConnectionSpec, QueryError, run_query
from .errors import DataChangeError, EngineError, RestoreError
from .flavour import Flavour, FlavourError, detect
from .logical.dump import LogicalBackupError, backup_logical
from .logical.restore import LogicalRestoreError, restore_logical
from .physical.backup import BackupError, backup_full
from .physical.incremental import ChainError, backup_incremental, resolve_chain
from .physical.restore import (
    RestoreResult,
    recover_interrupted_restore,
    restore_physical,
)
from .pitr.plan import RecoveryError, RecoveryPlan, plan_recovery, plan_restore_point
from .pitr.recover import RecoveryResult, recover_to_point
from .progress import ProgressCallback, ProgressEvent
from .server import CommandServer, ServerControl, ServerControlError, SystemdServer

__all__ = [
    "BackupError",
    "BinlogError",
    "ChainError",
    "CommandServer",
    "ConnectionSpec",
    "DataChangeError",
    "EngineError",
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
