"""A requirer charm's real output databag fed to a provider charm, and back (Scenario)."""

from __future__ import annotations

import json

import pytest
from ops import testing

from database_backup.interface import (
    JobFailedEvent,
    JobRequestedEvent,
    JobStartedEvent,
    JobSucceededEvent,
)

from .charms import (
    PROVIDER_ACTIONS,
    PROVIDER_META,
    REQUIRER_ACTIONS,
    REQUIRER_META,
    ProviderCharm,
    RequirerCharm,
)


def requirer_ctx() -> testing.Context[RequirerCharm]:
    return testing.Context(RequirerCharm, meta=REQUIRER_META, actions=REQUIRER_ACTIONS)


def provider_ctx() -> testing.Context[ProviderCharm]:
    return testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)


@pytest.fixture
def secret() -> testing.Secret:
    # Owned by the manager application, granted to the provider: owner=None from its side.
    return testing.Secret({"access-key": "AKIA-test", "secret-key": "very-secret"})


class Wire:
    """Carries each side's output databags to the other side's next input."""

    def __init__(self, secret: testing.Secret) -> None:
        self.secret = secret
        self.requirer_app: dict[str, str] = {}
        self.provider_unit: dict[str, str] = {}
        self.requirer_state = testing.State(
            leader=True,
            relations=[testing.Relation("database-backup", remote_units_data={0: {}})],
        )
        self.provider_state = testing.State(
            leader=True,
            relations=[testing.Relation("database-backup", remote_app_name="manager")],
            secrets=[secret],
        )

    def run_requirer(self, ctx: testing.Context[RequirerCharm], event_name: str, **params: str):
        (relation,) = self.requirer_state.relations
        relation = testing.Relation(
            "database-backup",
            id=relation.id,
            local_app_data=dict(self.requirer_app),
            remote_units_data={0: dict(self.provider_unit)},
        )
        state = testing.State(
            leader=True, relations=[relation], stored_states=self.requirer_state.stored_states
        )
        if event_name == "relation_changed":
            out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
        else:
            out = ctx.run(ctx.on.action(event_name, params=params), state)
        self.requirer_state = out
        self.requirer_app = dict(out.get_relation(relation.id).local_app_data)
        return out

    def run_provider(self, ctx: testing.Context[ProviderCharm], event_name: str, **params: str):
        (relation,) = [r for r in self.provider_state.relations if r.endpoint == "database-backup"]
        relation = testing.Relation(
            "database-backup",
            id=relation.id,
            remote_app_name="manager",
            remote_app_data=dict(self.requirer_app),
            local_unit_data=dict(self.provider_unit),
        )
        peers = [r for r in self.provider_state.relations if r.endpoint == "mysql-peers"]
        peer = peers[0] if peers else testing.PeerRelation("mysql-peers")
        state = testing.State(leader=True, relations=[relation, peer], secrets=[self.secret])
        if event_name == "relation_changed":
            out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
        else:
            out = ctx.run(ctx.on.action(event_name, params=params), state)
        self.provider_state = out
        self.provider_unit = dict(out.get_relation(relation.id).local_unit_data)
        return out


def provider_statuses(wire: Wire) -> dict[str, dict]:
    return {s["job-id"]: s for s in json.loads(wire.provider_unit["jobs"])}


def test_backup_runs_and_succeeds_across_both_charms(secret: testing.Secret):
    wire = Wire(secret)
    rctx, pctx = requirer_ctx(), provider_ctx()

    wire.run_requirer(rctx, "backup", **{"secret-id": secret.id})
    job_id = rctx.action_results["job-id"]  # type: ignore[index]
    requested = json.loads(wire.requirer_app["jobs"])
    assert [j["job-id"] for j in requested] == [job_id]
    assert requested[0]["storage-config"] == {
        "bucket": "backups",
        "credentials-secret-id": secret.id,
    }

    wire.run_provider(pctx, "relation_changed")
    requested_events = [e for e in pctx.emitted_events if isinstance(e, JobRequestedEvent)]
    assert [e.job.job_id for e in requested_events] == [job_id]
    assert provider_statuses(wire)[job_id]["status"] == "running"
    assert provider_statuses(wire)[job_id]["unit"] == "mysql/0"

    wire.run_requirer(rctx, "relation_changed")
    started = [e for e in rctx.emitted_events if isinstance(e, JobStartedEvent)]
    assert [e.status.job_id for e in started] == [job_id]

    wire.run_provider(pctx, "finish", **{"job-id": job_id, "outcome": "success"})
    assert provider_statuses(wire)[job_id]["status"] == "success"

    rctx.emitted_events.clear()
    wire.run_requirer(rctx, "relation_changed")
    succeeded = [e for e in rctx.emitted_events if isinstance(e, JobSucceededEvent)]
    assert [e.status.job_id for e in succeeded] == [job_id]
    assert not [e for e in rctx.emitted_events if isinstance(e, JobStartedEvent)]

    # A second relation-changed with the same data emits nothing new.
    rctx.emitted_events.clear()
    wire.run_requirer(rctx, "relation_changed")
    assert not [e for e in rctx.emitted_events if isinstance(e, JobSucceededEvent)]


