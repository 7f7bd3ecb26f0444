"""Backup schedule: cron arithmetic, catch-up of missed runs, and the cron entry.

Times are evaluated in the machine's local time zone, as cron does (UTC on cloud images).
The cron entry dispatches the charm's `scheduled-backup` event through `juju-exec`; the
charm decides with `due_kind` what (if anything) to run, so a late cron run and an
`update-status` catch-up never both take a backup for the same slot.
"""

from __future__ import annotations

import dataclasses
import datetime
import shlex
from pathlib import Path

from croniter import croniter

CRON_FILE = Path("/etc/cron.d/backup-manager")
EVENT_NAME = "scheduled-backup"


@dataclasses.dataclass(frozen=True)
class Schedule:
    """What runs when: `main` fires `main_kind` backups; `full` (optional) fires fulls."""

    main: str
    main_kind: str = "full"
    full: str = ""

    @property
    def enabled(self) -> bool:
        """True when at least one expression is set."""
        return bool(self.main or self.full)


def previous_fire(expression: str, now: datetime.datetime) -> datetime.datetime:
    """The latest time at or before `now` the expression fired."""
    return croniter(expression, now + datetime.timedelta(seconds=1)).get_prev(datetime.datetime)


def next_fire(expression: str, now: datetime.datetime) -> datetime.datetime:
    """The first time strictly after `now` the expression fires."""
    return croniter(expression, now).get_next(datetime.datetime)


def next_run(schedule: Schedule, now: datetime.datetime) -> datetime.datetime | None:
    """When the next scheduled backup of any kind is due, or None if scheduling is off."""
    times = [next_fire(expr, now) for expr in (schedule.main, schedule.full) if expr]
    return min(times) if times else None


def due_kind(
    schedule: Schedule,
    now: datetime.datetime,
    last_slot: datetime.datetime | None,
) -> tuple[str, datetime.datetime] | None:
    """The kind of backup due now and its slot, or None.

    A slot is the fire time the run belongs to. It is due when it is newer than
    `last_slot` (the slot of the last scheduled run); only the newest missed slot is
    caught up, never a backlog. When a full and an incremental slot coincide (or both
    were missed), the full wins: an incremental on top of a stale chain is worth less.
    """
    if last_slot is None:
        # Never seeded: the charm seeds the slot when scheduling starts, so nothing from
        # before that (before the charm existed) is ever "caught up".
        return None
    candidates: list[tuple[datetime.datetime, str]] = []
    if schedule.full:
        candidates.append((previous_fire(schedule.full, now), "full"))
    if schedule.main:
        candidates.append((previous_fire(schedule.main, now), schedule.main_kind))
    due = [(slot, kind) for slot, kind in candidates if slot > last_slot]
    if not due:
        return None
    kind = "full" if any(k == "full" for _, k in due) else due[0][1]
    return kind, max(slot for slot, _ in due)


def cron_entry(schedule: Schedule, unit_name: str, charm_dir: Path) -> str:
    """The /etc/cron.d content dispatching `scheduled-backup` on each fire time."""
    dispatch = f"JUJU_DISPATCH_PATH=hooks/{EVENT_NAME} {shlex.quote(str(charm_dir / 'dispatch'))}"
    command = f"juju-exec {shlex.quote(unit_name)} {shlex.quote(dispatch)}"
    lines = ["# Managed by the backup-manager charm; changes are overwritten.", "SHELL=/bin/sh"]
    for expression in dict.fromkeys(e for e in (schedule.main, schedule.full) if e):
        lines.append(f"{expression} root {command} >/dev/null 2>&1")
    return "\n".join(lines) + "\n"


def write_cron(
    schedule: Schedule, unit_name: str, charm_dir: Path, path: Path = CRON_FILE
) -> bool:
    """Install (or remove, when scheduling is off) the cron entry; True if it changed."""
    if not schedule.enabled:
        if path.exists():
            path.unlink()
            return True
        return False
    content = cron_entry(schedule, unit_name, charm_dir)
    if path.exists() and path.read_text() == content:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True
