"""Interface tests for the provider side of `database_backup` v0 (a database charm).

Given what a requirer (backup manager) wrote in its application databag, the provider unit
under test must answer in its unit databag, within the JSON schemas, without crashing on
bad input. The tests accept any outcome a correct provider may report today (`running`,
`success` or `error`); they insist on what the spec requires: every job is answered,
never silently dropped, a job that cannot run says why, and credentials are never echoed.

The interface tester collects every function of this module as a test: helpers live in the
`_Given` class.
"""

# ruff: noqa: S101, S105  (expectations are asserts; the keys are fake test values)

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

from interface_tester import Tester
from ops.testing import Relation, Secret, State

EVENT = "database-backup-relation-changed"
STATES = ("running", "success", "error")
ACCESS_KEY = "AKIAINTERFACETEST"
SECRET_KEY = "interface-test-secret-key-value"
CREDENTIALS = Secret({"access-key": ACCESS_KEY, "secret-key": SECRET_KEY})
ENCRYPTION_KEY = Secret({"key": base64.b64encode(bytes(range(32))).decode()})
SHORT_KEY = Secret({"key": base64.b64encode(b"too short").decode()})
NOT_GRANTED = "secret:d1e2f3a4b5c6d7e8f9a0"


class _Given:
    """Builders shared by the tests (a class, so the tester does not take them for tests)."""

    @staticmethod
    def job(job_id: str, job_type: str = "backup", **extra: Any) -> dict[str, Any]:
        """A valid job request credentialed by the granted secret."""
        job: dict[str, Any] = {
            "job-id": job_id,
            "job-type": job_type,
            "job-config": {"compression": True},
            "storage-interface": "s3",
            "storage-config": {
                "bucket": "db-backups",
                "endpoint": "https://s3.example.com",
                "path": "mysql",
                "credentials-secret-id": CREDENTIALS.id,
            },
        }
        if job_type == "restore":
            job["artefact-path"] = "mysql/backups/20261122T071500Z-3fa9/"
        job.update(extra)
        return job

    @staticmethod
    def relation(jobs: object, **app_data: str) -> Relation:
        """The relation as the provider sees it: `jobs` (encoded unless a str) from the app."""
        raw = jobs if isinstance(jobs, str) else json.dumps(jobs)
        return Relation(
            "database-backup",
            interface="database_backup",
            remote_app_name="backup-manager",
            remote_app_data={"jobs": raw, **app_data},
        )

    @staticmethod
    def tester(relation: Relation, *secrets: Secret) -> Tester:
        """A Tester on the provider leader, with `secrets` granted to it.

        pytest-interface-tester 3.4 takes only the relations from a test's input state and
        everything else from the charm's `state_template`; leadership and the granted secrets
        belong to this test's "given", so they are merged into that template here.
        """
        state = State(leader=True, relations=[relation], secrets=secrets)
        tester = Tester(state)
        ctx = tester.ctx
        if ctx is None:
            raise RuntimeError("interface tests must run inside the interface tester")
        template = ctx.state_template or State()
        ctx.state_template = dataclasses.replace(
            template, leader=state.leader, secrets={*template.secrets, *state.secrets}
        )
        return tester

    @staticmethod
    def statuses(state: State, relation: Relation) -> dict[str, dict[str, Any]]:
        """The statuses the unit under test published, by job id."""
        data = state.get_relation(relation.id).local_unit_data
        items = json.loads(data.get("jobs", "[]"))
        return {item["job-id"]: item for item in items}

    @staticmethod
    def unit_data(state: State, relation: Relation) -> dict[str, str]:
        """The unit databag of the unit under test."""
        return dict(state.get_relation(relation.id).local_unit_data)


