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

    Backups prefer a replica (the charm says which units are replicas), then any
    non-leader unit, then the leader; among equals the least loaded, then by name so the
    choice is stable. Restores go to the primary (default: the leader), since a restore
    replaces the data the rest of the cluster follows.
    """
    if not units:
        raise ValueError("no units to choose from")
    counts = load or {}
    ordered = sorted(units, key=_unit_sort_key)
    if job.job_type is JobType.RESTORE:
        if primary is not None and primary in units:
            return primary
        return leader if leader in units else ordered[0]

    def rank(unit: str) -> tuple[int, int]:
        tier = 0 if unit in replicas else (1 if unit != leader else 2)
        return (tier, counts.get(unit, 0))

    return min(ordered, key=rank)


def _unit_sort_key(unit: str) -> tuple[str, int]:
    app, _, number = unit.rpartition("/")
    return (app, int(number)) if number.isdigit() else (unit, -1)
