"""Command-line entry point of the backup engine: `database-backup <command> --spec SPEC`.

Commands: `backup` (full, incremental, logical), `restore`, `recover`, `pitr`, `list`,
`ship-binlogs`, `list-binlogs`, `purge-binlogs`; run `database-backup <command> --help`.
`python -m database_backup.cli` is the same as the `database-backup` script.

Everything secret comes from the JSON spec file (`database_backup.contract.EngineSpec`),
which must not be readable by group or others (mode 0600 or stricter), or from
environment variables, never from the command line: `DATABASE_BACKUP_S3_ACCESS_KEY`,
`DATABASE_BACKUP_S3_SECRET_KEY`, `DATABASE_BACKUP_DB_PASSWORD`,
`DATABASE_BACKUP_ENCRYPTION_KEY` override the spec's secrets.

SIGTERM stops a command cleanly: a backup deletes its partial artefact, a restore puts the
previous data back (a SIGKILLed restore is undone by `recover`, or by the next restore).

With `--state-file PATH` the command keeps a `database_backup.contract.EngineState` up to
date (written to a temporary file and renamed, so readers never see half of it): `status`
(running, success, error), `phase`, `bytes-done`, `bytes-estimated`, times, `message`,
on success `result`, and after a failed restore `data-changed`. Exit codes: 0 success,
1 the operation failed, 2 bad arguments or spec.

Modules: `app` (parser, exit codes, `main`, `run`), `leaving` (the process's exit),
`spec_file` (reading the 0600 spec), `state` (the state file), `factories` (catalog,
connection and server from the spec), one module per command group: `backup`, `restore`
(restore, recover, pitr), `binlogs` (ship, list, purge) and `listing` (list).
"""

from database_backup.contract import EngineSpec, SpecError

from .app import COMMANDS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, build_parser, main, run
from .listing import format_table
from .spec_file import (
    ENV_ACCESS_KEY,
    ENV_DB_PASSWORD,
    ENV_ENCRYPTION_KEY,
    ENV_SECRET_KEY,
    build_spec,
    load_spec,
    read_spec_file,
)
from .state import StateFile

__all__ = [
    "COMMANDS",
    "ENV_ACCESS_KEY",
    "ENV_DB_PASSWORD",
    "ENV_ENCRYPTION_KEY",
    "ENV_SECRET_KEY",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EngineSpec",
    "SpecError",
    "StateFile",
    "build_parser",
    "build_spec",
    "format_table",
    "load_spec",
    "main",
    "read_spec_file",
    "run",
]