def test_backup_job_with_granted_secret_gets_a_status() -> None:
    """A valid backup job whose credentials secret is granted is answered."""
    # GIVEN a backup job whose credentials secret is granted to the provider
    relation = _Given.relation([_Given.job("backup-1", description="nightly")])
    tester = _Given.tester(relation, CREDENTIALS)

    # WHEN the provider sees the requirer's data
    state = tester.run(EVENT)

    # THEN the provider unit reports the job, within the schema
    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert set(statuses) == {"backup-1"}
    status = statuses["backup-1"]
    assert status["status"] in STATES
    if status["status"] == "error":
        assert status.get("message"), "an error must say why"
        assert CREDENTIALS.id not in status["message"], "the granted secret is readable"


def test_encrypted_logical_backup_gets_a_status() -> None:
    """A job using the extensions (logical, databases, encryption secret) is answered."""
    # GIVEN a logical backup of two databases, encrypted with a granted key
    job = _Given.job(
        "backup-logical",
        **{
            "backup-kind": "logical",
            "databases": ["shop", "billing"],
            "encryption-secret-id": ENCRYPTION_KEY.id,
            "compression-level": 6,
        },
    )
    relation = _Given.relation([job], **{"cluster-id": "model-uuid/mysql"})
    tester = _Given.tester(relation, CREDENTIALS, ENCRYPTION_KEY)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert set(statuses) == {"backup-logical"}
    status = statuses["backup-logical"]
    assert status["status"] in STATES
    if status["status"] == "error":
        assert CREDENTIALS.id not in status["message"], "the granted secret is readable"
        assert ENCRYPTION_KEY.id not in status["message"], "the granted key is usable"


def test_draft_style_restore_gets_a_status_without_the_inline_keys() -> None:
    """A draft-style restore (inline keys) is answered; the keys are never echoed."""
    # GIVEN a restore written the draft's way: credentials inline in storage-config
    job = _Given.job("restore-draft", "restore")
    job["storage-config"] = {
        "bucket": "db-backups",
        "access-key": ACCESS_KEY,
        "secret-key": SECRET_KEY,
    }
    relation = _Given.relation([job])
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    # THEN the job is answered, and the keys appear nowhere in what the provider publishes
    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert statuses["restore-draft"]["status"] in STATES
    published = json.dumps(_Given.unit_data(state, relation))
    assert SECRET_KEY not in published
    assert ACCESS_KEY not in published


def test_draft_style_backup_is_not_refused_for_missing_credentials() -> None:
    """Inline keys are credentials: a draft-style backup is never failed for lacking them."""
    # GIVEN a backup written exactly the draft's way: inline keys, no secret id
    job = _Given.job("backup-draft")
    job["job-config"] = {"compression": False}
    job["storage-config"] = {
        "bucket": "db-backups",
        "access-key": ACCESS_KEY,
        "secret-key": SECRET_KEY,
    }
    relation = _Given.relation([job])
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    # THEN it is answered; if it cannot run, the reason is not missing credentials
    tester.assert_schema_valid()
    status = _Given.statuses(state, relation)["backup-draft"]
    assert status["status"] in STATES
    if status["status"] == "error":
        assert "credentials" not in status.get("message", "").lower(), status.get("message")
    published = json.dumps(_Given.unit_data(state, relation))
    assert SECRET_KEY not in published
    assert ACCESS_KEY not in published


def test_job_whose_secret_is_not_granted_fails_with_a_reason() -> None:
    """A credentials secret the provider cannot read: `error`, naming the secret."""
    # GIVEN a job naming a credentials secret the provider cannot read
    job = _Given.job("backup-no-secret")
    job["storage-config"]["credentials-secret-id"] = NOT_GRANTED
    relation = _Given.relation([job])
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    # THEN the job fails, and the message names the secret
    tester.assert_schema_valid()
    status = _Given.statuses(state, relation)["backup-no-secret"]
    assert status["status"] == "error"
    assert NOT_GRANTED in status["message"]


