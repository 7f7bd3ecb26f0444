"""The unit's status: the first thing to fix, or a summary of what the manager does."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import ops

from . import catalog_summary, drills, history, schedule
from .catalog_summary import Summary
from .config import ManagerConfig
from .history import Record
from .setup import Setup


def unit_status(
    setup: Setup,
    has_databases: bool,
    records: list[Record],
    storage_problems: Mapping[str, Mapping[str, str]],
    stored: Summary,
    *,
    nag: str = "",
    drill_failures: list[drills.Outcome] | None = None,
) -> ops.StatusBase:
    """Blocked or waiting with the exact reason, else active with a summary (`nag` first).

    A failed restore drill blocks after everything that stops the manager from working
    (config, storage, relations): backups still run, but the admin must act - the newest
    drill of an application says its backups may not restore - and only a later drill of
    that application that passes clears it (see `drills`).
    """
    if setup.config is None:
        return ops.BlockedStatus(f"invalid config: {setup.config_error}")
    if setup.blocked:
        return ops.BlockedStatus(setup.blocked[0])
    if setup.backup_location is None:
        return ops.WaitingStatus(setup.waiting[0] if setup.waiting else "waiting for storage")
    for name, location in sorted(setup.locations.items()):
        problem = storage_problems.get(name)
        if problem and problem.get("fingerprint") == location.fingerprint:
            return ops.BlockedStatus(f"storage location {name}: {problem.get('message')}")
    if not has_databases:
        return ops.BlockedStatus(
            "no database related: juju integrate backup-manager:database-backup <db-app>"
        )
    if drill_failures:
        return ops.BlockedStatus(drills.failure_message(drill_failures))
    text = summary(setup.config, records, stored)
    return ops.ActiveStatus(f"{nag}; {text}" if nag else text)


def summary(
    config: ManagerConfig,
    records: list[Record],
    stored: Summary,
    now: datetime.datetime | None = None,
) -> str:
    """`N running; last backup X (app) at T; <failures>; next T; N backups in storage`.

    What is said about backups comes from the catalog summary (`catalog_summary`: the
    catalog is the truth, and clearing the job history does not change it); running jobs
    and failures come from the job history. Until the manager has read a catalog, a backup
    the history saw completing is reported, without a count.
    """
    parts: list[str] = []
    running = sum(1 for r in records if r.status in history.IN_FLIGHT)
    if running:
        parts.append(f"{running} job{'' if running == 1 else 's'} running")
    newest = catalog_summary.newest(stored)
    last = history.last_success(records)
    if newest is not None:
        parts.append(f"last backup {newest.newest} ({newest.app}) at {newest.newest_at or '?'}")
    elif stored or last is None:
        parts.append("no backup yet")
    else:
        parts.append(
            f"last backup {last.backup_id or last.job_id} ({last.app}) "
            f"at {'?' if last.finished_at is None else last.finished_at}"
        )
    failures = history.open_failures(records)
    if failures:
        failed = [f"{r.type} {r.job_id} failed" for r in failures]
        parts.append("; ".join(failed) + " (see list-jobs)")
    now = now or datetime.datetime.now().astimezone()
    next_time = schedule.next_run(config.schedule, now)
    parts.append(f"next {next_time:%Y-%m-%d %H:%M %Z}" if next_time else "schedule off")
    if stored:
        count = catalog_summary.total(stored)
        parts.append(f"{count} backup{'' if count == 1 else 's'} in storage")
    return "; ".join(parts)
