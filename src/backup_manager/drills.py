"""Restore drills from the manager's side: what a drill's status means, and what it says.

A drill is a `backup` job with `verify-backup-id` on the wire (a provider that does not
know drills takes a harmless backup instead of overwriting anything). In the job history it
is a record of type `drill` whose `drill-of` names the verified backup. The provider's
verdict (`verification`) decides the outcome; a `success` without one means the provider
took a backup instead of a drill, and is recorded as a failed drill saying so.

The newest conclusive drill of each application is also kept apart from the history, in
the peer app databag (`drill-results`): `clear-history` and the history's bound never
forget a failed drill, and only a later drill of that application that passes clears what
the unit status says about it. A drill cancelled by a restore, or refused while one ran,
proves nothing either way and changes nothing there. No `ops` beyond the databag access.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

import ops

from database_backup.interface import JobRequest, JobStatus

from . import history
from .errors import ManagerError
from .history import Record
from .state import PEER

TYPE = "drill"
RESULTS_KEY = "drill-results"
SLOT_KEY = "drill-slot"
SCHEDULE_KEY = "drill-schedule"
MAX_REASON = 500
#: what a `success` without `verification` means (C1 of the drill contract)
NOT_RUN = (
    "the database application does not run restore drills: it answered the drill with a "
    "plain backup{taken} instead of a verification; upgrade its charm to one whose "
    "database_backup library runs drills"
)
CANCELLED = "cancelled:"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The newest conclusive drill of one application, as the status speaks of it."""

    app: str
    job_id: str
    backup_id: str
    passed: bool
    at: str
    reason: str = ""
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Databag form."""
        return {
            "app": self.app,
            "job-id": self.job_id,
            "backup-id": self.backup_id,
            "result": "pass" if self.passed else "fail",
            "at": self.at,
            "reason": self.reason,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Outcome | None:
        """The outcome of one databag item; None when it is not one."""
        texts = {key: data.get(key) for key in ("app", "job-id", "backup-id", "result", "at")}
        if not all(isinstance(value, str) and value for value in texts.values()):
            return None
        reason, location = data.get("reason"), data.get("location")
        return cls(
            app=str(texts["app"]),
            job_id=str(texts["job-id"]),
            backup_id=str(texts["backup-id"]),
            passed=texts["result"] == "pass",
            at=str(texts["at"]),
            reason=reason if isinstance(reason, str) else "",
            location=location if isinstance(location, str) else "",
        )


# -- the history record of a drill -------------------------------------------------------


def is_drill(record: Record) -> bool:
    """True for the record of a drill."""
    return record.drill_of is not None


def mark(record: Record, backup_id: str) -> Record:
    """Make a freshly requested record the record of a drill of `backup_id`."""
    record.type = TYPE
    record.kind = TYPE
    record.drill_of = backup_id
    record.backup_id = backup_id
    return record


def apply_status(record: Record, status: JobStatus) -> bool:
    """`history.apply_status`, then the drill's own rules; True if anything changed.

    For a drill: the provider's `verification` is kept (list-jobs shows it); a `success`
    without one is a failed drill (the provider took a backup instead); the record keeps
    naming the verified backup, whatever backup id the status carries.
    """
    before = dataclasses.replace(record, extra=dict(record.extra))
    history.apply_status(record, status)
    if is_drill(record):
        _settle(record, status)
    return record != before


def _settle(record: Record, status: JobStatus) -> None:
    taken = status.backup_id if status.backup_id != record.drill_of else None
    record.type = TYPE
    record.kind = TYPE
    record.backup_id = record.drill_of
    verification = status.verification
    if verification is not None:
        record.set("verification", verification.to_dict())
    if status.status.value != "success":
        return
    if verification is None:
        record.status = "error"
        record.message = NOT_RUN.format(taken=f" ({taken})" if taken else "")
    elif not verification.passed:
        record.status = "error"
        record.message = _clip(verification.reason or "drill failed: no reason given")


def outcome(record: Record) -> Outcome | None:
    """The outcome of a finished drill record; None if unfinished or inconclusive."""
    if not is_drill(record) or not record.finished:
        return None
    message = record.message or ""
    passed = record.status == "success"
    if not passed and (
        message.startswith(CANCELLED) or history.refusing_restore(record) is not None
    ):
        return None
    return Outcome(
        app=record.app or "",
        job_id=record.job_id,
        backup_id=record.drill_of or "",
        passed=passed,
        at=record.finished_at or record.requested_at or "",
        reason="" if passed else _clip(message or "the drill failed without a reason"),
        location=record.location or "",
    )


def newest(records: Iterable[Record]) -> dict[str, Outcome]:
    """Application -> its newest conclusive drill in `records` (later in the history wins)."""
    found: dict[str, Outcome] = {}
    for record in records:
        result = outcome(record)
        if result is None:
            continue
        current = found.get(result.app)
        if current is None or result.at >= current.at:
            found[result.app] = result
    return found


def in_flight(records: Iterable[Record], app: str) -> Record | None:
    """The drill of `app` still running, if any."""
    return next((r for r in records if is_drill(r) and r.app == app and not r.finished), None)


def restoring(records: Iterable[Record], app: str) -> Record | None:
    """The restore of `app` still running, if any."""
    return next(
        (r for r in records if r.type == "restore" and r.app == app and not r.finished), None
    )


def _clip(text: str, size: int = MAX_REASON) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


# -- what the status says ---------------------------------------------------------------


def failure_message(failures: list[Outcome]) -> str:
    """The unit status of failed drills (the oldest failure first), or ''."""
    if not failures:
        return ""
    first = failures[0]
    where = f" in {first.location}" if first.location else ""
    text = (
        f"restore drill of backup {first.backup_id} ({first.app}{where}) failed at "
        f"{first.at}: {_clip(first.reason, 160)}; fix the cause, take a new backup if this "
        f"one is bad, then verify-backup application={first.app} (list-jobs has the details)"
    )
    others = sorted({f.app for f in failures[1:]})
    if others:
        text += f"; drills of {', '.join(others)} failed too"
    return text


# -- the peer databag --------------------------------------------------------------------


def load(text: str | None) -> dict[str, Outcome]:
    """Decode the databag value; garbage gives nothing, never an exception."""
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError:
        return {}
    found: dict[str, Outcome] = {}
    for item in cast("list[object]", items) if isinstance(items, list) else []:
        result = (
            Outcome.from_dict(cast("dict[str, object]", item)) if isinstance(item, dict) else None
        )
        if result is not None:
            found[result.app] = result
    return found


def dump(results: Mapping[str, Outcome]) -> str:
    """Encode, in a stable order."""
    items = [results[app].to_dict() for app in sorted(results)]
    return json.dumps(items, sort_keys=True, separators=(",", ":"))


class Ledger:
    """The newest drill of each application and the drill schedule's slot (peer app data)."""

    def __init__(self, model: ops.Model) -> None:
        self._model = model

    def _data(self) -> ops.RelationDataContent | None:
        relation = self._model.get_relation(PEER)
        return None if relation is None else relation.data[self._model.app]

    def _get(self, key: str) -> str | None:
        data = self._data()
        return None if data is None else data.get(key) or None

    def _set(self, key: str, value: str | None) -> None:
        data = self._data()
        if data is None or not self._model.unit.is_leader():
            return
        if value is None:
            data.pop(key, None)
        elif data.get(key) != value:
            data[key] = value

    def results(self) -> dict[str, Outcome]:
        """Application -> its newest conclusive drill, as stored."""
        return load(self._get(RESULTS_KEY))

    def update(self, records: Iterable[Record]) -> None:
        """Take in the drills of `records` that are newer than those stored (leader)."""
        results = self.results()
        for app, result in newest(records).items():
            current = results.get(app)
            if current is None or (result != current and result.at >= current.at):
                results[app] = result
        self._set(RESULTS_KEY, dump(results) if results else None)

    def failures(self, apps: Iterable[str]) -> list[Outcome]:
        """The failed newest drills of `apps`, oldest first."""
        wanted = set(apps)
        failed = [r for r in self.results().values() if r.app in wanted and not r.passed]
        return sorted(failed, key=lambda r: (r.at, r.app))

    def seed(self, expression: str, now: datetime.datetime) -> None:
        """Seed the slot when the drill schedule starts or changes: no older slot is caught up."""
        key = expression or None
        if key == self.schedule and (key is None or self.last_slot is not None):
            return
        self.schedule = key
        self.last_slot = now if key else None

    @property
    def schedule(self) -> str | None:
        """The drill schedule the slot was seeded for."""
        return self._get(SCHEDULE_KEY)

    @schedule.setter
    def schedule(self, value: str | None) -> None:
        self._set(SCHEDULE_KEY, value)

    @property
    def last_slot(self) -> datetime.datetime | None:
        """The slot of the last scheduled drill (None until the drill schedule starts)."""
        value = self._get(SLOT_KEY)
        return datetime.datetime.fromisoformat(value) if value else None

    @last_slot.setter
    def last_slot(self, value: datetime.datetime | None) -> None:
        self._set(SLOT_KEY, value.isoformat() if value is not None else None)


def from_request(job: JobRequest, app: str, location: str, *, scheduled: bool = False) -> Record:
    """`history.from_request`, marked as a drill when the job is one."""
    record = history.from_request(job, app, location, scheduled=scheduled)
    return mark(record, job.verify_backup_id) if job.verify_backup_id else record


def check_free(records: Iterable[Record], app: str) -> None:
    """Raise a ManagerError when `app` is being restored or already runs a drill."""
    records = list(records)
    restore = restoring(records, app)
    if restore is not None:
        raise ManagerError(
            f"{app} is being restored (job {restore.job_id}): a drill never competes with a "
            "restore; run verify-backup again once it has finished (list-jobs)"
        )
    drill = in_flight(records, app)
    if drill is not None:
        raise ManagerError(
            f"a restore drill of {app} is already running (job {drill.job_id}, backup "
            f"{drill.drill_of}): wait for its result (list-jobs), then ask again"
        )
