"""Scheduled restore drills: what the `scheduled-drill` event (and its catch-up) asks for.

Cron dispatches `scheduled-drill` on each fire time of `drill-schedule`; `update-status`
catches up a missed one, as for backups (`schedule.due_slot`). Each due slot asks every
related application for a drill of its newest complete backup in the backup location
(replayed to the latest shipped binlog with `drill-point-in-time`). An application with a
drill still running is skipped, one without a complete backup has nothing to verify; when
no drill could be asked for because of an error (a restore running, storage unreachable),
the slot stays due and the next `update-status` tries again.
"""

from __future__ import annotations

import datetime
import logging

from database_backup.interface import LATEST

from . import drills, schedule
from .errors import ManagerError
from .manager import Manager, app_name
from .params import KINDS

logger = logging.getLogger(__name__)


def run(manager: Manager, now: datetime.datetime | None = None) -> list[str]:
    """Request the drills due now (leader); return their job ids."""
    setup = manager.setup
    ready = setup.ready
    if not manager.is_leader or setup.config is None or ready is None:
        return []
    config = ready.config
    ledger = drills.Ledger(manager.model)
    now = now or datetime.datetime.now().astimezone()
    slot = schedule.due_slot(config.drill_schedule, now, ledger.last_slot)
    if slot is None:
        return []
    location = ready.backup_location
    records = manager.sync_history()
    job_ids: list[str] = []
    failed = False
    catalogs = manager.catalogs()
    try:
        for relation in manager.database_relations():
            app = app_name(relation)
            running = drills.in_flight(records, app)
            if running is not None:
                logger.info("scheduled drill of %s skipped: %s still runs", app, running.job_id)
                continue
            try:
                drills.check_free(records, app)
                backup = catalogs.newest(app, location, KINDS)
                if backup is None:
                    logger.info(
                        "scheduled drill of %s: no complete backup in %s to verify",
                        app,
                        location.name,
                    )
                    continue
                replay = config.drill_point_in_time and catalogs.has_binlogs(app, location)
                record = manager.request_drill(
                    relation,
                    location=location,
                    backup=backup,
                    point_in_time=LATEST if replay else None,
                    scheduled=True,
                )
            except ManagerError as exc:
                logger.error("scheduled drill of %s not requested: %s", app, exc)
                failed = True
                continue
            job_ids.append(record.job_id)
    finally:
        catalogs.close()
    if failed and not job_ids:
        return []  # nothing went out: the next update-status tries this slot again
    ledger.last_slot = slot
    logger.info("scheduled drills for slot %s: %s", slot.isoformat(), job_ids)
    return job_ids
