"""One restore at a time per server: the lock `restore`, `pitr` and `recover` take first.

The lock is an exclusive `flock` on `<workdir>/restore.lock` (the charm gives the engine
one work directory per server, which shipping and every restore of that server share).
It is taken without waiting: a second restore of any kind is refused at once with who
holds it (read from the lock file, where the holder writes its command, backup, job
directory, pid and start time). The kernel drops a `flock` when its process dies, so a
killed restore never leaves it stale.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import cast

from database_backup.contract import EngineSpec, now_text
from database_backup.mysql.errors import EngineError

LOCK_NAME = "restore.lock"

#: the commands that change the server's data (a plan-only `pitr` changes nothing)
RESTORE_COMMANDS = frozenset({"restore", "pitr", "recover"})


class RestoreBusyError(EngineError):
    """Another restore, point-in-time recovery or recovery is running on this server."""


def needs_lock(args: argparse.Namespace) -> bool:
    """Whether the parsed command changes the server's data (and so takes the lock)."""
    return args.command in RESTORE_COMMANDS and not getattr(args, "plan_only", False)


def lock_path(spec: EngineSpec) -> Path:
    """The lock file of the server `spec` names."""
    return spec.work_dir / LOCK_NAME


def _holder(args: argparse.Namespace) -> dict[str, object]:
    state_file: Path | None = getattr(args, "state_file", None)
    return {
        "command": args.command,
        "backup-id": getattr(args, "backup_id", None),
        "job": state_file.parent.name if state_file is not None else None,
        "pid": os.getpid(),
        "started": now_text(),
    }


def _describe(fd: int, path: Path) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data: object = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        data = {}
    holder = cast("dict[str, object]", data) if isinstance(data, dict) else {}
    what = f"{holder.get('command') or 'restore'}"
    if holder.get("backup-id"):
        what += f" of backup {holder['backup-id']}"
    parts = [f"job {holder['job']}"] if holder.get("job") else []
    parts.append(f"pid {holder.get('pid', '?')}")
    parts.append(f"started {holder.get('started', '?')}")
    return (
        f"a restore ({what}; {', '.join(parts)}) is already running on this server "
        f"(lock {path}); wait for it to finish, then try again"
    )


@contextlib.contextmanager
def restore_lock(spec: EngineSpec, args: argparse.Namespace) -> Generator[None, None, None]:
    """Hold the server's restore lock(s) while the command runs.

    Raises:
        RestoreBusyError: another restore holds a lock (nothing was done).
    """
    holder = json.dumps(_holder(args)).encode()
    path = lock_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreBusyError(_describe(fd, path)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)
        yield
    finally:
        os.close(fd)
