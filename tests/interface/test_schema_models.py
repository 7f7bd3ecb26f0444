"""The spec's pydantic databag schemas accept what the JSON schemas accept, and no more."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from database_backup.interface import JobRequest, JobState, JobStatus, JobType, StorageConfig
from database_backup.interface.testing import requests_databag, statuses_databag

from .spec import DRAFT_VECTORS, load_schema_module

SCHEMA = load_schema_module()
JUJU_KEYS = {"egress-subnets": "10.0.0.1", "ingress-address": "10.0.0.1"}


def job(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "job-id": "backup-1",
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {"bucket": "db-backups", "credentials-secret-id": "secret:abc123"},
    }
    item.update(changes)
    return item


def requirer_ok(app: dict[str, str]) -> bool:
    try:
        SCHEMA.RequirerSchema.model_validate({"unit": JUJU_KEYS, "app": app})
    except pydantic.ValidationError:
        return False
    return True


def provider_ok(unit: dict[str, str]) -> bool:
    try:
        SCHEMA.ProviderSchema.model_validate({"unit": {**JUJU_KEYS, **unit}, "app": {}})
    except pydantic.ValidationError:
        return False
    return True


def test_draft_examples_are_valid() -> None:
    requests = (DRAFT_VECTORS / "draft_requirer_example.json").read_text()
    assert requirer_ok({"jobs": requests})
    for name in ("draft_provider_example_unit0.json", "draft_provider_example_unit1.json"):
        assert provider_ok({"jobs": (DRAFT_VECTORS / name).read_text()})


def test_what_the_library_writes_is_valid() -> None:
    request = JobRequest(
        job_id="restore-1",
        job_type=JobType.RESTORE,
        storage=StorageConfig(bucket="db-backups", credentials_secret_id="secret:abc123"),
        artefact_path="mysql/backups/b1/",
        point_in_time="latest",
    )
    status = JobStatus.for_request(request, JobState.RUNNING, phase="streaming", bytes_done=1)
    assert requirer_ok({**requests_databag([request]), "cluster-id": "uuid/mysql"})
    assert provider_ok(statuses_databag([status]))
    with_chain = JobRequest(
        job_id="backup-1",
        job_type=JobType.BACKUP,
        storage=StorageConfig(bucket="db-backups", tls_ca_chain="-----BEGIN CERTIFICATE-----"),
    )
    bag = requests_databag([with_chain])
    assert "tls-ca-chains" in bag
    assert requirer_ok(bag)
    assert provider_ok(statuses_databag([JobStatus.for_request(with_chain, JobState.RUNNING)]))


@pytest.mark.parametrize(
    ("name", "app"),
    [
        ("no jobs key", {}),
        ("jobs not JSON", {"jobs": "[{"}),
        ("jobs not an array", {"jobs": "{}"}),
        ("job-config is closed", {"jobs": json.dumps([job(**{"job-config": {"level": 3}})])}),
        ("new job-type value", {"jobs": json.dumps([job(**{"job-type": "verify"})])}),
        ("restore without a target", {"jobs": json.dumps([job(**{"job-type": "restore"})])}),
        ("duplicate job ids", {"jobs": json.dumps([job(), job()])}),
        ("empty cluster-id", {"jobs": "[]", "cluster-id": ""}),
        ("log-shipping not JSON", {"jobs": "[]", "log-shipping": "on"}),
        ("log-shipping without enabled", {"jobs": "[]", "log-shipping": "{}"}),
        ("33 jobs", {"jobs": json.dumps([job(**{"job-id": f"j{n}"}) for n in range(33)])}),
        ("257 tables", {"jobs": json.dumps([job(tables=[f"s.t{n}" for n in range(257)])])}),
        ("tls-ca-chains not JSON", {"jobs": "[]", "tls-ca-chains": "pem"}),
        ("tls-ca-chains id not hex", {"jobs": "[]", "tls-ca-chains": '{"ca-1": "PEM"}'}),
        (
            "tls-ca-chain-id not an id",
            {
                "jobs": json.dumps(
                    [job(**{"storage-config": {"bucket": "b-1", "tls-ca-chain-id": "x"}})]
                )
            },
        ),
    ],
)
def test_requirer_schema_rejects(name: str, app: dict[str, str]) -> None:
    assert not requirer_ok(app), name


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("no jobs key", {}),
        ("new status value", {"jobs": json.dumps([{"job-id": "a", "status": "queued"}])}),
        ("status missing", {"jobs": json.dumps([{"job-id": "a"}])}),
        (
            "bad sha256",
            {"jobs": json.dumps([{"job-id": "a", "status": "success", "sha256": "x"}])},
        ),
        ("duplicate job ids", {"jobs": json.dumps([{"job-id": "a", "status": "error"}] * 2)}),
        ("log-shipping state unknown", {"jobs": "[]", "log-shipping": '{"enabled": true}'}),
    ],
)
def test_provider_schema_rejects(name: str, unit: dict[str, str]) -> None:
    assert not provider_ok(unit), name


def test_extension_keys_are_accepted() -> None:
    log_shipping = {"enabled": True, "status": "running", "last-shipped-file": "bin.000042"}
    status = {
        "job-id": "backup-1",
        "status": "success",
        "progress": {"bytes-done": 10, "bytes-estimated": 10},
        "sha256": "a" * 64,
        "finished-at": "2026-11-22T07:16:40Z",
    }
    unit = {"jobs": json.dumps([status]), "log-shipping": json.dumps(log_shipping)}
    assert provider_ok(unit)
    assert provider_ok({**unit, "request-error": "job #0: not an object"})
