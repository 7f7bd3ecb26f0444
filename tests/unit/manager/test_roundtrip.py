"""The manager's requests through the real provider library and back (wire compatibility)."""

from __future__ import annotations

import dataclasses
import json

from ops import testing

from tests.unit.interface.charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm

from .fakes import FakeS3, add_backup
from .helpers import cluster, context, history_of, s3_relation, state


def provider_sees(manager_app_data: dict[str, str]) -> testing.Relation:
    return testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="backup-manager",
        remote_app_data=manager_app_data,
    )


def test_backup_and_restore_requests_are_run_by_the_provider_library_and_reported_back(
    s3: FakeS3,
):
    add_backup(s3.bucket("bucket-a"), cluster("mysql"), "20261121T010000Z-bbbb", hours_ago=24)
    manager_side = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="mysql",
        remote_units_data={0: {}},
    )
    rel, secret = s3_relation()
    manager = context()
    out = manager.run(
        manager.on.action("create-backup"), state(rel, manager_side, secrets=[secret])
    )
    out = manager.run(
        manager.on.action("restore", params={"backup-id": "20261121T010000Z-bbbb"}), out
    )
    requests = dict(out.get_relation(manager_side.id).local_app_data)

    provider = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    provider_rel = provider_sees(requests)
    ours = out.get_secret(label="credentials-s3-a")
    granted = dataclasses.replace(ours, owner=None, label=None, remote_grants={})
    provider_state = testing.State(
        leader=True,
        relations=[provider_rel, testing.PeerRelation("mysql-peers")],
        secrets=[granted],
    )
    after = provider.run(provider.on.relation_changed(provider_rel, remote_unit=0), provider_state)
    reported = dict(after.get_relation(provider_rel.id).local_unit_data)
    statuses = {s["job-id"]: s for s in json.loads(reported["jobs"])}
    # the library's locking: the backup runs, the restore waits with an error saying why
    assert sorted(s["status"] for s in statuses.values()) == ["error", "running"]

    back = testing.Relation(
        "database-backup",
        id=manager_side.id,
        interface="database_backup",
        remote_app_name="mysql",
        local_app_data=requests,
        remote_units_data={0: reported},
    )
    relations = [r for r in out.relations if r.id != manager_side.id] + [back]
    final = manager.run(
        manager.on.relation_changed(back, remote_unit=0),
        testing.State(
            leader=True,
            relations=relations,
            secrets=list(out.secrets),
            config=dict(out.config),
            model=out.model,
        ),
    )
    records = {r["job-id"]: r for r in history_of(final)}
    assert {r["status"] for r in records.values()} == {"running", "error"}
    restore = next(r for r in records.values() if r["type"] == "restore")
    assert restore["status"] == "error"
    assert "a restore cannot start until it has finished" in restore["message"]
    assert isinstance(final.unit_status, testing.ActiveStatus)
    assert f"restore {restore['job-id']} failed (see list-jobs)" in final.unit_status.message
