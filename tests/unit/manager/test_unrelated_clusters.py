"""The bucket is the truth: backups of clusters no application is related to (issue 12).

After `juju remove-application mysql-server` (or in a new model), the manager still lists,
holds and deletes every cluster's backups found in its locations.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ops import testing

from database_backup.catalog import Catalog

from .fakes import NOW, FakeS3, add_backup, add_binlog
from .helpers import cluster, context, db_relation, s3_relation, state

OTHER_MODEL = "7d1e9a40-3c2b-4f6e-8a5d-0c9b8e7f6a51"
GONE = cluster("mysql-server")  # this model's removed application
ELSEWHERE = f"{OTHER_MODEL}/db"  # another model's cluster


def unrelated() -> testing.State:
    """The manager with its storage only: no database application related."""
    rel, secret = s3_relation()
    return state(rel, secrets=[secret])


def run_action(name: str, st: testing.State, **params: Any) -> dict[str, Any]:
    ctx = context()
    ctx.run(ctx.on.action(name, params=params), st)
    assert ctx.action_results is not None
    return ctx.action_results


def fail_message(name: str, st: testing.State, **params: Any) -> str:
    ctx = context()
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action(name, params=params), st)
    return info.value.message


def seed(s3: FakeS3) -> None:
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, GONE, "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(bucket, ELSEWHERE, "20261121T010000Z-bbbb", hours_ago=24)


def test_list_backups_shows_every_cluster_in_the_bucket_without_any_relation(s3: FakeS3):
    seed(s3)
    results = run_action("list-backups", unrelated())
    rows = json.loads(results["json"])
    assert [(r["backup-id"], r["cluster"]) for r in rows] == [
        ("20261120T010000Z-aaaa", GONE),
        ("20261121T010000Z-bbbb", ELSEWHERE),
    ]
    assert results["count"] == 2
    assert ELSEWHERE in results["table"]


def test_list_backups_of_one_cluster_or_one_removed_application(s3: FakeS3):
    seed(s3)
    rows = json.loads(run_action("list-backups", unrelated(), cluster=ELSEWHERE)["json"])
    assert [r["backup-id"] for r in rows] == ["20261121T010000Z-bbbb"]
    rows = json.loads(run_action("list-backups", unrelated(), application="mysql-server")["json"])
    assert [r["backup-id"] for r in rows] == ["20261120T010000Z-aaaa"]
    assert rows[0]["app"] == "mysql-server"


def test_list_backups_shows_related_and_unrelated_clusters_once(s3: FakeS3):
    seed(s3)
    add_backup(s3.bucket("bucket-a"), cluster("mysql"), "20261122T010000Z-cccc", hours_ago=12)
    rel, secret = s3_relation()
    rows = json.loads(
        run_action("list-backups", state(rel, db_relation(), secrets=[secret]))["json"]
    )
    assert [r["cluster"] for r in rows] == [GONE, ELSEWHERE, cluster("mysql")]


def test_preserve_and_delete_a_removed_applications_backup(s3: FakeS3):
    seed(s3)
    bucket = s3.bucket("bucket-a")
    until = (NOW + timedelta(days=10)).replace(microsecond=0)
    results = run_action(
        "preserve-backup",
        unrelated(),
        **{"backup-id": "20261120T010000Z-aaaa", "until": until.isoformat()},
    )
    assert results["preserve-until"] == until.isoformat().replace("+00:00", "Z")
    assert Catalog(bucket, GONE).get_hold("20261120T010000Z-aaaa") == until
    message = fail_message("delete-backup", unrelated(), **{"backup-id": "20261120T010000Z-aaaa"})
    assert "held" in message
    run_action(
        "preserve-backup",
        unrelated(),
        **{"backup-id": "20261120T010000Z-aaaa", "cancel": True, "application": "mysql-server"},
    )
    results = run_action(
        "delete-backup", unrelated(), **{"backup-id": "20261120T010000Z-aaaa", "cluster": GONE}
    )
    assert results["deleted"] == "20261120T010000Z-aaaa"
    assert Catalog(bucket, GONE).list_backups() == []


def test_another_models_backup_is_held_by_cluster(s3: FakeS3):
    seed(s3)
    params = {"backup-id": "20261121T010000Z-bbbb", "until": "2999-01-01", "cluster": ELSEWHERE}
    assert run_action("preserve-backup", unrelated(), **params)["cluster"] == ELSEWHERE
    hold = Catalog(s3.bucket("bucket-a"), ELSEWHERE).get_hold("20261121T010000Z-bbbb")
    assert hold is not None


def test_a_backup_id_in_two_clusters_needs_the_cluster(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, GONE, "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(bucket, ELSEWHERE, "20261120T010000Z-aaaa", hours_ago=48)
    message = fail_message("delete-backup", unrelated(), **{"backup-id": "20261120T010000Z-aaaa"})
    assert "cluster=" in message
    assert GONE in message
    assert ELSEWHERE in message


def test_an_unknown_backup_without_relation_says_where_it_looked(s3: FakeS3):
    seed(s3)
    message = fail_message("delete-backup", unrelated(), **{"backup-id": "20261101T010000Z-zzzz"})
    assert "no complete backup '20261101T010000Z-zzzz'" in message
    assert "list-backups" in message


@pytest.mark.parametrize("bad", ["../x", "a//b", "/abs", "one"])
def test_a_bad_cluster_is_refused_with_the_expected_form(s3: FakeS3, bad: str):
    message = fail_message("list-backups", unrelated(), cluster=bad)
    assert "<model-uuid>/<application>" in message


# -- restore source-cluster=: clone another cluster into a related application ----------


def test_restore_clones_another_clusters_backup_into_the_related_application(s3: FakeS3):
    seed(s3)
    rel, secret = s3_relation()
    db = db_relation("db-new")
    ctx = context()
    params = {"backup-id": "20261121T010000Z-bbbb", "source-cluster": ELSEWHERE}
    out = ctx.run(ctx.on.action("restore", params=params), state(rel, db, secrets=[secret]))
    job = json.loads(out.get_relation(db.id).local_app_data["jobs"])[0]
    assert job["artefact-path"] == f"{ELSEWHERE}/backups/20261121T010000Z-bbbb"
    assert ctx.action_results is not None
    assert ctx.action_results["source-cluster"] == ELSEWHERE


def test_restore_latest_of_another_cluster_needs_its_binlogs(s3: FakeS3):
    seed(s3)
    rel, secret = s3_relation()
    st = state(rel, db_relation("db-new"), secrets=[secret])
    params = {"point-in-time": "latest", "source-cluster": ELSEWHERE}
    assert f"{ELSEWHERE} has no shipped binary logs" in fail_message("restore", st, **params)
    add_binlog(s3.bucket("bucket-a"), ELSEWHERE)
    ctx = context()
    out = ctx.run(ctx.on.action("restore", params=params), st)
    relation = next(r for r in out.relations if r.endpoint == "database-backup")
    job = json.loads(relation.local_app_data["jobs"])[0]
    assert job["point-in-time"] == "latest"
    assert job["artefact-path"] == f"{ELSEWHERE}/backups/20261121T010000Z-bbbb"


def test_restore_of_a_backup_the_source_cluster_lacks_fails(s3: FakeS3):
    seed(s3)
    rel, secret = s3_relation()
    st = state(rel, db_relation("db-new"), secrets=[secret])
    params = {"backup-id": "20261120T010000Z-aaaa", "source-cluster": ELSEWHERE}
    message = fail_message("restore", st, **params)
    assert f"no complete backup '20261120T010000Z-aaaa' of {ELSEWHERE}" in message
