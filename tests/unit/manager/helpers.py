"""Scenario builders for the backup-manager's tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ops import testing

from database_backup.interface import JobRequest, JobStatus
from database_backup.interface.testing import requirer_side_relation
from tests.charms import manager_charm_module

MODULE = manager_charm_module()
CHARM = MODULE.BackupManagerCharm
MODEL_UUID = "0b6c3f52-8a1e-4c55-9d0b-5f0a1e2d3c4b"
PEER = "manager-peers"


def context() -> testing.Context:
    """A Context for the real charm.

    Scenario autoloads metadata.yaml, config.yaml and actions.yaml from the repository root
    (the charm module's grandparent). No `charm_root`: Scenario would rewrite those files
    in place for each run, which corrupts them when two test processes run at once.
    """
    return testing.Context(CHARM)


def s3_relation(
    app: str = "s3-a",
    bucket: str = "bucket-a",
    *,
    endpoint: str = "http://s3.example:7480",
    access_key: str = "AKIA-A",
    secret_key: str = "SECRET-A",  # noqa: S107 - a test value
    path: str = "",
    **extra: str,
) -> tuple[testing.Relation, testing.Secret]:
    """An s3-integrator relation as object-storage-charmlib's provider publishes it."""
    secret = testing.Secret(
        tracked_content={"access-key": access_key, "secret-key": secret_key},
        label=None,
    )
    data = {"version": "1", "bucket": bucket, "endpoint": endpoint, "secret-extra": secret.id}
    if path:
        data["path"] = path
    data.update(extra)
    relation = testing.Relation("s3", interface="s3", remote_app_name=app, remote_app_data=data)
    return relation, secret


def db_relation(
    app: str = "mysql",
    *,
    statuses: Iterable[JobStatus] = (),
    jobs: Iterable[JobRequest] = (),
    units: int = 1,
) -> testing.Relation:
    """A database-backup relation to `app` (provider unit 0 reports `statuses`)."""
    unit_statuses: dict[int, Iterable[JobStatus]] = {0: list(statuses)}
    for n in range(1, units):
        unit_statuses[n] = []
    return requirer_side_relation(unit_statuses, remote_app_name=app, jobs=jobs)


def peer(data: Mapping[str, str] | None = None) -> testing.PeerRelation:
    """The manager's peer relation with `data` in its app databag."""
    return testing.PeerRelation(PEER, local_app_data=dict(data or {}))


def state(
    *relations: testing.RelationBase,
    secrets: Iterable[testing.Secret] = (),
    config: Mapping[str, Any] | None = None,
    leader: bool = True,
    with_peer: bool = True,
) -> testing.State:
    """A State with the peer relation (unless told otherwise) and a fixed model uuid."""
    all_relations = list(relations)
    if with_peer and not any(isinstance(r, testing.PeerRelation) for r in relations):
        all_relations.append(peer())
    return testing.State(
        leader=leader,
        relations=all_relations,
        secrets=list(secrets),
        config=dict(config or {}),
        model=testing.Model(uuid=MODEL_UUID),
    )


def cluster(app: str = "mysql") -> str:
    """The catalog prefix the manager uses for `app`."""
    return f"{MODEL_UUID}/{app}"


def jobs_of(out: testing.State, relation: testing.RelationBase) -> list[dict[str, Any]]:
    """The job requests the manager wrote on `relation`."""
    return json.loads(out.get_relation(relation.id).local_app_data.get("jobs", "[]"))


def history_of(out: testing.State) -> list[dict[str, Any]]:
    """The job history in the peer app databag."""
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    return json.loads(relation.local_app_data.get("history", "[]"))
