"""Bad requests the provider must survive, found while writing the interface tests.

An over-long invalid value used to be copied whole into the error message, which then broke
the schema's 2,000-character limit on `message` and crashed the hook; messages are clipped.
"""

from __future__ import annotations

import json

import yaml
from ops import testing

from .spec import CHARMS

PROVIDER = CHARMS["mysql-server"]


def run_provider(jobs: list[object]) -> dict[str, str]:
    relation = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="backup-manager",
        remote_app_data={"jobs": json.dumps(jobs)},
    )
    meta = yaml.safe_load((PROVIDER.root / "metadata.yaml").read_text())
    ctx = testing.Context(PROVIDER.charm_type(), meta=meta)
    state = testing.State(
        leader=True, relations=[relation, testing.PeerRelation(PROVIDER.peer_endpoint)]
    )
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    return dict(out.get_relation(relation.id).local_unit_data)


def test_an_invalid_job_with_a_short_value_gets_an_error_status() -> None:
    data = run_provider([{"job-id": "backup-1", "job-type": "x" * 100}])
    (status,) = json.loads(data["jobs"])
    assert (status["job-id"], status["status"]) == ("backup-1", "error")


def test_an_invalid_job_with_an_overlong_value_gets_an_error_status() -> None:
    data = run_provider([{"job-id": "backup-1", "job-type": "x" * 3000}])
    (status,) = json.loads(data["jobs"])
    assert (status["job-id"], status["status"]) == ("backup-1", "error")
    assert len(status["message"]) < 2000
    assert "is not one of: backup, restore" in status["message"]
