"""Encode and decode the `jobs` databag values, validating every item with the schemas.

Decoding never raises on bad remote data: it sorts what it reads into valid items and
problems that name the job (when the job id can be read) and say what was wrong.

Bounds: a requirer's `jobs` value over MAX_JOBS_CHARS is refused whole before it is parsed,
jobs past the MAX_JOBS-th are refused one by one without being validated, and a job whose
selection lists are over MAX_NAMES is refused before the schema walks the lists. The
lists' names are checked in one pass by the schema's rules (`namelists`; jsonschema walks
only the lists that fail, for its messages). A hook reads the same value in several
places: decoding is cached on the raw text, so each hook validates each job once.

CA chains by reference: a job's `storage-config` may name its CA bundle by
`tls-ca-chain-id`, an id of the requirer's top-level `tls-ca-chains` object (id = the first
16 hex digits of the PEM's SHA-256). Decoding resolves it into `StorageConfig.tls_ca_chain`;
`encode_bag` writes every chain once, whatever the number of jobs that use it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, cast

from . import namelists, schemas
from .errors import DataValidationError
from .model import JobRequest, JobStatus, StorageConfig

JOBS_KEY = "jobs"
CA_CHAINS_KEY = "tls-ca-chains"
MAX_JOB_ID = 128  # the schemas' limit
_REQUIRER = schemas.load_schema(schemas.REQUIRER)
MAX_JOBS: int = _REQUIRER["$defs"]["jobs"]["maxItems"]
MAX_JOBS_CHARS: int = _REQUIRER["properties"][JOBS_KEY]["maxLength"]
MAX_CA_CHAINS_CHARS: int = _REQUIRER["properties"][CA_CHAINS_KEY]["maxLength"]
MAX_NAMES: int = _REQUIRER["$defs"]["job"]["properties"]["tables"]["maxItems"]


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


def _load_array(raw: str | None, limit: int | None = None) -> tuple[list[object], str | None]:
    if raw is None or raw == "":
        return [], None
    if limit is not None and len(raw) > limit:
        return [], (
            f"'jobs' has {len(raw)} characters and a provider takes at most {limit}: "
            "remove finished jobs and keep each job to the schema's bounds"
        )
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


def ca_chain_id(pem: str) -> str:
    """The id a CA chain goes by in `tls-ca-chains`: 16 hex digits of its SHA-256."""
    return hashlib.sha256(pem.encode()).hexdigest()[:16]


def decode_ca_chains(raw: str | None) -> tuple[dict[str, str], str | None]:
    """The requirer's `tls-ca-chains` (id -> PEM), or why it cannot be used."""
    if raw is None or raw == "":
        return {}, None
    if len(raw) > MAX_CA_CHAINS_CHARS:
        return {}, f"'{CA_CHAINS_KEY}' has {len(raw)} characters, over {MAX_CA_CHAINS_CHARS}"
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        return {}, f"'{CA_CHAINS_KEY}' is not valid JSON ({exc.__class__.__name__})"
    errors = schemas.errors_of(value, schemas.REQUIRER, CA_CHAINS_KEY)
    if errors:
        return {}, f"'{CA_CHAINS_KEY}' is invalid: " + "; ".join(errors[:3])
    chains = cast("dict[str, str]", value)
    wrong = sorted(key for key, pem in chains.items() if ca_chain_id(pem) != key)
    if wrong:
        return {}, (
            f"'{CA_CHAINS_KEY}' names {', '.join(wrong)} by an id that is not the first 16 hex "
            "digits of the chain's SHA-256"
        )
    return chains, None


def _oversized_list(item: object) -> str | None:
    """Refuse a selection list over the bound before the schema walks every name of it."""
    if not isinstance(item, Mapping):
        return None
    for key in namelists.LISTS:
        names = cast("Mapping[str, object]", item).get(key)
        if isinstance(names, list) and len(cast("list[object]", names)) > MAX_NAMES:
            count = len(cast("list[object]", names))
            return (
                f"'{key}' lists {count} names: a job takes at most {MAX_NAMES}; split the "
                "selection over several jobs, or back up whole databases"
            )
    return None


