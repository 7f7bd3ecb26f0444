"""Interface tests for the requirer side of `database_backup` v0 (a backup manager charm).

Given its own requests and what provider units report, the requirer's application databag
must stay within the schema: statuses arriving, unreadable provider data or draft-style
statuses never make it drop a request that is still in flight or write anything invalid.

The interface tester collects every function of this module as a test: helpers live in the
`_Given` class.
"""

# ruff: noqa: S101  (interface tests state their expectations with assert)

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from interface_tester import Tester
from ops.testing import Relation, State

EVENT = "database-backup-relation-changed"
CREDENTIALS_ID = "secret:cs5b1ovmp25c77v1k3f0"
ENCRYPTION_KEY_ID = "secret:cs5b1ovmp25c77v1k3fg"


class _Given:
    """Builders shared by the tests (a class, so the tester does not take them for tests)."""

    @staticmethod
    def job(job_id: str, job_type: str = "backup", **extra: Any) -> dict[str, Any]:
        """A job request as a requirer following this spec writes it."""
        job: dict[str, Any] = {
            "job-id": job_id,
            "job-type": job_type,
            "job-config": {"compression": True},
            "storage-interface": "s3",
            "storage-config": {
                "bucket": "db-backups",
                "path": "mysql",
                "credentials-secret-id": CREDENTIALS_ID,
            },
            "requested-at": "2026-11-22T07:15:00Z",
        }
        if job_type == "restore":
            job["artefact-path"] = "mysql/backups/20261122T071500Z-3fa9/"
            job["backup-id"] = "20261122T071500Z-3fa9"
        job.update(extra)
        return job

    @staticmethod
    def status(job: Mapping[str, Any], state: str, **extra: Any) -> dict[str, Any]:
        """A provider status for `job`, echoing its request fields."""
        echoed = ("job-type", "job-config", "storage-interface", "storage-config")
        out = {key: job[key] for key in echoed}
        out.update({"job-id": job["job-id"], "status": state, "unit": "mysql-server/0"})
        out.update(extra)
        return out

    @staticmethod
    def relation(jobs: list[dict[str, Any]], units: Mapping[int, Mapping[str, str]]) -> Relation:
        """The relation as the requirer sees it: its own requests, the provider units' data."""
        return Relation(
            "database-backup",
            interface="database_backup",
            remote_app_name="mysql-server",
            local_app_data={
                "jobs": json.dumps(jobs),
                "cluster-id": "model-uuid/mysql-server",
            },
            remote_units_data={unit: dict(data) for unit, data in units.items()},
        )

    @staticmethod
    def tester(relation: Relation) -> Tester:
        """A Tester on the requirer leader (the unit that owns the application databag).

        pytest-interface-tester 3.4 takes only the relations from a test's input state and
        everything else from the charm's `state_template`; leadership belongs to this test's
        "given", so it is merged into that template here.
        """
        state = State(leader=True, relations=[relation])
        tester = Tester(state)
        ctx = tester.ctx
        if ctx is None:
            raise RuntimeError("interface tests must run inside the interface tester")
        template = ctx.state_template or State()
        ctx.state_template = dataclasses.replace(template, leader=True)
        return tester

    @staticmethod
    def requested_ids(state: State, relation: Relation) -> list[str]:
        """The job ids in the requirer's application databag after the run."""
        data = state.get_relation(relation.id).local_app_data
        return [job["job-id"] for job in json.loads(data["jobs"])]


