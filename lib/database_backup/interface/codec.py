"""Encode and decode the `jobs` databag values, validating every item with the schemas.

Decoding never raises on bad remote data: it sorts what it reads into valid items and
problems that name the job (when the job id can be read) and say what was wrong.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

from . import schemas
from .errors import DataValidationError
from .model import JobRequest, JobStatus

JOBS_KEY = "jobs"
MAX_JOB_ID = 128  # the schemas' limit


@dataclasses.dataclass(frozen=True)
class Problem:
    """A bad item in a databag: its position, its job id if readable, and what is wrong."""

    index: int | None
    job_id: str | None
    message: str


@dataclasses.dataclass(frozen=True)
class DecodedRequests:
    """The outcome of reading a requirer's `jobs`."""

    jobs: tuple[JobRequest, ...] = ()
    problems: tuple[Problem, ...] = ()
    error: str | None = None  # the whole value is unusable (not JSON, not an array)


@dataclasses.dataclass(frozen=True)
class DecodedStatuses:
    """The outcome of reading a provider unit's `jobs`."""

    statuses: tuple[JobStatus, ...] = ()
    problems: tuple[Problem, ...] = ()
    error: str | None = None


def _load_array(raw: str | None) -> tuple[list[object], str | None]:
    if raw is None or raw == "":
        return [], None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        return [], f"'jobs' is not valid JSON ({exc.__class__.__name__}: {exc})"[:500]
    if not isinstance(value, list):
        return [], f"'jobs' must be a JSON array, got {type(value).__name__}"
    return cast("list[object]", value), None


def _job_id_of(item: object) -> str | None:
    if isinstance(item, Mapping):
        job_id = cast("Mapping[str, object]", item).get("job-id")
        # An id too long for a status cannot be reported per job: it goes to request-error.
        if isinstance(job_id, str) and 0 < len(job_id) <= MAX_JOB_ID:
            return job_id
    return None


INLINE_KEYS = ("access-key", "secret-key")


def without_inline_keys(item: Any) -> Any:
    """A copy of a request (or log-shipping request) safe to quote in an error message.

    Validation messages quote offending values, and a draft-style requirer puts its S3
    keys inline in `storage-config`. The copy validates exactly as the original does: an
    inline key that is a string becomes another string, any other value becomes `None`
    (still not a string); a `storage-config` that is a list or a string is emptied (still
    not an object).
    """
    if not isinstance(item, Mapping):
        return item
    copy = dict(cast("Mapping[str, Any]", item))
    storage = copy.get("storage-config")
    if isinstance(storage, Mapping):
        storage = dict(cast("Mapping[str, Any]", storage))
        for key in INLINE_KEYS:
            if key in storage:
                storage[key] = "<redacted>" if isinstance(storage[key], str) else None
        copy["storage-config"] = storage
    elif isinstance(storage, str):
        copy["storage-config"] = ""
    elif isinstance(storage, list):
        copy["storage-config"] = []
    return copy


def decode_requests(raw: str | None) -> DecodedRequests:
    """Decode a requirer's `jobs` value. Duplicate job ids are all reported as problems."""
    items, error = _load_array(raw)
    if error:
        return DecodedRequests(error=error)
    ids = Counter(_job_id_of(item) for item in items)
    jobs: list[JobRequest] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        job_id = _job_id_of(item)
        if job_id is not None and ids[job_id] > 1:
            message = f"job id {job_id!r} appears {ids[job_id]} times; job ids must be unique"
            problems.append(Problem(index, job_id, message))
            continue
        errors = schemas.errors_of(without_inline_keys(item), schemas.REQUIRER, "job")
        if errors:
            problems.append(
                Problem(index, job_id, "invalid job request: " + "; ".join(errors[:3]))
            )
            continue
        jobs.append(JobRequest.from_dict(cast("Mapping[str, Any]", item)))
    return DecodedRequests(tuple(jobs), tuple(problems))


def decode_statuses(raw: str | None) -> DecodedStatuses:
    """Decode a provider unit's `jobs` value."""
    items, error = _load_array(raw)
    if error:
        return DecodedStatuses(error=error)
    statuses: list[JobStatus] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        errors = schemas.errors_of(without_inline_keys(item), schemas.PROVIDER, "job-status")
        if errors:
            problems.append(Problem(index, _job_id_of(item), "; ".join(errors[:3])))
            continue
        statuses.append(JobStatus.from_dict(cast("Mapping[str, Any]", item)))
    return DecodedStatuses(tuple(statuses), tuple(problems))


def _check_unique(ids: Iterable[str]) -> None:
    duplicates = [job_id for job_id, n in Counter(ids).items() if n > 1]
    if duplicates:
        raise DataValidationError(f"duplicate job ids: {', '.join(sorted(duplicates))}")


def encode_requests(jobs: Iterable[JobRequest]) -> str:
    """Encode requests for the requirer's app databag; raises DataValidationError if invalid."""
    items = [job.to_dict() for job in jobs]
    _check_unique(item["job-id"] for item in items)
    schemas.validate(items, schemas.REQUIRER, "jobs")
    raw = json.dumps(items, separators=(",", ":"), sort_keys=True)
    schemas.validate({JOBS_KEY: raw}, schemas.REQUIRER)
    return raw


def encode_statuses(statuses: Iterable[JobStatus]) -> str:
    """Encode statuses for a provider unit databag; raises DataValidationError if invalid."""
    items = [status.to_dict() for status in statuses]
    _check_unique(item["job-id"] for item in items)
    schemas.validate(items, schemas.PROVIDER, "jobs")
    raw = json.dumps(items, separators=(",", ":"), sort_keys=True)
    schemas.validate({JOBS_KEY: raw}, schemas.PROVIDER)
    return raw
