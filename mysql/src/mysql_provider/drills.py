"""Restore drills on this unit: from the engine's `verify` outcome to the wire status.

A drill is a `backup` job with `verify-backup-id` (interface README, "Restore drills"). The
engine's state `result` holds a `verification` object; the status is `success` exactly when
it says `pass`, and otherwise `error` with the reason as the message. A drill that ended
without a verdict (refused, cancelled, crashed) is an `error` without `verification`: it
says nothing about the backup.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from database_backup.interface import JobRequest, JobState, Verification, schemas

logger = logging.getLogger(__name__)

CANCELLED = "cancelled: restore job {job} was requested"
NO_VERIFICATION = (
    "the engine ended the drill of backup {backup} without a verification (an engine older "
    "than the charm?); see the job's log on the unit"
)


def cancelled_message(restore_job_id: str) -> str:
    """The message of a drill stopped because a real restore was requested."""
    return CANCELLED.format(job=restore_job_id)


def verification_of(engine_state: Mapping[str, Any]) -> Verification | None:
    """The engine's `result.verification`, if present and valid (else None, logged)."""
    result = engine_state.get("result")
    if not isinstance(result, Mapping):
        return None
    document = cast("Mapping[str, Any]", result).get("verification")
    if document is None:
        return None
    problems = schemas.errors_of(document, schemas.PROVIDER, "verification")
    if problems:
        logger.error("the engine's verification is not valid: %s", "; ".join(problems[:3]))
        return None
    return Verification.from_dict(cast("Mapping[str, Any]", document))


def result_fields(
    job: JobRequest, state: JobState, engine_state: Mapping[str, Any]
) -> tuple[JobState, dict[str, Any]]:
    """The drill's status and fields, from the job's state and the engine's state document.

    Never `success` without a passing verification; a failing one gives its reason.
    """
    fields: dict[str, Any] = {"point_in_time": job.point_in_time}
    if state is JobState.RUNNING:
        return state, fields
    verification = verification_of(engine_state)
    if state is JobState.SUCCESS:
        if verification is None:
            backup = job.verify_backup_id
            return JobState.ERROR, {**fields, "message": NO_VERIFICATION.format(backup=backup)}
        if not verification.passed:
            message = verification.reason or "the drill failed"
            return JobState.ERROR, {**fields, "verification": verification, "message": message}
        message = f"drill of backup {job.verify_backup_id} passed"
        return state, {**fields, "verification": verification, "message": message, "phase": "done"}
    if verification is not None and not verification.passed:
        fields["verification"] = verification
    return state, fields
