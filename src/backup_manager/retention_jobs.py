"""Retention out of the hooks: started as a job of the manager's, collected by a later hook.

After a successful backup (and once a day, with a rebuild of the catalog index) the
leader starts `backup_manager.retention_worker` on the job runner the copies use
(`copying.start_job`: a 0600 spec, a detached worker, a hand-back that dispatches
`update-status`) and returns at once: a hook makes no storage request for retention,
whatever the size of the catalog. The run is a history record (`type: retention`,
`list-jobs` shows it); the hook that sees the worker's end records its outcome (what was
deleted, or why it failed: a failure shows in the status until a later run succeeds).
No `ops` here.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import secrets
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from database_backup.catalog import RetentionPolicy
from database_backup.catalog.documents import as_list, as_object
from database_backup.jobs import SUCCESS, job_key
from database_backup.timefmt import parse_time

from . import catalogs, copying
from .catalogs import format_time
from .history import Record
from .locations import Location
from .retention_worker import policy_spec

logger = logging.getLogger(__name__)

SCOPE = "retention"
RECORD_TYPE = "retention"
ENGINE = "backup_manager.retention_worker"
#: a run started by another unit (before a leadership change) is given up after this long
UNKNOWN_AFTER = datetime.timedelta(hours=6)


def new_id(now: datetime.datetime) -> str:
    """`retention-20261122T071500Z-3fa9`."""
    return f"{SCOPE}-{now.astimezone(datetime.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def _key(run_id: str) -> str:
    return job_key(SCOPE, run_id.removeprefix(f"{SCOPE}-"))


def start(
    state_dir: Path,
    targets: Sequence[tuple[str, str, Location]],
    policy: RetentionPolicy,
    protected: Collection[str],
    *,
    reindex: bool,
    reason: str,
    now: datetime.datetime,
    retain: bool = True,
) -> Record:
    """Start a retention run over `targets` (app, cluster id, location); return its record.

    Args:
        state_dir: the manager's job directories.
        targets: what to apply retention to.
        policy: the retention policy.
        protected: backup ids in use (never deleted).
        reindex: rebuild each catalog index first (the daily run, the reindex action).
        reason: why the run was started (the record's message while it runs).
        now: the current time.
        retain: apply the policy (False: only rebuild the indexes).
    """
    run_id = new_id(now)
    locations = {location.name: location for _, _, location in targets}
    spec: dict[str, Any] = {
        "retention-id": run_id,
        "requested-at": format_time(now),
        "policy": policy_spec(policy),
        "protected": sorted(protected),
        "reindex": reindex,
        "retain": retain,
        "incomplete-upload-age-seconds": catalogs.INCOMPLETE_UPLOAD_AGE.total_seconds(),
        "targets": [
            {"app": app, "cluster-id": cluster, "location": location.name}
            for app, cluster, location in targets
        ],
        "locations": [location.spec() for location in locations.values()],
    }
    labels = {"targets": spec["targets"]}  # no credentials: the job record is not private
    job = copying.ManagerJob(_key(run_id), run_id, kind=SCOPE, engine=ENGINE, labels=labels)
    unit = copying.start_job(state_dir, job, spec)
    apps = sorted({app for app, _, _ in targets})
    return Record(
        job_id=run_id,
        type=RECORD_TYPE,
        app=apps[0] if len(apps) == 1 else None,
        location=next(iter(locations)) if len(locations) == 1 else None,
        status="running",
        requested_at=format_time(now),
        started_at=format_time(now),
        unit=unit or None,
        message=reason,
    )


@dataclasses.dataclass(frozen=True)
class Ended:
    """A run whose end was recorded: its record, what it deleted, where it ran."""

    record: Record
    deleted: tuple[tuple[str, str, str], ...] = ()  #: (app, location, backup id)
    targets: tuple[tuple[str, str], ...] = ()  #: (app, location)


def running(records: Iterable[Record]) -> list[str]:
    """The ids of the retention runs not yet collected."""
    return [r.job_id for r in records if r.type == RECORD_TYPE and not r.finished]


def worker_ended(state_dir: Path, run_id: str) -> bool:
    """Whether this unit's worker for the run recorded its end (or never ran here)."""
    local = copying.job_store(state_dir).get(_key(run_id))
    return local is None or (local.finished_record() is not None and not local.is_locked())


def collect(state_dir: Path, records: Iterable[Record], now: datetime.datetime) -> list[Ended]:
    """Record the outcome of the runs that ended (in their `records`); return them."""
    ended: list[Ended] = []
    for record in records:
        if record.type != RECORD_TYPE or record.finished:
            continue
        result = _ended(state_dir, record, now)
        if result is not None:
            ended.append(result)
    return ended


def _ended(state_dir: Path, record: Record, now: datetime.datetime) -> Ended | None:
    local = copying.job_store(state_dir).get(_key(record.job_id))
    if local is None:
        started = _time(record.started_at) or now
        if now - started < UNKNOWN_AFTER:
            return None  # another unit runs it; its end is not seen here
        record.status = "error"
        record.finished_at = format_time(now)
        record.message = (
            f"the outcome is unknown: unit {record.unit or '?'} ran it and this unit leads "
            "now; retention runs again after the next backup"
        )
        return Ended(record)
    if local.is_dead():
        local.mark_dead("retention runs again after the next backup")
    outcome = local.outcome()
    if not outcome.finished:
        return None
    record.status = "success" if outcome.status == SUCCESS else "error"
    record.finished_at = outcome.finished_at or format_time(now)
    record.message = outcome.message or ""
    result = as_object(local.engine_state().result) or {}  # also after a partial failure
    deleted = _items(result.get("deleted"), "app", "location", "backup-id")
    record.extra["deleted-count"] = len(deleted)
    logger.info("retention %s: %s %s", record.job_id, record.status, record.message)
    targets = _items(local.record.labels.get("targets"), "app", "location")
    deleted_ids = tuple((item[0], item[1], item[2]) for item in deleted)
    return Ended(record, deleted_ids, tuple((item[0], item[1]) for item in targets))


def _items(value: object, *keys: str) -> list[tuple[str, ...]]:
    """The `keys` of each object of a JSON list, as strings."""
    found: list[tuple[str, ...]] = []
    for item in as_list(value) or []:
        entry = as_object(item) or {}
        found.append(tuple(str(entry.get(key)) for key in keys))
    return found


def _time(value: str | None) -> datetime.datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None
