"""Exactly-one-unit execution: the provider leader picks the unit that runs each job.

Pure functions over plain values; the provider object stores the result in the peer
relation's application databag, which every unit of the provider application can read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .model import JobRequest, JobType


def choose_unit(
    job: JobRequest,
    units: Collection[str],
    *,
    leader: str,
    replicas: Collection[str] = (),
    primary: str | None = None,
    load: Mapping[str, int] | None = None,
) -> str:
    """Pick the unit that runs `job`.

    Backups go to a replica when the charm names some (`replicas`): the least loaded, then
    by name so the choice is stable. Without replicas every job goes to the primary
    (default: the leader): units the charm does not call replicas may be independent
    servers, and a backup of one of them would silently be a backup of the wrong data.
    Restores always go to the primary, since a restore replaces the data the rest of the
    cluster follows.
    """
    if not units:
        raise ValueError("no units to choose from")
    ordered = sorted(units, key=_unit_sort_key)
    if job.job_type is JobType.BACKUP:
        candidates = [unit for unit in ordered if unit in replicas]
        if candidates:
            counts = load or {}
            return min(candidates, key=lambda unit: counts.get(unit, 0))
    if primary is not None and primary in units:
        return primary
    return leader if leader in units else ordered[0]


def _unit_sort_key(unit: str) -> tuple[str, int]:
    app, _, number = unit.rpartition("/")
    return (app, int(number)) if number.isdigit() else (unit, -1)
