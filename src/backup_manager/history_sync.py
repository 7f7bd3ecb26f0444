"""The manager's history kept in line with its jobs: provider statuses, retries, copies.

`sync` folds the statuses the providers publish into the history (and the job log lines,
the summary of the backups in storage, the drill ledger); `retry_refused` asks again for
the scheduled backups a restore refused; `collect_copies` picks up the copies' results.
Leader only, from reconcile and the job events.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import copying, drills, history, joblines
from .errors import ManagerError
from .relations import app_name

if TYPE_CHECKING:
    from .manager import Manager

logger = logging.getLogger(__name__)


def sync(manager: Manager) -> list[history.Record]:
    """Fold the providers' latest statuses into the history (leader)."""
    records = manager.state.history()
    changed = False
    for relation in manager.database_relations():
        app = app_name(relation)
        for tracked in manager.backups.jobs(relation):
            record = history.find(records, tracked.request.job_id)
            if record is None:
                record = drills.from_request(
                    tracked.request, app, _location_of(manager, tracked.request.storage.bucket)
                )
                records.append(record)
                changed = True
            if tracked.status is not None:
                before = record.status
                changed = drills.apply_status(record, tracked.status) or changed
                if manager.is_leader:
                    secrets = joblines.location_secrets(manager.setup.locations.values())
                    joblines.concluded(record, manager.cluster_id(relation), before, secrets)
                if before != "success":
                    _note_backup(manager, record)
    if changed:
        manager.state.save_history(records)
        drills.Ledger(manager.model).update(records)
    return records


def _note_backup(manager: Manager, record: history.Record) -> None:
    """A backup that just succeeded counts in the summary of the backups in storage."""
    if record.type != "backup" or record.status != "success":
        return
    if not record.backup_id:
        return
    location = record.location or ""
    if not location and manager.setup.backup_location is not None:
        location = manager.setup.backup_location.name
    manager.recorder.succeeded(record.app or "?", location, record.backup_id, record.finished_at)


def _location_of(manager: Manager, bucket: str) -> str:
    for location in manager.setup.locations.values():
        if location.bucket == bucket:
            return location.name
    return ""


def retry_refused(manager: Manager) -> list[str]:
    """Request again, once, the scheduled backups refused while a restore ran (leader).

    Runs from reconcile (so from update-status, and as soon as the restore's end is
    seen); `history.backups_to_retry` says which, and the history links the two jobs.
    """
    if not manager.is_leader:
        return []
    candidates = history.backups_to_retry(manager.state.history())
    apps = set(manager.apps())
    retried: list[str] = []
    for refused in candidates:
        app = refused.app or ""
        if app not in apps:
            continue
        location = manager.setup.locations.get(refused.location or "")
        catalogs = manager.catalogs()
        try:
            record = manager.request_backup(
                manager.relation_for(app),
                kind=refused.kind or "full",
                location=location,
                scheduled=True,
                catalogs=catalogs,
            )
        except ManagerError as exc:
            logger.error("retrying backup %s not requested: %s", refused.job_id, exc)
            continue
        finally:
            catalogs.close()
        records = manager.state.history()
        for item in records:
            if item.job_id == refused.job_id:
                item.retried_by = record.job_id
            elif item.job_id == record.job_id:
                item.retry_of = refused.job_id
        manager.state.save_history(records)
        logger.info(
            "scheduled backup %s was refused during a restore: retried as %s",
            refused.job_id,
            record.job_id,
        )
        retried.append(record.job_id)
    return retried


def collect_copies(manager: Manager) -> None:
    """Pick up the results of copies into the history (leader).

    From the local job where this unit started the copy, else from the destination
    storage (the copy was started by a previous leader).
    """
    running = manager.state.copies()
    if not running:
        return
    records = manager.state.history()
    catalogs = manager.catalogs()
    try:
        results = copying.collect(copying.STATE_DIR, running, records, catalogs)
    finally:
        catalogs.close()
    if not results:
        return
    for result in results:
        record = history.find(records, result["copy-id"])
        running.pop(result["copy-id"], None)
        if record is None:
            continue
        history.apply_copy_result(record, result)
        logger.info(
            "copy %s: %s %s", result["copy-id"], result["status"], result.get("message", "")
        )
    manager.state.save_history(records)
    manager.state.save_copies(running)
