"""Backup schedule: cron arithmetic, catch-up of missed runs, and the cron entry.

Times are evaluated in the machine's local time zone, as cron does (UTC on cloud images).
The cron entry dispatches the charm's `scheduled-backup` event through `juju-exec`; the
charm decides with `due_kind` what (if anything) to run, so a late cron run and an
`update-status` catch-up never both take a backup for the same slot.

Each unit has its own cron file (`/etc/cron.d/backup-manager_<app>-<n>`), so two units or
two applications on one machine never overwrite or delete each other's, and its own log
(`/var/log/backup-manager/<app>-<n>-schedule.log`) of what `juju-exec` said at each run.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import shlex
from pathlib import Path

from croniter import croniter

CRON_DIR = Path("/etc/cron.d")
LOG_DIR = Path("/var/log/backup-manager")
LOG_MAX_BYTES = 256 * 1024
JUJU_EXEC = "/usr/bin/juju-exec"
EVENT_NAME = "scheduled-backup"
DRILL_EVENT_NAME = "scheduled-drill"
# The one file every unit wrote before files were per unit (removed by the unit it names).
_SHARED_CRON_NAME = "backup-manager"
# cron ignores /etc/cron.d files whose names have other characters (a dot, for one).
_NOT_CRON_SAFE = re.compile(r"[^A-Za-z0-9_-]")
# The time each run starts, in the log; cron reads `%` as a newline unless escaped.
_STAMP = r"date -u +\%Y-\%m-\%dT\%H:\%M:\%SZ"


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


def due_slot(
    expression: str, now: datetime.datetime, last_slot: datetime.datetime | None
) -> datetime.datetime | None:
    """The newest fire time of `expression` after `last_slot` (due now), or None.

    As for backups: never seeded means nothing is due, and only the newest missed slot is
    caught up.
    """
    if not expression or last_slot is None:
        return None
    slot = previous_fire(expression, now)
    return slot if slot > last_slot else None


def unit_slug(unit_name: str) -> str:
    """`app/0` -> `app-0`, with only characters cron accepts in a file name."""
    return _NOT_CRON_SAFE.sub("_", unit_name.replace("/", "-"))


def cron_file(unit_name: str) -> Path:
    """This unit's file in /etc/cron.d."""
    return CRON_DIR / f"backup-manager_{unit_slug(unit_name)}"


def log_file(unit_name: str) -> Path:
    """The log of this unit's scheduled dispatches (juju-exec's output, with start times)."""
    return LOG_DIR / f"{unit_slug(unit_name)}-schedule.log"


def cron_entry(
    schedule: Schedule, unit_name: str, charm_dir: Path, log: Path, drill: str = ""
) -> str:
    """The /etc/cron.d content dispatching `scheduled-backup` on each fire time.

    And `scheduled-drill` on each fire time of the `drill` expression (none when empty).
    """

    def run(event: str) -> str:
        dispatch = f"JUJU_DISPATCH_PATH=hooks/{event} {shlex.quote(str(charm_dir / 'dispatch'))}"
        command = f"{shlex.quote(JUJU_EXEC)} {shlex.quote(unit_name)} {shlex.quote(dispatch)}"
        return f"({_STAMP}; {command}) >> {shlex.quote(str(log))} 2>&1"

    lines = ["# Managed by the backup-manager charm; changes are overwritten.", "SHELL=/bin/sh"]
    for expression in dict.fromkeys(e for e in (schedule.main, schedule.full) if e):
        lines.append(f"{expression} root {run(EVENT_NAME)}")
    if drill:
        lines.append(f"{drill} root {run(DRILL_EVENT_NAME)}")
    return "\n".join(lines) + "\n"


def write_cron(schedule: Schedule, unit_name: str, charm_dir: Path, drill: str = "") -> bool:
    """Install (or remove, when scheduling is off) this unit's cron entry; True if it changed.

    `drill` is the drill schedule's expression (empty: no drills). Only this unit's file is
    touched, and the pre-per-unit shared file when it names this unit. The log stays when
    scheduling stops, for the admin to read.
    """
    _remove_shared_file(unit_name)
    path = cron_file(unit_name)
    if not schedule.enabled and not drill:
        if path.exists():
            path.unlink()
            return True
        return False
    log = log_file(unit_name)
    _prepare_log(log)
    content = cron_entry(schedule, unit_name, charm_dir, log, drill)
    if path.exists() and path.read_text() == content:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True


def _remove_shared_file(unit_name: str) -> None:
    shared = CRON_DIR / _SHARED_CRON_NAME
    if not shared.is_file():
        return
    if f"juju-exec {shlex.quote(unit_name)} " in shared.read_text(errors="replace"):
        shared.unlink()


def _prepare_log(log: Path) -> None:
    """Create the log (and its directory); keep only its newest part past LOG_MAX_BYTES."""
    log.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    if not log.exists():
        log.touch(mode=0o640)
        return
    if log.stat().st_size <= LOG_MAX_BYTES:
        return
    with log.open("rb") as handle:
        handle.seek(-(LOG_MAX_BYTES // 2), 2)
        tail = handle.read()
    newline = tail.find(b"\n")
    tmp = log.with_name(f".{log.name}.tmp")
    tmp.write_bytes(tail[newline + 1 :] if newline >= 0 else tail)
    tmp.chmod(0o640)
    tmp.replace(log)