def test_requests_stay_while_statuses_arrive() -> None:
    """Running, successful and failed statuses leave every request in the databag."""
    backup, restore, failed = (
        _Given.job("backup-1"),
        _Given.job("restore-1", "restore", **{"point-in-time": "2026-11-22T08:00:00Z"}),
        _Given.job("backup-2", **{"encryption-secret-id": ENCRYPTION_KEY_ID}),
    )
    statuses = [
        _Given.status(
            backup,
            "success",
            **{
                "backup-id": "20261122T071500Z-3fa9",
                "backup-kind": "full",
                "size-bytes": 1048576,
                "sha256": "0" * 64,
                "compression": "zstd",
                "encrypted": False,
                "flavour": "mariadb",
                "server-version": "10.11.6",
                "started-at": "2026-11-22T07:15:01Z",
                "finished-at": "2026-11-22T07:16:40Z",
                "artefact-path": "mysql/backups/20261122T071500Z-3fa9/",
            },
        ),
        _Given.status(
            restore,
            "running",
            phase="streaming",
            progress={"bytes-done": 4096, "bytes-estimated": 1048576},
        ),
        _Given.status(failed, "error", message="the encryption key secret was not granted"),
    ]
    relation = _Given.relation(
        [backup, restore, failed], {0: {"jobs": json.dumps(statuses)}, 1: {"jobs": "[]"}}
    )
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    assert _Given.requested_ids(state, relation) == ["backup-1", "restore-1", "backup-2"]


def test_unreadable_provider_data_is_survived() -> None:
    """Garbage and a `request-error` from provider units neither crash nor corrupt the bag."""
    jobs = [_Given.job("backup-1"), _Given.job("backup-2")]
    relation = _Given.relation(
        jobs,
        {
            0: {"jobs": "{not json", "request-error": "'jobs' is not valid JSON"},
            1: {"jobs": json.dumps([{"job-id": "backup-2", "status": "exploded"}, 42])},
        },
    )
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    assert _Given.requested_ids(state, relation) == ["backup-1", "backup-2"]


def test_draft_style_statuses_are_accepted() -> None:
    """A draft-only provider echoes the request (inline keys included): still valid."""
    job = _Given.job("backup-1")
    draft_status = {
        "job-id": "backup-1",
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {"bucket": "db-backups", "access-key": "ak", "secret-key": "sk"},
        "status": "success",
        "artefact-path": "/path/to/backups-and-logs/",
    }
    relation = _Given.relation([job], {0: {"jobs": json.dumps([draft_status])}})
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    assert _Given.requested_ids(state, relation) == ["backup-1"]


def test_statuses_for_unknown_jobs_are_ignored() -> None:
    """A status for a job the requirer never asked for does not enter its databag."""
    job = _Given.job("backup-1")
    stranger = {"job-id": "someone-elses-job", "status": "running"}
    relation = _Given.relation([job], {0: {"jobs": json.dumps([stranger])}})
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    assert _Given.requested_ids(state, relation) == ["backup-1"]


def test_drill_statuses_keep_the_requests() -> None:
    """A passed and a failed drill, each with its verification, keep the bag valid."""
    passed, failed = (
        _Given.job("drill-1", **{"verify-backup-id": "20261122T071500Z-3fa9"}),
        _Given.job("drill-2", **{"verify-backup-id": "20261121T071500Z-0b1c"}),
    )
    statuses = [
        _Given.status(
            passed,
            "success",
            **{
                "verify-backup-id": "20261122T071500Z-3fa9",
                "phase": "done",
                "verification": {
                    "result": "pass",
                    "checked-at": "2026-11-22T08:03:00Z",
                    "duration-seconds": 41.5,
                    "tables-checked": 12,
                    "tables-compared": 11,
                    "tables-skipped": 1,
                },
            },
        ),
        _Given.status(
            failed,
            "error",
            message="drill failed: shop.orders: 2500 rows recorded, 2499 found",
            **{
                "verify-backup-id": "20261121T071500Z-0b1c",
                "verification": {
                    "result": "fail",
                    "checked-at": "2026-11-22T08:05:00Z",
                    "reason": "drill failed: shop.orders: 2500 rows recorded, 2499 found",
                },
            },
        ),
    ]
    relation = _Given.relation([passed, failed], {0: {"jobs": json.dumps(statuses)}})
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    assert _Given.requested_ids(state, relation) == ["drill-1", "drill-2"]