def test_job_with_an_unusable_encryption_key_fails_with_a_reason() -> None:
    """An encryption secret whose key is not 32 bytes: `error`, naming the secret."""
    # GIVEN an encryption secret whose key is not 32 bytes
    job = _Given.job("backup-short-key", **{"encryption-secret-id": SHORT_KEY.id})
    relation = _Given.relation([job])
    tester = _Given.tester(relation, CREDENTIALS, SHORT_KEY)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    status = _Given.statuses(state, relation)["backup-short-key"]
    assert status["status"] == "error"
    assert SHORT_KEY.id in status["message"]


def test_drill_job_gets_a_status_that_echoes_it() -> None:
    """A restore drill (a backup job with `verify-backup-id`) is answered as a drill."""
    # GIVEN a drill of one backup, to a point in time, with a granted encryption key
    job = _Given.job(
        "drill-1",
        **{
            "verify-backup-id": "20261122T071500Z-3fa9",
            "point-in-time": "2026-11-22T08:00:00Z",
            "encryption-secret-id": ENCRYPTION_KEY.id,
        },
    )
    relation = _Given.relation([job])
    tester = _Given.tester(relation, CREDENTIALS, ENCRYPTION_KEY)

    state = tester.run(EVENT)

    # THEN it is answered; a provider that runs it echoes the backup it verifies, and a
    # drill that succeeded says it passed (success without a verification is a plain backup)
    tester.assert_schema_valid()
    status = _Given.statuses(state, relation)["drill-1"]
    assert status["status"] in STATES
    if status["status"] == "error":
        assert status.get("message"), "an error must say why"
    else:
        assert status.get("verify-backup-id") == "20261122T071500Z-3fa9"
    if status["status"] == "success":
        assert status["verification"]["result"] == "pass"


def test_drill_with_a_backup_kind_fails_naming_the_rule() -> None:
    """A drill also asking for a backup kind is invalid: `error`, saying what to remove."""
    job = _Given.job(
        "drill-bad", **{"verify-backup-id": "20261122T071500Z-3fa9", "backup-kind": "logical"}
    )
    relation = _Given.relation([job])
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    status = _Given.statuses(state, relation)["drill-bad"]
    assert status["status"] == "error"
    assert "verify-backup-id" in status["message"]
    assert "backup-kind" in status["message"]


def test_jobs_value_that_is_not_json_is_reported_not_fatal() -> None:
    """Garbage instead of `jobs`: no crash, no status, a `request-error` saying why."""
    # GIVEN garbage where the requirer's `jobs` should be
    relation = _Given.relation("{this is not json")
    tester = _Given.tester(relation)

    # WHEN the provider reads it: no crash (a crash fails `run`)
    state = tester.run(EVENT)

    # THEN the databag stays valid, holds no status, and `request-error` says what is wrong
    tester.assert_schema_valid()
    assert _Given.statuses(state, relation) == {}
    assert "JSON" in _Given.unit_data(state, relation).get("request-error", "")


def test_jobs_items_that_are_not_objects_are_reported_not_fatal() -> None:
    """Items with no job id to report them under end up in `request-error`."""
    # GIVEN an array whose items have no job id to report them under
    relation = _Given.relation([1, "backup please", None])
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    assert _Given.statuses(state, relation) == {}
    assert "job #0" in _Given.unit_data(state, relation).get("request-error", "")


def test_invalid_job_with_a_readable_id_gets_an_error_status() -> None:
    """An invalid job with a readable id gets `error`; its valid neighbour is answered."""
    # GIVEN a job that puts an unknown key in the closed `job-config` object
    bad = _Given.job("backup-bad-config")
    bad["job-config"] = {"compression": True, "level": 9}
    relation = _Given.relation([bad, _Given.job("backup-fine")])
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    # THEN the bad job fails with a message naming the problem; the good one is answered
    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert statuses["backup-bad-config"]["status"] == "error"
    assert "job-config" in statuses["backup-bad-config"]["message"]
    assert statuses["backup-fine"]["status"] in STATES


