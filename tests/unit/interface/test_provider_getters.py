"""Provider getters beyond jobs: cluster id, log-shipping status, secrets by storage config."""

from __future__ import annotations

import base64
import json

import pytest
from ops import testing

from database_backup.interface import (
    DatabaseBackupProvider,
    DataValidationError,
    SecretUnavailableError,
    StorageConfig,
)

from .charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm

CREDENTIALS = testing.Secret({"access-key": "ak", "secret-key": "sk"})
KEY = testing.Secret({"key": base64.b64encode(b"k" * 32).decode()})
SHORT_KEY = testing.Secret({"key": base64.b64encode(b"short").decode()})


def run(relation: testing.Relation, body) -> testing.State:
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    state = testing.State(
        leader=True,
        relations=[relation, testing.PeerRelation("mysql-peers")],
        secrets=[CREDENTIALS, KEY, SHORT_KEY],
    )
    with ctx(ctx.on.update_status(), state) as mgr:
        charm = mgr.charm
        body(charm.backups, charm.model.get_relation("database-backup", relation.id))
        return mgr.run()


@pytest.mark.parametrize(
    ("app_data", "expected"),
    [({"cluster-id": "uuid-1/mysql"}, "uuid-1/mysql"), ({}, None), ({"cluster-id": ""}, None)],
)
def test_cluster_id(app_data: dict[str, str], expected: str | None):
    relation = testing.Relation("database-backup", remote_app_data={"jobs": "[]", **app_data})
    seen: list[str | None] = []
    run(relation, lambda lib, rel: seen.append(lib.cluster_id(rel)))
    assert seen == [expected]


def test_an_over_long_cluster_id_is_ignored():
    relation = testing.Relation(
        "database-backup", remote_app_data={"jobs": "[]", "cluster-id": "x" * 201}
    )
    seen: list[str | None] = []
    run(relation, lambda lib, rel: seen.append(lib.cluster_id(rel)))
    assert seen == [None]


def test_log_shipping_status_is_validated_then_published():
    relation = testing.Relation("database-backup")
    good = {"enabled": True, "status": "running", "last-shipped-file": "bin.000007"}

    def body(lib: DatabaseBackupProvider, rel) -> None:
        with pytest.raises(DataValidationError, match="status"):
            lib.publish_log_shipping(rel, {"enabled": True, "status": "sleeping"})
        lib.publish_log_shipping(rel, good)

    out = run(relation, body)
    assert json.loads(out.get_relation(relation.id).local_unit_data["log-shipping"]) == good


def test_secrets_resolve_from_a_storage_config():
    relation = testing.Relation("database-backup")
    found: list[object] = []

    def body(lib: DatabaseBackupProvider, rel) -> None:
        storage = StorageConfig(bucket="logs", credentials_secret_id=CREDENTIALS.id)
        credentials = lib.credentials_for_storage(storage)
        found.append((credentials.access_key, credentials.secret_key))
        found.append(repr(credentials))
        found.append(lib.encryption_key(KEY.id))
        found.append(lib.encryption_key(None))
        with pytest.raises(SecretUnavailableError, match="32 bytes"):
            lib.encryption_key(SHORT_KEY.id)
        with pytest.raises(SecretUnavailableError, match="set credentials-secret-id"):
            lib.credentials_for_storage(StorageConfig(bucket="logs"))

    run(relation, body)
    assert found == [("ak", "sk"), "Credentials()", b"k" * 32, None]
