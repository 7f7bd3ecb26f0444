"""Bounds on the requirer's databag: what a requirer may grow is limited.

The provider refuses what is over a bound with a message instead of paying for it in
every hook.

Before these bounds a job could carry 1,000 databases and 10,000 tables of 257 characters,
and the provider decoded the whole `jobs` value several times per hook: 30 jobs of 1,000
tables cost every hook 1.4 s, the schema's own limits 22 s. Now the bag holds at most
MAX_JOBS jobs of at most 256 databases and 256 tables, the provider decodes it once per
hook, and a draft requirer (the draft has no bounds) that sends more gets `status: error`
on the jobs over a bound, with the bound and what to do in the message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ops import testing

from database_backup.interface import (
    BackupKind,
    DataValidationError,
    JobRequest,
    JobType,
    StorageConfig,
    codec,
    decode_requests,
    schemas,
)

from .charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm

STORAGE = StorageConfig(bucket="backups", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")


def job(job_id: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "job-id": job_id,
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {"bucket": "backups", "access-key": "AK", "secret-key": "SK"},
    }
    item.update(extra)
    return item


def problem_of(items: list[dict[str, Any]], job_id: str) -> str:
    decoded = decode_requests(json.dumps(items))
    (problem,) = [p for p in decoded.problems if p.job_id == job_id]
    return problem.message


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (
            {"backup-kind": "logical", "databases": [f"db{n}" for n in range(257)]},
            "'databases' lists 257 names: a job takes at most 256",
        ),
        (
            {"backup-kind": "logical", "tables": [f"shop.t{n}" for n in range(10_000)]},
            "'tables' lists 10000 names: a job takes at most 256",
        ),
        ({"backup-kind": "logical", "databases": ["d" * 65]}, "'databases.0'"),
        ({"backup-kind": "logical", "tables": ["s" * 64 + "." + "t" * 65]}, "'tables.0'"),
        ({"description": "x" * 501}, "'description'"),
        ({"requested-at": "2026-11-22T07:15:00Z" + " " * 100}, "'requested-at'"),
        ({"job-type": "restore", "artefact-path": "p" * 2049}, "'artefact-path'"),
    ],
)
def test_a_job_over_a_bound_is_a_problem_of_that_job_alone(extra: dict[str, Any], words: str):
    items = [job("ok"), job("big", **extra)]
    decoded = decode_requests(json.dumps(items))
    assert [j.job_id for j in decoded.jobs] == ["ok"]
    assert words in problem_of(items, "big")


def test_a_chain_over_its_bound_is_refused():
    storage = {"bucket": "backups", "tls-ca-chain": "C" * 65_537}
    assert "'storage-config.tls-ca-chain'" in problem_of(
        [job("j", **{"storage-config": storage})], "j"
    )


def test_jobs_past_the_bound_are_refused_one_by_one_saying_what_to_do():
    items = [job(f"j{n}") for n in range(codec.MAX_JOBS + 3)]
    decoded = decode_requests(json.dumps(items))
    assert [j.job_id for j in decoded.jobs] == [f"j{n}" for n in range(codec.MAX_JOBS)]
    refused = {p.job_id: p.message for p in decoded.problems}
    assert set(refused) == {f"j{n}" for n in range(codec.MAX_JOBS, codec.MAX_JOBS + 3)}
    assert refused[f"j{codec.MAX_JOBS}"] == (
        f"the requirer's databag holds {codec.MAX_JOBS + 3} jobs and a provider takes at most "
        f"{codec.MAX_JOBS}: remove finished jobs from 'jobs' and request this one again"
    )


def test_a_jobs_value_over_its_size_bound_is_refused_whole_without_parsing_it():
    raw = json.dumps([job("j", padding="x" * codec.MAX_JOBS_CHARS)])
    decoded = decode_requests(raw)
    assert decoded.jobs == ()
    assert decoded.error == (
        f"'jobs' has {len(raw)} characters and a provider takes at most {codec.MAX_JOBS_CHARS}: "
        "remove finished jobs and keep each job to the schema's bounds"
    )


def test_the_schemas_state_the_bounds():
    requirer = schemas.load_schema(schemas.REQUIRER)
    props = requirer["$defs"]["job"]["properties"]
    assert requirer["$defs"]["jobs"]["maxItems"] == codec.MAX_JOBS
    assert requirer["properties"]["jobs"]["maxLength"] == codec.MAX_JOBS_CHARS
    assert props["databases"]["maxItems"] == codec.MAX_NAMES == 256
    assert props["tables"]["maxItems"] == codec.MAX_NAMES
    assert props["databases"]["items"]["maxLength"] == 64
    assert props["tables"]["items"]["maxLength"] == 129


def _largest_job(n: int) -> JobRequest:
    return JobRequest(
        f"backup-20261122T071500Z-{n:06x}",
        JobType.BACKUP,
        STORAGE,
        backup_kind=BackupKind.LOGICAL,
        databases=tuple(f"{d:03d}".ljust(64, "d") for d in range(codec.MAX_NAMES)),
        tables=tuple(f"{t:03d}".ljust(64, "s") + "." + "t" * 64 for t in range(codec.MAX_NAMES)),
        description="x" * 500,
    )


def test_our_requirer_cannot_write_more_jobs_than_the_bound():
    with pytest.raises(
        DataValidationError, match=f"{codec.MAX_JOBS + 1} items, at most {codec.MAX_JOBS}"
    ):
        codec.encode_requests([_largest_job(n) for n in range(codec.MAX_JOBS + 1)])


def test_the_largest_bag_the_bounds_allow_is_written_and_read_back():
    raw = codec.encode_requests([_largest_job(n) for n in range(codec.MAX_JOBS)])
    assert len(raw) <= codec.MAX_JOBS_CHARS
    decoded = decode_requests(raw)
    assert decoded.problems == ()
    assert len(decoded.jobs) == codec.MAX_JOBS


def test_a_provider_hook_validates_each_job_once(monkeypatch: pytest.MonkeyPatch):
    """The provider reads the requests in several places per hook: one decode serves all."""
    calls: list[str] = []
    real = schemas.errors_of

    def counting(instance: Any, side: str, definition: str | None = None) -> list[str]:
        if definition == "job":
            calls.append(str(instance.get("job-id")))
        return real(instance, side, definition)

    monkeypatch.setattr(schemas, "errors_of", counting)
    items = [job(f"once-{n}") for n in range(5)]
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": json.dumps(items)},
    )
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")]),
    )
    assert sorted(calls) == [f"once-{n}" for n in range(5)]


def test_a_draft_requirers_oversized_job_gets_an_error_status_and_the_rest_run():
    items = [
        job("small"),
        job("huge", **{"backup-kind": "logical", "tables": [f"s.t{n}" for n in range(5000)]}),
    ]
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": json.dumps(items)},
    )
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")]),
    )
    data = out.get_relation(relation.id).local_unit_data
    statuses = {s["job-id"]: s for s in json.loads(data["jobs"])}
    assert statuses["small"]["status"] == "running"
    assert statuses["huge"]["status"] == "error"
    assert "'tables' lists 5000 names: a job takes at most 256" in statuses["huge"]["message"]
    assert "request-error" not in data


def test_a_draft_requirers_oversized_bag_is_reported_not_fatal():
    raw = json.dumps([job("j", padding="x" * codec.MAX_JOBS_CHARS)])
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": raw},
    )
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")]),
    )
    data = out.get_relation(relation.id).local_unit_data
    assert data["jobs"] == "[]"
    assert f"a provider takes at most {codec.MAX_JOBS_CHARS}" in data["request-error"]


def test_a_provider_hook_validates_each_status_it_publishes_once(
    monkeypatch: pytest.MonkeyPatch,
):
    """Publishing n statuses one by one re-read and re-checked all of them: n^2 checks."""
    checked: list[object] = []
    real = schemas.errors_of

    def counting(instance: Any, side: str, definition: str | None = None) -> list[str]:
        if side == schemas.PROVIDER and definition is not None:  # not the bag's own keys
            checked.append(definition)
        return real(instance, side, definition)

    monkeypatch.setattr(schemas, "errors_of", counting)
    items = [job(f"status-{n}") for n in range(8)]
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": json.dumps(items)},
    )
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")]),
    )
    statuses = json.loads(out.get_relation(relation.id).local_unit_data["jobs"])
    assert len(statuses) == 8
    assert checked == ["job-status"] * 8
