"""Restore drills on the wire: a `backup` job with `verify-backup-id`, and its verification."""

from __future__ import annotations

import json

import jsonschema
import pytest

from database_backup.interface import (
    DataValidationError,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
    Verification,
    codec,
    decode_requests,
    decode_statuses,
    schemas,
)

from .draft_rules import DRAFT_PROVIDER_DATABAG, DRAFT_REQUEST, DRAFT_REQUIRER_DATABAG

STORAGE = StorageConfig(bucket="backups", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")
BACKUP_ID = "20261122T070000Z-ab12"


def drill(point_in_time: str | None = None, encryption_secret_id: str | None = None) -> JobRequest:
    return JobRequest(
        "d1",
        JobType.BACKUP,
        STORAGE,
        verify_backup_id=BACKUP_ID,
        point_in_time=point_in_time,
        encryption_secret_id=encryption_secret_id,
    )


def test_a_drill_request_is_valid_and_round_trips():
    job = drill(point_in_time="2026-11-22T07:30:00Z", encryption_secret_id="secret:k")
    raw = codec.encode_requests([job])
    item = json.loads(raw)[0]
    assert item["job-type"] == "backup"
    assert item["verify-backup-id"] == BACKUP_ID
    (read,) = decode_requests(raw).jobs
    assert read == job
    assert read.is_drill
    assert not JobRequest("b1", JobType.BACKUP, STORAGE).is_drill


def test_what_a_drill_writes_obeys_the_draft_rules():
    raw = codec.encode_requests([drill()])
    jsonschema.validate({"jobs": json.loads(raw)}, DRAFT_REQUIRER_DATABAG)


def test_a_draft_only_reading_of_a_drill_is_a_plain_backup():
    """The safety property: a provider that knows only the draft takes a harmless backup."""
    item = json.loads(codec.encode_requests([drill(point_in_time="latest")]))[0]
    draft_view = {key: value for key, value in item.items() if key in DRAFT_REQUEST["properties"]}
    assert draft_view["job-type"] == "backup"
    (read,) = decode_requests(json.dumps([draft_view])).jobs
    assert read.job_type is JobType.BACKUP
    assert not read.is_drill
    assert read.point_in_time is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"backup-kind": "full"}, "a drill"),
        ({"backup-kind": "incremental", "parent-backup-id": "p1"}, "a drill"),
        ({"parent-backup-id": "p1"}, "a drill"),
        ({"databases": ["shop"]}, "a drill"),
        ({"tables": ["shop.orders"]}, "a drill"),
        ({"job-type": "restore", "backup-id": "x"}, "a drill"),
        ({"verify-backup-id": "../etc"}, "'verify-backup-id'"),
        ({"verify-backup-id": ""}, "'verify-backup-id'"),
        ({"point-in-time": "yesterday"}, "'point-in-time'"),
    ],
)
def test_a_drill_with_backup_only_keys_is_refused(change: dict[str, object], expected: str):
    item = {**drill().to_dict(), **change}
    with pytest.raises(DataValidationError, match=expected):
        schemas.validate(item, schemas.REQUIRER, "job")


def test_a_refused_drill_says_what_to_do_instead():
    item = {**drill().to_dict(), "backup-kind": "full"}
    with pytest.raises(DataValidationError, match="verify-backup-id") as caught:
        schemas.validate(item, schemas.REQUIRER, "job")
    assert "backup-kind" in str(caught.value)


PASS = Verification(
    result="pass",
    checked_at="2026-11-22T08:00:00Z",
    duration_seconds=12.5,
    tables_checked=4,
    tables_compared=3,
    tables_skipped=1,
)
FAIL = Verification(
    result="fail",
    checked_at="2026-11-22T08:00:00Z",
    reason="drill failed: shop.orders: 2500 rows recorded, 2499 found",
    duration_seconds=3.0,
    tables_checked=4,
    tables_compared=3,
    tables_skipped=0,
    point_in_time="2026-11-22T07:30:00Z",
)


@pytest.mark.parametrize("verification", [PASS, FAIL])
def test_a_drill_status_carries_its_verification(verification: Verification):
    state = JobState.SUCCESS if verification.passed else JobState.ERROR
    status = JobStatus.for_request(
        drill(), state, phase="done", verification=verification, message=verification.reason
    )
    raw = codec.encode_statuses([status])
    item = json.loads(raw)[0]
    assert item["verify-backup-id"] == BACKUP_ID
    assert item["job-type"] == "backup"
    assert item["verification"]["result"] == verification.result
    jsonschema.validate({"jobs": json.loads(raw)}, DRAFT_PROVIDER_DATABAG)
    (read,) = decode_statuses(raw).statuses
    assert read == status
    assert read.verification == verification
    assert read.is_drill


def test_verification_round_trips_with_unknown_keys():
    data = {**PASS.to_dict(), "x-future": 1}
    assert Verification.from_dict(data).to_dict() == data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"result": "maybe"}, "'verification.result'"),
        ({"result": "fail"}, "reason"),
        ({"checked-at": "today"}, "'verification.checked-at'"),
        ({"reason": "x" * 501}, "'verification.reason'"),
        ({"tables-checked": -1}, "'verification.tables-checked'"),
    ],
)
def test_bad_verifications_are_refused(change: dict[str, object], expected: str):
    status = JobStatus.for_request(drill(), JobState.SUCCESS, verification=PASS).to_dict()
    status["verification"] = {**status["verification"], **change}
    with pytest.raises(DataValidationError, match=expected):
        schemas.validate(status, schemas.PROVIDER, "job-status")


def test_verification_without_checked_at_is_refused():
    status = JobStatus.for_request(drill(), JobState.SUCCESS, verification=PASS).to_dict()
    del status["verification"]["checked-at"]
    with pytest.raises(DataValidationError, match="checked-at"):
        schemas.validate(status, schemas.PROVIDER, "job-status")