def resolve_ca_chain(storage: StorageConfig, ca_chains: str | None) -> StorageConfig | str:
    """`storage` with the CA chain it names resolved from the requirer's `tls-ca-chains`.

    Returns why the reference cannot be resolved instead, as a sentence.
    """
    if storage.tls_ca_chain_id is None:
        return storage
    return _resolved(storage, *decode_ca_chains(ca_chains))


def _resolved(
    storage: StorageConfig, chains: Mapping[str, str], chains_error: str | None
) -> StorageConfig | str:
    chain_id = storage.tls_ca_chain_id
    if chain_id is None:
        return storage
    if storage.tls_ca_chain is not None:
        return (
            "storage-config has both tls-ca-chain and tls-ca-chain-id: give the chain inline "
            "or by reference, not both"
        )
    if chains_error is not None:
        return f"storage-config.tls-ca-chain-id {chain_id} cannot be resolved: {chains_error}"
    if chain_id not in chains:
        known = ", ".join(sorted(chains)) or "none"
        return (
            f"storage-config.tls-ca-chain-id {chain_id} is not in the requirer's "
            f"'{CA_CHAINS_KEY}' (it holds: {known}): publish the chain under that id, or "
            "give it inline as tls-ca-chain"
        )
    return dataclasses.replace(storage, tls_ca_chain=chains[chain_id])


def _with_ca_chain(
    job: JobRequest, chains: Mapping[str, str], chains_error: str | None
) -> JobRequest | str:
    """`job` with its referenced CA chain resolved, or why the reference is unusable."""
    storage = _resolved(job.storage, chains, chains_error)
    if isinstance(storage, str):
        return storage
    return job if storage is job.storage else dataclasses.replace(job, storage=storage)


def decode_bag(data: Mapping[str, str]) -> DecodedRequests:
    """Decode a requirer's application databag: its `jobs`, CA chains resolved."""
    return decode_requests(data.get(JOBS_KEY), data.get(CA_CHAINS_KEY))


def decode_requests(raw: str | None, ca_chains: str | None = None) -> DecodedRequests:
    """Decode a requirer's `jobs` value. Duplicate job ids are all reported as problems.

    `ca_chains` is the requirer's `tls-ca-chains` value, for jobs that name their CA chain
    by id. Cached on both texts: the result is immutable.
    """
    return _decode_requests(raw, ca_chains)


@functools.lru_cache(maxsize=8)
def _decode_requests(raw: str | None, ca_chains: str | None) -> DecodedRequests:
    items, error = _load_array(raw, MAX_JOBS_CHARS)
    if error:
        return DecodedRequests(error=error)
    chains, chains_error = decode_ca_chains(ca_chains)
    ids = Counter(_job_id_of(item) for item in items)
    jobs: list[JobRequest] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        job_id = _job_id_of(item)
        if index >= MAX_JOBS:
            message = (
                f"the requirer's databag holds {len(items)} jobs and a provider takes at most "
                f"{MAX_JOBS}: remove finished jobs from 'jobs' and request this one again"
            )
            problems.append(Problem(index, job_id, message))
            continue
        if job_id is not None and ids[job_id] > 1:
            message = f"job id {job_id!r} appears {ids[job_id]} times; job ids must be unique"
            problems.append(Problem(index, job_id, message))
            continue
        oversized = _oversized_list(item)
        if oversized:
            errors = [oversized]
        else:
            checked = namelists.without_valid_lists(without_inline_keys(item))
            errors = schemas.errors_of(checked, schemas.REQUIRER, "job")
        if errors:
            problems.append(
                Problem(index, job_id, "invalid job request: " + "; ".join(errors[:3]))
            )
            continue
        job = _with_ca_chain(
            JobRequest.from_dict(cast("Mapping[str, Any]", item)), chains, chains_error
        )
        if isinstance(job, str):
            problems.append(Problem(index, job_id, "invalid job request: " + job))
            continue
        jobs.append(job)
    return DecodedRequests(tuple(jobs), tuple(problems))


