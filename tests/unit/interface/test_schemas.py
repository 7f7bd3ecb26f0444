"""The interface schemas: the draft's examples validate, and what we write obeys the draft."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from database_backup.interface import (
    BackupKind,
    DataValidationError,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
    codec,
    decode_requests,
    decode_statuses,
    schemas,
)

from .draft_rules import DRAFT_PROVIDER_DATABAG, DRAFT_REQUIRER_DATABAG

VECTORS = Path(__file__).parent / "vectors"
REPO = Path(__file__).parents[3]


def vector(name: str) -> str:
    return (VECTORS / name).read_text()


def test_library_loads_the_spec_files_themselves():
    spec = REPO / "interfaces" / "database_backup" / "v0" / "schemas"
    for side in ("requirer", "provider"):
        assert schemas.load_schema(side) == json.loads((spec / f"{side}.json").read_text())


def test_the_package_carries_real_copies_identical_to_the_spec():
    """`pip install lib/` or a copied lib/ must work: real files, byte for byte the spec's."""
    spec = REPO / "interfaces" / "database_backup" / "v0" / "schemas"
    packaged = REPO / "lib" / "database_backup" / "interface" / "schemas"
    assert not packaged.is_symlink(), "lib's schemas must be real files, not a symlink"
    assert sorted(p.name for p in packaged.iterdir()) == sorted(p.name for p in spec.iterdir())
    for spec_file in spec.iterdir():
        packaged_file = packaged / spec_file.name
        assert not packaged_file.is_symlink()
        assert packaged_file.read_bytes() == spec_file.read_bytes(), (
            f"{packaged_file.relative_to(REPO)} differs from {spec_file.relative_to(REPO)}: "
            f"copy the spec's file over it (cp {spec_file.relative_to(REPO)} "
            f"{packaged_file.relative_to(REPO)})"
        )


def test_draft_requirer_example_validates():
    raw = vector("draft_requirer_example.json")
    schemas.validate({"jobs": raw}, schemas.REQUIRER)
    schemas.validate(json.loads(raw), schemas.REQUIRER, "jobs")
    decoded = decode_requests(raw)
    assert decoded.problems == ()
    assert [j.job_id for j in decoded.jobs] == ["unique-job-id", "another-unique-job-id"]
    assert decoded.jobs[1].artefact_path == "/path/to/retrieve/backups/"
    assert decoded.jobs[0].kind is BackupKind.FULL


@pytest.mark.parametrize(
    "name", ["draft_provider_example_unit0.json", "draft_provider_example_unit1.json"]
)
def test_draft_provider_examples_validate(name: str):
    raw = vector(name)
    schemas.validate({"jobs": raw}, schemas.PROVIDER)
    decoded = decode_statuses(raw)
    assert decoded.problems == ()
    assert decoded.statuses[0].status in (JobState.ERROR, JobState.SUCCESS)


def test_draft_inline_keys_are_read_but_never_echoed():
    job = decode_requests(vector("draft_requirer_example.json")).jobs[0]
    assert job.storage.has_inline_keys
    assert "secret-key" not in repr(job)
    assert "secret-key" not in repr(job.storage)
    status = JobStatus.for_request(job, JobState.RUNNING)
    assert "secret-key" not in json.dumps(status.to_dict())
    assert "access-key" not in json.dumps(status.to_dict())


def full_featured_jobs() -> list[JobRequest]:
    storage = StorageConfig(
        bucket="backups",
        endpoint="https://s3.example.com",
        region="eu-west-1",
        path="prod",
        uri_style="path",
        credentials_secret_id="secret:cvh7kruupa1s46bqvuig",
    )
    return [
        JobRequest("b1", JobType.BACKUP, storage, backup_kind=BackupKind.FULL),
        JobRequest(
            "b2",
            JobType.BACKUP,
            storage,
            backup_kind=BackupKind.INCREMENTAL,
            parent_backup_id="20261122T070000Z-ab12",
            encryption_secret_id="secret:cvh7kruupa1s46bqvuif",
            compression_level=6,
        ),
        JobRequest(
            "b3",
            JobType.BACKUP,
            storage,
            compression=False,
            backup_kind=BackupKind.LOGICAL,
            databases=("shop",),
            tables=("shop.orders",),
            description="before the migration",
        ),
        JobRequest(
            "r1",
            JobType.RESTORE,
            storage,
            artefact_path="prod/m/mysql/backups/20261122T070000Z-ab12/",
            backup_id="20261122T070000Z-ab12",
            point_in_time="2026-11-22T07:30:00Z",
        ),
        JobRequest("r2", JobType.RESTORE, storage, backup_id="x1", point_in_time="latest"),
    ]


def test_what_our_requirer_writes_obeys_the_draft_rules():
    raw = codec.encode_requests(full_featured_jobs())
    jsonschema.validate({"jobs": json.loads(raw)}, DRAFT_REQUIRER_DATABAG)
    for item in json.loads(raw):
        assert set(item["job-config"]) == {"compression"}


def test_what_our_provider_writes_obeys_the_draft_rules():
    statuses = [
        JobStatus.for_request(
            job,
            JobState.SUCCESS,
            phase="done",
            bytes_done=10,
            bytes_estimated=10,
            started_at="2026-11-22T07:00:00Z",
            finished_at="2026-11-22T07:01:00Z",
            backup_id="20261122T070000Z-ab12",
            size_bytes=10,
            sha256="0" * 64,
            flavour="mariadb",
            server_version="10.11.14-MariaDB",
            binlog_file="bin.000002",
            binlog_position=1234,
            gtid_set="0-1-42",
        )
        for job in full_featured_jobs()
    ]
    raw = codec.encode_statuses(statuses)
    jsonschema.validate({"jobs": json.loads(raw)}, DRAFT_PROVIDER_DATABAG)


def test_round_trip_keeps_every_field():
    for job in full_featured_jobs():
        assert JobRequest.from_dict(job.to_dict()) == job


def test_unknown_keys_survive_a_round_trip():
    item = json.loads(vector("draft_requirer_example.json"))[0]
    item["x-future"] = {"a": 1}
    job = JobRequest.from_dict(item)
    assert job.to_dict(include_inline_keys=True) == item


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"job-type": "vacuum"}, "'vacuum' is not one of: backup, restore"),
        ({"job-config": {"compression": True, "level": 3}}, "'job-config'"),
        ({"job-id": ""}, "'job-id'"),
        ({"backup-kind": "incremental"}, "parent-backup-id"),
        ({"point-in-time": "yesterday"}, "'point-in-time'"),
        ({"storage-interface": "ftp"}, "'storage-interface'"),
    ],
)
def test_bad_requests_are_refused_on_write_with_the_field_named(change: dict, expected: str):
    item = {**full_featured_jobs()[0].to_dict(), **change}
    with pytest.raises(DataValidationError, match=expected.replace("(", r"\(")):
        schemas.validate(item, schemas.REQUIRER, "job")


def test_status_outside_the_draft_enum_is_refused():
    status = JobStatus.for_request(full_featured_jobs()[0], JobState.RUNNING).to_dict()
    status["status"] = "queued"
    with pytest.raises(DataValidationError, match="'status'"):
        schemas.validate(status, schemas.PROVIDER, "job-status")


def test_writer_refuses_duplicate_job_ids():
    job = full_featured_jobs()[0]
    with pytest.raises(DataValidationError, match="duplicate job ids: b1"):
        codec.encode_requests([job, job])
