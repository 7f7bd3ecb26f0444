"""What the manager's hooks do for the exporter: rewrite its state file, keep it running.

Called from the hooks that change what the exporter needs (config-changed, relation
changes, a job finished, update-status; install and upgrade install the service). Only
the leader exports (it keeps the history, and one exporter per application means one
series per cluster and one reader of storage); another unit's file names no cluster and
no location. Nothing here logs the file's content: it holds the storage credentials.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

from charmlibs.systemd import SystemdError

from database_backup.timefmt import format_time, utc_now

from . import service, state_file
from .state_file import ClusterEntry, ExporterState, StateFileError

if TYPE_CHECKING:
    from ..manager import Manager

logger = logging.getLogger(__name__)


def build(manager: Manager, now: datetime.datetime | None = None) -> ExporterState | None:
    """The state for this unit, or None when the config is invalid (the file is kept)."""
    now = now or utc_now()
    setup = manager.setup
    config = setup.config
    if config is None:
        return None
    if not manager.is_leader:
        return ExporterState(written_at=format_time(now))
    shipping = None
    if config.binlog_shipping and setup.backup_location is not None:
        shipping = setup.backup_location.name
    key = state_file.schedule_key(config.schedule)
    interval = _previous_interval(key)
    if interval is None and key:
        interval = state_file.max_interval(config.schedule, now.astimezone())
    records = manager.state.history()
    clusters = tuple(
        ClusterEntry(
            cluster=f"{manager.model.uuid}/{app}",
            app=app,
            binlog_max_lag=config.binlog_max_lag if shipping else None,
            shipping_location=shipping,
            schedule_max_interval=interval,
            jobs=state_file.job_outcomes(records, app, now),
        )
        for app in manager.apps()
    )
    return ExporterState(
        locations=dict(setup.locations),
        clusters=clusters,
        schedule=key,
        schedule_interval=interval,
        written_at=format_time(now),
    )


def _previous_interval(key: str) -> float | None:
    """The longest interval the file already holds for this schedule (croniter is slow)."""
    if not key:
        return None
    try:
        previous = state_file.read()
    except StateFileError:
        return None
    return previous.schedule_interval if previous.schedule == key else None


def update(manager: Manager) -> None:
    """Rewrite the state file and make sure the service runs (where systemd does)."""
    if not service.available():
        return
    state = build(manager)
    try:
        if state is not None:
            state_file.write(state)
        outcome = service.ensure(manager.charm.charm_dir, state_file.path())
    except (OSError, SystemdError) as exc:
        logger.error("the metrics exporter could not be set up: %s", exc)
        return
    if outcome != "running":
        logger.info("metrics exporter %s (%s)", outcome, service.SERVICE)


def remove() -> None:
    """The unit is going away: stop and remove the service and its state file."""
    if not service.available():
        return
    try:
        service.remove()
        state_file.path().unlink(missing_ok=True)
    except (OSError, SystemdError) as exc:
        logger.error("the metrics exporter could not be removed: %s", exc)
