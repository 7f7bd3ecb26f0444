"""CA chains by reference: once per location in the requirer's bag, not once per job.

Every job's `storage-config` used to repeat the whole `tls-ca-chain` PEM. Our requirer now
writes each chain once in the top-level `tls-ca-chains` (id = 16 hex digits of its SHA-256)
and `storage-config.tls-ca-chain-id` in each job; the provider resolves the id into the
job's chain. A draft requirer's inline chain still works; an id the requirer did not
publish is that job's error, with a message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ops import testing

from database_backup.interface import (
    JobRequest,
    JobRequestedEvent,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
    codec,
    decode_requests,
    schemas,
)
from database_backup.interface.requirer import DatabaseBackupRequirer
from database_backup.interface.testing import requirer_side_relation

from .charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm
from .test_requirer import run_with

VECTORS = Path(__file__).parent / "vectors"
PEM = "-----BEGIN CERTIFICATE-----\n" + "MIIB" * 400 + "\n-----END CERTIFICATE-----\n"
OTHER_PEM = PEM.replace("MIIB", "MIIC")
PEM_ID = hashlib.sha256(PEM.encode()).hexdigest()[:16]
CREDENTIALS = testing.Secret({"access-key": "ak", "secret-key": "sk"})
SECRET_ID = CREDENTIALS.id


def storage(pem: str | None = PEM, bucket: str = "backups") -> StorageConfig:
    return StorageConfig(
        bucket=bucket,
        endpoint="https://s3.internal",
        tls_ca_chain=pem,
        credentials_secret_id=SECRET_ID,
    )


def backup(job_id: str, pem: str | None = PEM) -> JobRequest:
    return JobRequest(job_id, JobType.BACKUP, storage(pem))


def test_the_chain_id_is_the_short_sha256_of_the_pem():
    assert codec.ca_chain_id(PEM) == PEM_ID


def test_the_bag_carries_each_chain_once_and_jobs_name_it():
    bag = codec.encode_bag([backup("a"), backup("b"), backup("c", OTHER_PEM), backup("d", None)])
    chains = json.loads(bag[codec.CA_CHAINS_KEY])
    assert chains == {PEM_ID: PEM, codec.ca_chain_id(OTHER_PEM): OTHER_PEM}
    items = {item["job-id"]: item["storage-config"] for item in json.loads(bag["jobs"])}
    assert items["a"]["tls-ca-chain-id"] == PEM_ID
    assert items["b"]["tls-ca-chain-id"] == PEM_ID
    assert "tls-ca-chain-id" not in items["d"]
    assert all("tls-ca-chain" not in config for config in items.values())
    assert PEM not in bag["jobs"]
    schemas.validate(bag, schemas.REQUIRER)


def test_a_bag_without_chains_has_no_chains_key():
    assert codec.encode_bag([backup("a", None)]) == {
        "jobs": codec.encode_requests([backup("a", None)])
    }


def test_decoding_resolves_the_reference():
    bag = codec.encode_bag([backup("a"), backup("b")])
    decoded = codec.decode_bag(bag)
    assert decoded.problems == ()
    assert [job.storage.tls_ca_chain for job in decoded.jobs] == [PEM, PEM]
    assert [job.storage.tls_ca_chain_id for job in decoded.jobs] == [PEM_ID, PEM_ID]


def test_an_inline_chain_from_a_draft_requirer_still_works():
    item = backup("a").to_dict()
    item["storage-config"]["tls-ca-chain"] = PEM
    (job,) = decode_requests(json.dumps([item])).jobs
    assert job.storage.tls_ca_chain == PEM
    assert job.storage.tls_ca_chain_id is None


def _refused(item: dict[str, Any], chains: str | None) -> str:
    decoded = decode_requests(json.dumps([item]), chains)
    assert decoded.jobs == ()
    (problem,) = decoded.problems
    assert problem.job_id == item["job-id"]
    return problem.message


def test_an_unknown_id_is_that_jobs_error_saying_what_to_do():
    item = backup("a", None).to_dict()
    item["storage-config"]["tls-ca-chain-id"] = "0123456789abcdef"
    message = _refused(item, json.dumps({PEM_ID: PEM}))
    assert message == (
        "invalid job request: storage-config.tls-ca-chain-id 0123456789abcdef is not in the "
        f"requirer's 'tls-ca-chains' (it holds: {PEM_ID}): publish the chain under that id, "
        "or give it inline as tls-ca-chain"
    )
    assert "it holds: none" in _refused(item, None)


def test_a_chain_under_an_id_that_is_not_its_digest_is_refused():
    item = backup("a", None).to_dict()
    item["storage-config"]["tls-ca-chain-id"] = PEM_ID
    message = _refused(item, json.dumps({PEM_ID: OTHER_PEM}))
    assert "is not the first 16 hex digits of the chain's SHA-256" in message


def test_unreadable_chains_fail_only_the_jobs_that_name_one():
    named = backup("a", None).to_dict()
    named["storage-config"]["tls-ca-chain-id"] = PEM_ID
    plain = backup("b", None).to_dict()
    decoded = decode_requests(json.dumps([named, plain]), "{not json")
    assert [job.job_id for job in decoded.jobs] == ["b"]
    assert "'tls-ca-chains' is not valid JSON" in decoded.problems[0].message


def test_both_an_inline_chain_and_an_id_is_refused():
    item = backup("a", None).to_dict()
    item["storage-config"].update({"tls-ca-chain": PEM, "tls-ca-chain-id": PEM_ID})
    message = _refused(item, json.dumps({PEM_ID: PEM}))
    assert "has both tls-ca-chain and tls-ca-chain-id" in message


def test_a_status_echoes_the_id_never_the_pem():
    (job,) = codec.decode_bag(codec.encode_bag([backup("a")])).jobs
    status = JobStatus.for_request(job, JobState.RUNNING).to_dict()
    assert status["storage-config"]["tls-ca-chain-id"] == PEM_ID
    inline = JobRequest("b", JobType.BACKUP, storage(PEM))
    assert PEM not in json.dumps(JobStatus.for_request(inline, JobState.RUNNING).to_dict())


def test_the_vector_validates_and_resolves():
    bag = json.loads((VECTORS / "requirer_ca_chain_by_reference.json").read_text())
    schemas.validate(bag, schemas.REQUIRER)
    decoded = codec.decode_bag(bag)
    assert decoded.problems == ()
    chains = json.loads(bag["tls-ca-chains"])
    assert {job.storage.tls_ca_chain for job in decoded.jobs} == set(chains.values())


# -- through the library's requirer and provider ----------------------------------------------


def test_the_requirer_writes_references_and_drops_chains_no_job_uses():
    relation = requirer_side_relation(
        {0: [JobStatus.for_request(backup("old", OTHER_PEM), JobState.SUCCESS)]},
        jobs=[backup("old", OTHER_PEM)],
    )

    def body(lib: DatabaseBackupRequirer, rel: Any) -> None:
        lib.request_backup(rel, storage(), job_id="new-1")
        lib.request_backup(rel, storage(), job_id="new-2")
        lib.clear_finished(rel)

    out = run_with(relation, True, body)
    data = out.get_relation(relation.id).local_app_data
    assert json.loads(data["tls-ca-chains"]) == {PEM_ID: PEM}
    assert data["jobs"].count(PEM_ID) == 2
    assert PEM not in data["jobs"]

    def clear(lib: DatabaseBackupRequirer, rel: Any) -> None:
        lib.clear_finished(rel)

    done = [JobStatus.for_request(backup(j), JobState.SUCCESS) for j in ("new-1", "new-2")]
    relation = requirer_side_relation({0: done}, jobs=[backup("new-1"), backup("new-2")])
    out = run_with(relation, True, clear)
    assert "tls-ca-chains" not in out.get_relation(relation.id).local_app_data


class ChainRecordingProvider(ProviderCharm):
    """Records the CA chain each job reaches the charm with."""

    chains: ClassVar[list[tuple[str, str | None]]] = []

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        type(self).chains.append((event.job.job_id, event.job.storage.tls_ca_chain))
        super()._on_job_requested(event)


def _provider_run(app_data: dict[str, str]) -> testing.State:
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="backup-manager",
        remote_app_data=app_data,
    )
    ctx = testing.Context(ChainRecordingProvider, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    return ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(
            leader=True,
            relations=[relation, testing.PeerRelation("mysql-peers")],
            secrets=[CREDENTIALS],
        ),
    )


def _statuses(out: testing.State) -> dict[str, dict[str, Any]]:
    relation = next(r for r in out.relations if r.endpoint == "database-backup")
    assert isinstance(relation, testing.Relation)
    return {s["job-id"]: s for s in json.loads(relation.local_unit_data["jobs"])}


def test_the_provider_starts_a_job_with_its_chain_resolved():
    ChainRecordingProvider.chains = []
    out = _provider_run(codec.encode_bag([backup("a")]))
    assert ChainRecordingProvider.chains == [("a", PEM)]
    assert _statuses(out)["a"]["status"] == "running"
    assert PEM not in json.dumps(_statuses(out))


@pytest.mark.parametrize("chains", [None, json.dumps({codec.ca_chain_id(OTHER_PEM): OTHER_PEM})])
def test_the_provider_fails_a_job_whose_chain_it_cannot_find(chains: str | None):
    ChainRecordingProvider.chains = []
    bag = codec.encode_bag([backup("a")])
    if chains is None:
        del bag["tls-ca-chains"]
    else:
        bag["tls-ca-chains"] = chains
    status = _statuses(_provider_run(bag))["a"]
    assert ChainRecordingProvider.chains == []
    assert status["status"] == "error"
    assert f"storage-config.tls-ca-chain-id {PEM_ID} is not in the requirer's" in status["message"]


def _shipping_request_seen(app_data: dict[str, str]) -> object:
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="backup-manager",
        remote_app_data={"jobs": "[]", **app_data},
    )
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    state = testing.State(leader=True, relations=[relation])
    with ctx(ctx.on.update_status(), state) as mgr:
        lib = mgr.charm.backups
        seen = lib.log_shipping_request(lib.relations[0])
        mgr.run()
    return seen


def _shipping(chain_id: str) -> str:
    config = {"bucket": "backups", "credentials-secret-id": SECRET_ID, "tls-ca-chain-id": chain_id}
    return json.dumps({"enabled": True, "storage-interface": "s3", "storage-config": config})


def test_a_log_shipping_request_may_name_its_chain_too():
    seen = _shipping_request_seen(
        {"log-shipping": _shipping(PEM_ID), "tls-ca-chains": json.dumps({PEM_ID: PEM})}
    )
    assert isinstance(seen, dict)
    assert StorageConfig.from_dict(seen["storage-config"]).tls_ca_chain == PEM


def test_a_log_shipping_request_naming_an_unknown_chain_is_ignored(
    caplog: pytest.LogCaptureFixture,
):
    assert _shipping_request_seen({"log-shipping": _shipping(PEM_ID)}) is None
    assert f"tls-ca-chain-id {PEM_ID} is not in the requirer's" in caplog.text
