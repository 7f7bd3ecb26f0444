"""The parser, the command table and `main`: parse, read the spec, run, map to an exit code.

Exit codes: 0 success, 1 the operation failed, 2 bad arguments or spec, 3 another restore
is running on this server (`restore`, `pitr` and `recover` hold one lock per server).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from database_backup import stopping
from database_backup.contract import EngineSpec, SpecError

from . import backup, binlogs, listing, reindex, restore, verify
from .heap import keep_freed_buffers
from .leaving import leave
from .restore_lock import RestoreBusyError, needs_lock, restore_lock
from .spec_file import load_spec
from .state import StateFile

logger = logging.getLogger("database_backup.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3

#: runs one command: records its result in the state file and prints it (raises on failure)
Command = Callable[[argparse.Namespace, EngineSpec, StateFile], None]

COMMANDS: dict[str, Command] = {
    "backup": backup.cmd_backup,
    "restore": restore.cmd_restore,
    "recover": restore.cmd_recover,
    "list": listing.cmd_list,
    "ship-binlogs": binlogs.cmd_ship,
    "pitr": restore.cmd_pitr,
    "list-binlogs": binlogs.cmd_list_binlogs,
    "purge-binlogs": binlogs.cmd_purge_binlogs,
    "verify": verify.cmd_verify,
    "reindex": reindex.cmd_reindex,
}


def _on_sigterm(signum: int, _frame: object) -> None:
    raise stopping.request(f"stopped by signal {signal.Signals(signum).name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no option takes a secret)."""
    parser = argparse.ArgumentParser(
        prog="database-backup",
        description="Back up and restore MySQL/MariaDB to S3. Secrets come from the 0600 "
        "spec file or DATABASE_BACKUP_* environment variables, never from arguments.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--spec", type=Path, required=True, help="JSON spec file (mode 0600)")
    common.add_argument("--state-file", type=Path, help="JSON progress/result file to keep")

    def new_command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help_text)

    backup.register(new_command)
    restore.register(new_command)
    listing.register(new_command)
    binlogs.register_ship(new_command)
    restore.register_pitr(new_command)
    binlogs.register_listing(new_command)
    verify.register(new_command)
    reindex.register(new_command)
    return parser


def run() -> NoReturn:
    """The process's entry point (`database-backup`, `python -m database_backup.cli`).

    `main()`, then the exit without the interpreter's final collections (`leaving`).
    """
    leave(main())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    state = StateFile(args.state_file, args.command)
    signal.signal(signal.SIGTERM, _on_sigterm)
    keep_freed_buffers()
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        state.update(status="error", phase="spec", message=str(exc), finished=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    state.write()
    try:
        with restore_lock(spec, args) if needs_lock(args) else contextlib.nullcontext():
            COMMANDS[args.command](args, spec, state)
    except RestoreBusyError as exc:
        state.update(status="error", phase="lock", message=str(exc), finished=True,
                     data_changed=False)  # fmt: skip
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except SpecError as exc:
        state.update(status="error", message=str(exc), finished=True)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        logger.debug("failure details", exc_info=True)
        state.update(
            status="error", message=message, finished=True, data_changed=_data_changed(exc)
        )
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILED
    state.update(finished=True)
    return EXIT_OK


def _data_changed(exc: BaseException) -> bool | None:
    """Whether a failed restore or recovery touched the server's data (None: not known)."""
    value: object = getattr(exc, "data_changed", None)
    return value if isinstance(value, bool) else None
