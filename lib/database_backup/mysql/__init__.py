"""The MySQL/MariaDB backup engine (no `ops` imports).

Usage::

    from database_backup.catalog import Catalog, new_backup_id
    from database_backup.mysql import ConnectionSpec, SystemdServer, backup_full, restore_physical

    conn = ConnectionSpec(user="backup", password=password, host="127.0.0.1", port=3306)
    meta = backup_full(conn, catalog, backup_id=new_backup_id(now), workdir=work)
    restore_physical(conn, SystemdServer("mysql", "/var/lib/mysql"), catalog,
                     meta.backup_id, key=None, progress=print, workdir=work)

Modules: `connection` (ConnectionSpec, 0600 defaults file, queries through the client),
`flavour` (MySQL or MariaDB, and their tools), `server` (ServerControl, SystemdServer,
CommandServer), `commands` (tool command lines), `physical` (full backup to S3),
`datadir` (staging, swap and roll-back), `restore` (restore in place), `progress`.
"""

from .connection import ConnectionSpec, QueryError, run_query
from .flavour import Flavour, FlavourError, detect
from .physical import BackupError, backup_full
from .progress import ProgressCallback, ProgressEvent
from .restore import RestoreError, RestoreResult, recover_interrupted_restore, restore_physical
from .server import CommandServer, ServerControl, ServerControlError, SystemdServer

__all__ = [
    "BackupError",
    "CommandServer",
    "ConnectionSpec",
    "Flavour",
    "FlavourError",
    "ProgressCallback",
    "ProgressEvent",
    "QueryError",
    "RestoreError",
    "RestoreResult",
    "ServerControl",
    "ServerControlError",
    "SystemdServer",
    "backup_full",
    "detect",
    "recover_interrupted_restore",
    "restore_physical",
    "run_query",
]