def test_jobs_naming_their_ca_chain_by_id_are_answered() -> None:
    """`tls-ca-chain-id` resolved from the top-level `tls-ca-chains`; the PEM is not echoed."""
    # GIVEN two jobs naming one chain published once, under the digest of its PEM
    pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
    chain_id = hashlib.sha256(pem.encode()).hexdigest()[:16]
    jobs = [_Given.job(f"backup-ca-{n}") for n in range(2)]
    for job in jobs:
        job["storage-config"]["tls-ca-chain-id"] = chain_id
    relation = _Given.relation(jobs, **{"tls-ca-chains": json.dumps({chain_id: pem})})
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    # THEN both are answered, and no status repeats the chain
    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert set(statuses) == {"backup-ca-0", "backup-ca-1"}
    for status in statuses.values():
        assert status["status"] in STATES
        assert "tls-ca-chain id" not in status.get("message", "")
    assert pem not in json.dumps(statuses)


def test_a_job_naming_an_unpublished_ca_chain_gets_an_error_status() -> None:
    """An id missing from `tls-ca-chains` is that job's error, saying what to do."""
    job = _Given.job("backup-no-chain")
    job["storage-config"]["tls-ca-chain-id"] = "0123456789abcdef"
    relation = _Given.relation([job, _Given.job("backup-fine")])
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert statuses["backup-no-chain"]["status"] == "error"
    assert "tls-ca-chain-id 0123456789abcdef" in statuses["backup-no-chain"]["message"]
    assert statuses["backup-fine"]["status"] in STATES


def test_jobs_past_the_bound_get_an_error_status() -> None:
    """A requirer with more than 32 jobs: each job past the 32nd is refused, not dropped."""
    relation = _Given.relation([_Given.job(f"backup-{n:02d}") for n in range(34)])
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert len(statuses) == 34
    for job_id in ("backup-32", "backup-33"):
        assert statuses[job_id]["status"] == "error"
        assert "at most 32" in statuses[job_id]["message"]


def test_duplicate_job_ids_get_an_error_status() -> None:
    """Two jobs with one id: `error` under that id, saying ids must be unique."""
    relation = _Given.relation([_Given.job("backup-twice"), _Given.job("backup-twice")])
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    tester.assert_schema_valid()
    status = _Given.statuses(state, relation)["backup-twice"]
    assert status["status"] == "error"
    assert "unique" in status["message"]


def test_every_job_is_answered_and_restores_never_overlap() -> None:
    """Each job gets one status; never two restores, nor a backup beside a restore, running."""
    # GIVEN two restores and a backup requested together
    relation = _Given.relation(
        [
            _Given.job("restore-a", "restore", **{"requested-at": "2026-11-22T07:00:00Z"}),
            _Given.job("restore-b", "restore", **{"requested-at": "2026-11-22T07:00:01Z"}),
            _Given.job("backup-c", **{"requested-at": "2026-11-22T07:00:02Z"}),
        ]
    )
    tester = _Given.tester(relation, CREDENTIALS)

    state = tester.run(EVENT)

    # THEN each job has exactly one status, and the locking rules hold
    tester.assert_schema_valid()
    statuses = _Given.statuses(state, relation)
    assert set(statuses) == {"restore-a", "restore-b", "backup-c"}
    running = {job_id for job_id, s in statuses.items() if s["status"] == "running"}
    assert len(running & {"restore-a", "restore-b"}) <= 1
    assert not (running & {"restore-a", "restore-b"} and "backup-c" in running)
    for status in statuses.values():
        if status["status"] == "error":
            assert status.get("message")


def test_no_jobs_leaves_a_valid_databag() -> None:
    """An empty request list leaves the unit databag empty or valid, without statuses."""
    relation = _Given.relation([])
    tester = _Given.tester(relation)

    state = tester.run(EVENT)

    assert _Given.statuses(state, relation) == {}
    if "jobs" in _Given.unit_data(state, relation):
        tester.assert_schema_valid()
    else:
        tester.assert_relation_data_empty()
