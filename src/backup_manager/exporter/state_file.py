"""The local file the manager's hooks write for the exporter (and the exporter reads).

It holds what only the hooks know: the storage locations with their credentials (so the
file is 0600, root only, and never logged), and per related cluster the job outcomes of
the last day from the history, the schedule's longest interval and the binlog shipping
settings. Written atomically (`files.write_json_atomic`) from the hooks that change it;
the exporter re-reads it when it changes. No `ops` here.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from database_backup import files
from database_backup.interface import RESTORING_MESSAGE
from database_backup.timefmt import format_time, parse_time

from .. import copying
from ..history import Record
from ..locations import Location
from ..schedule import Schedule, next_fire
from .metrics import DAY, JOB_TYPES

FORMAT_VERSION = 1
FILE_NAME = "exporter.json"
FAILED = ("error", "failed")
#: how a drill cancelled by a restore ends (C1); a job refused during one says RESTORING
DRILL_CANCELLED = "cancelled:"
_RESTORING = re.compile(
    "^" + re.escape(RESTORING_MESSAGE).replace(re.escape("{job}"), "[^)]+", 1) + "$"
)
#: scheduled fire times examined for the longest interval (a year of daily runs, or more)
MAX_FIRES = 1000
#: ... and never further ahead than this
HORIZON = datetime.timedelta(days=5 * 366)


class StateFileError(Exception):
    """The file cannot be read or is not what the hooks write; the message says which."""


def path() -> Path:
    """Where the hooks write the file (beside the copy jobs' state, root only)."""
    return Path(copying.STATE_DIR) / FILE_NAME


@dataclasses.dataclass(frozen=True)
class JobOutcomes:
    """Finished jobs of one type: recent failures and the newest outcome."""

    failed_at: tuple[str, ...] = ()
    last_finished_at: str | None = None
    last_failed: bool | None = None


@dataclasses.dataclass(frozen=True)
class ClusterEntry:
    """One related cluster: its settings and its jobs' outcomes."""

    cluster: str
    app: str
    binlog_max_lag: int | None = None
    shipping_location: str | None = None
    schedule_max_interval: float | None = None
    jobs: Mapping[str, JobOutcomes] = dataclasses.field(default_factory=dict[str, JobOutcomes])


@dataclasses.dataclass(frozen=True)
class ExporterState:
    """Everything in the file."""

    locations: Mapping[str, Location] = dataclasses.field(default_factory=dict[str, Location])
    clusters: tuple[ClusterEntry, ...] = ()
    schedule: str = ""
    schedule_interval: float | None = None
    written_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """The file's JSON document."""
        return {
            "format-version": FORMAT_VERSION,
            "written-at": self.written_at,
            "schedule": self.schedule,
            "schedule-max-interval": self.schedule_interval,
            "locations": {name: loc.spec() for name, loc in self.locations.items()},
            "clusters": [_cluster_json(entry) for entry in self.clusters],
        }

    @classmethod
    def from_json(cls, document: object) -> ExporterState:
        """Inverse of `to_json`; StateFileError if the document is not one."""
        if not isinstance(document, dict):
            raise StateFileError("the exporter's state is not a JSON object")
        data = cast("dict[str, Any]", document)
        if data.get("format-version") != FORMAT_VERSION:
            raise StateFileError(
                f"unknown format-version {data.get('format-version')!r} (expected "
                f"{FORMAT_VERSION}): the charm that wrote it is newer than this exporter"
            )
        try:
            locations = {
                str(name): Location.from_spec(spec)
                for name, spec in cast("dict[str, Any]", data.get("locations") or {}).items()
            }
            clusters = tuple(
                _cluster_from_json(item) for item in cast("list[Any]", data.get("clusters") or [])
            )
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise StateFileError(
                f"the exporter's state is malformed ({type(exc).__name__})"
            ) from None
        interval = data.get("schedule-max-interval")
        return cls(
            locations=locations,
            clusters=clusters,
            schedule=str(data.get("schedule") or ""),
            schedule_interval=float(interval) if isinstance(interval, (int, float)) else None,
            written_at=str(data.get("written-at") or ""),
        )


def _cluster_json(entry: ClusterEntry) -> dict[str, Any]:
    return {
        "cluster": entry.cluster,
        "app": entry.app,
        "binlog-max-lag": entry.binlog_max_lag,
        "shipping-location": entry.shipping_location,
        "schedule-max-interval": entry.schedule_max_interval,
        "jobs": {
            job_type: {
                "failed-at": list(outcome.failed_at),
                "last-finished-at": outcome.last_finished_at,
                "last-failed": outcome.last_failed,
            }
            for job_type, outcome in entry.jobs.items()
        },
    }


def _cluster_from_json(item: Mapping[str, Any]) -> ClusterEntry:
    jobs: dict[str, JobOutcomes] = {}
    for job_type, outcome in cast("dict[str, dict[str, Any]]", item.get("jobs") or {}).items():
        if job_type not in JOB_TYPES:
            continue
        last_failed = outcome.get("last-failed")
        failed_at = cast("list[object]", outcome.get("failed-at") or [])
        jobs[job_type] = JobOutcomes(
            failed_at=tuple(str(t) for t in failed_at),
            last_finished_at=outcome.get("last-finished-at"),
            last_failed=bool(last_failed) if last_failed is not None else None,
        )
    lag = item.get("binlog-max-lag")
    interval = item.get("schedule-max-interval")
    shipping = item.get("shipping-location")
    return ClusterEntry(
        cluster=str(item["cluster"]),
        app=str(item.get("app") or ""),
        binlog_max_lag=int(lag) if lag is not None else None,
        shipping_location=str(shipping) if shipping is not None else None,
        schedule_max_interval=float(interval) if interval is not None else None,
        jobs=jobs,
    )


def read(where: Path | None = None) -> ExporterState:
    """The file's content; StateFileError (saying what to do) when it is unusable."""
    where = where or path()
    try:
        raw = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise StateFileError(
            f"cannot read {where} ({exc.strerror or type(exc).__name__}): the charm writes it "
            "in its hooks (update-status at the latest); if it stays missing, look for the "
            "reason in `juju debug-log`"
        ) from None
    try:
        document = json.loads(raw)
    except ValueError:
        raise StateFileError(
            f"{where} is not JSON: the charm rewrites it on its next hook"
        ) from None
    return ExporterState.from_json(document)


def write(state: ExporterState, where: Path | None = None) -> None:
    """Replace the file (0600, atomically); its directory is created root-only."""
    where = where or path()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.write_json_atomic(where, state.to_json(), mode=0o600)


# -- building it from what the hooks know ------------------------------------------------


def job_type(record: Record) -> str | None:
    """`backup`, `restore`, `drill` (a backup job that verifies another) or `copy`, else None.

    Retention runs are not counted: one run covers every cluster (their failures reach
    Loki as `job-type=retention` lines).
    """
    if record.drill_of is not None or record.type == "drill":
        return "drill"
    return record.type if record.type in ("backup", "restore", "copy") else None


def _set_aside(record: Record, kind: str) -> bool:
    """A job a running restore refused, or a drill it cancelled (C1).

    Neither says anything about the backups (a refused scheduled backup is retried after
    the restore, and the retry speaks for it).
    """
    message = record.message or ""
    if kind == "drill" and message.startswith(DRILL_CANCELLED):
        return True
    return bool(_RESTORING.match(message))


def job_outcomes(
    records: Iterable[Record], app: str, now: datetime.datetime
) -> dict[str, JobOutcomes]:
    """Per job type, the failures of the last day and the newest outcome of `app`'s jobs."""
    finished: dict[str, list[tuple[datetime.datetime, bool]]] = {t: [] for t in JOB_TYPES}
    for record in records:
        kind = job_type(record)
        if record.app != app or kind is None or not record.finished:
            continue
        if _set_aside(record, kind):
            continue
        moment = _time(record.finished_at) or _time(record.requested_at)
        if moment is None:
            continue
        finished[kind].append((moment, record.status in FAILED))
    outcomes: dict[str, JobOutcomes] = {}
    for kind, ends in finished.items():
        ends.sort(key=lambda end: end[0])
        failures = tuple(
            format_time(moment)
            for moment, failed in ends
            if failed and (now - moment).total_seconds() <= DAY
        )
        last = ends[-1] if ends else None
        outcomes[kind] = JobOutcomes(
            failed_at=failures,
            last_finished_at=format_time(last[0]) if last else None,
            last_failed=last[1] if last else None,
        )
    return outcomes


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def schedule_key(schedule: Schedule) -> str:
    """What the longest interval depends on: the expressions (empty when off)."""
    return "|".join((schedule.main, schedule.full)) if schedule.enabled else ""


def max_interval(schedule: Schedule, start: datetime.datetime) -> float | None:
    """The longest gap (seconds) between two scheduled backups of any kind; None when off.

    Examined over the next MAX_FIRES fire times (at most HORIZON ahead), in local time
    as cron fires them.
    """
    expressions = [e for e in (schedule.main, schedule.full) if e]
    if not expressions:
        return None
    end = start + HORIZON
    fires: set[datetime.datetime] = set()
    for expression in expressions:
        moment = start
        for count in range(MAX_FIRES):
            moment = next_fire(expression, moment)
            if moment > end:
                break
            fires.add(moment)
            if count == MAX_FIRES - 1:
                end = moment  # beyond this one expression's fires, the gaps would be false
    ordered = sorted(f for f in fires if f <= end)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    return max(gaps) if gaps else HORIZON.total_seconds()