def test_invalid_job_ends_in_error_and_the_requirer_hears_of_it(secret: testing.Secret):
    wire = Wire(secret)
    rctx, pctx = requirer_ctx(), provider_ctx()
    wire.run_requirer(rctx, "backup", **{"secret-id": secret.id})
    good_id = rctx.action_results["job-id"]  # type: ignore[index]
    jobs = json.loads(wire.requirer_app["jobs"])
    bad = dict(jobs[0], **{"job-id": "bad-job", "job-type": "vacuum"})
    wire.requirer_app["jobs"] = json.dumps([*jobs, bad])

    wire.run_provider(pctx, "relation_changed")
    statuses = provider_statuses(wire)
    assert statuses["bad-job"]["status"] == "error"
    assert "'vacuum' is not one of: backup, restore" in statuses["bad-job"]["message"]
    assert statuses[good_id]["status"] == "running"

    # A requirer that wrote a bad job (not ours: ours validates on write) hears it failed.
    wire.run_requirer(rctx, "relation_changed")
    failed = [e for e in rctx.emitted_events if isinstance(e, JobFailedEvent)]
    assert [e.status.job_id for e in failed] == ["bad-job"]
    started = [e for e in rctx.emitted_events if isinstance(e, JobStartedEvent)]
    assert [e.status.job_id for e in started] == [good_id]


def test_unreadable_secret_gives_error_not_a_crash(secret: testing.Secret):
    wire = Wire(secret)
    rctx, pctx = requirer_ctx(), provider_ctx()
    wire.run_requirer(rctx, "backup", **{"secret-id": "secret:cvh7kruupa1s46bqvuig"})
    job_id = rctx.action_results["job-id"]  # type: ignore[index]

    wire.run_provider(pctx, "relation_changed")
    status = provider_statuses(wire)[job_id]
    assert status["status"] == "error"
    assert "does not exist or was not granted to mysql" in status["message"]
    assert not [e for e in pctx.emitted_events if isinstance(e, JobRequestedEvent)]

    wire.run_requirer(rctx, "relation_changed")
    failed = [e for e in rctx.emitted_events if isinstance(e, JobFailedEvent)]
    assert [e.status.job_id for e in failed] == [job_id]
    assert "not granted" in (failed[0].status.message or "")


def test_restore_during_restore_is_refused(secret: testing.Secret):
    wire = Wire(secret)
    rctx, pctx = requirer_ctx(), provider_ctx()
    wire.run_requirer(rctx, "restore", **{"secret-id": secret.id, "path": "a/backups/1/"})
    first = rctx.action_results["job-id"]  # type: ignore[index]
    wire.run_provider(pctx, "relation_changed")
    wire.run_requirer(rctx, "restore", **{"secret-id": secret.id, "path": "a/backups/2/"})
    second = rctx.action_results["job-id"]  # type: ignore[index]
    wire.run_requirer(rctx, "backup", **{"secret-id": secret.id})
    third = rctx.action_results["job-id"]  # type: ignore[index]

    wire.run_provider(pctx, "relation_changed")
    statuses = provider_statuses(wire)
    assert statuses[first]["status"] == "running"
    assert statuses[second]["status"] == "error"
    assert "only one restore at a time" in statuses[second]["message"]
    assert statuses[third]["status"] == "error"
    assert "the database is being restored" in statuses[third]["message"]