def _canonical(item: object) -> str:
    return json.dumps(item, separators=(",", ":"), sort_keys=True)


@functools.lru_cache(maxsize=512)
def _status_errors(text: str) -> tuple[str, ...]:
    """The schema's errors for one status (its canonical JSON), each status checked once.

    A provider publishes its statuses one at a time, each time re-reading and re-writing
    them all: without this, n statuses cost n^2 schema checks in one hook.
    """
    return tuple(schemas.errors_of(json.loads(text), schemas.PROVIDER, "job-status"))


# `$defs/jobs` of the provider schema adds nothing to its items' schema but the array type.
_STATUS_ARRAY_PLAIN = set(schemas.load_schema(schemas.PROVIDER)["$defs"]["jobs"]) <= {
    "description",
    "type",
    "items",
}


def decode_statuses(raw: str | None) -> DecodedStatuses:
    """Decode a provider unit's `jobs` value (cached on the text: the result is immutable)."""
    return _decode_statuses(raw)


@functools.lru_cache(maxsize=8)
def _decode_statuses(raw: str | None) -> DecodedStatuses:
    items, error = _load_array(raw)
    if error:
        return DecodedStatuses(error=error)
    statuses: list[JobStatus] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        errors = _status_errors(_canonical(without_inline_keys(item)))
        if errors:
            problems.append(Problem(index, _job_id_of(item), "; ".join(errors[:3])))
            continue
        statuses.append(JobStatus.from_dict(cast("Mapping[str, Any]", item)))
    return DecodedStatuses(tuple(statuses), tuple(problems))


def _check_unique(ids: Iterable[str]) -> None:
    duplicates = [job_id for job_id, n in Counter(ids).items() if n > 1]
    if duplicates:
        raise DataValidationError(f"duplicate job ids: {', '.join(sorted(duplicates))}")


def by_reference(jobs: Iterable[JobRequest]) -> tuple[list[JobRequest], dict[str, str]]:
    """The jobs with their CA chains named by id, and the chains (id -> PEM) they name."""
    chains: dict[str, str] = {}
    out: list[JobRequest] = []
    for job in jobs:
        pem = job.storage.tls_ca_chain
        if pem:
            chain_id = ca_chain_id(pem)
            chains[chain_id] = pem
            job = dataclasses.replace(
                job, storage=dataclasses.replace(job.storage, tls_ca_chain_id=chain_id)
            )
        out.append(job)
    return out, chains


def encode_bag(jobs: Iterable[JobRequest]) -> dict[str, str]:
    """The requirer's databag values for `jobs`, each CA chain once.

    `jobs`, and `tls-ca-chains` when any job has a CA chain. Raises DataValidationError if
    invalid.
    """
    referenced, chains = by_reference(jobs)
    bag = {JOBS_KEY: encode_requests(referenced)}
    if chains:
        schemas.validate(chains, schemas.REQUIRER, CA_CHAINS_KEY)
        bag[CA_CHAINS_KEY] = json.dumps(chains, separators=(",", ":"), sort_keys=True)
        schemas.validate(bag, schemas.REQUIRER)
    return bag


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
    if _STATUS_ARRAY_PLAIN:
        for item in items:
            errors = _status_errors(_canonical(item))
            if errors:
                raise DataValidationError(
                    f"status of job {item['job-id']}: " + "; ".join(errors[:3])
                )
    else:
        schemas.validate(items, schemas.PROVIDER, "jobs")
    raw = json.dumps(items, separators=(",", ":"), sort_keys=True)
    schemas.validate({JOBS_KEY: raw}, schemas.PROVIDER)
    return raw
