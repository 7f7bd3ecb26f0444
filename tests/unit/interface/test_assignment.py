"""Exactly-one-unit execution: the pure choice, then the leader assigning through Scenario."""

from __future__ import annotations

import json

from ops import testing

from database_backup.interface import (
    JobRequest,
    JobRequestedEvent,
    JobType,
    StorageConfig,
    choose_unit,
)
from database_backup.interface.provider import ASSIGNMENTS_KEY, UNIT_STATES_KEY
from database_backup.interface.testing import provider_side_relation

from .charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm, ReplicatedProviderCharm

SECRET = testing.Secret({"access-key": "a", "secret-key": "s"})
STORAGE = StorageConfig(bucket="backups", credentials_secret_id=SECRET.id)
UNITS = ["mysql/0", "mysql/1", "mysql/2"]


def backup(job_id: str) -> JobRequest:
    return JobRequest(job_id, JobType.BACKUP, STORAGE)


def restore(job_id: str, requested_at: str | None = None) -> JobRequest:
    return JobRequest(
        job_id, JobType.RESTORE, STORAGE, artefact_path="p/", requested_at=requested_at
    )


def test_backups_prefer_the_replicas_the_charm_names_least_loaded_first():
    assert choose_unit(backup("a"), UNITS, leader="mysql/0", replicas={"mysql/2"}) == "mysql/2"
    both = {"mysql/1", "mysql/2"}
    assert choose_unit(backup("a"), UNITS, leader="mysql/0", replicas=both) == "mysql/1"
    load = {"mysql/1": 2}
    assert choose_unit(backup("a"), UNITS, leader="mysql/0", replicas=both, load=load) == (
        "mysql/2"
    )
    assert choose_unit(backup("a"), ["mysql/0"], leader="mysql/0") == "mysql/0"


def test_without_replicas_backups_go_to_the_primary_or_the_leader():
    """Units the charm does not call replicas may be independent servers: never back them up."""
    assert choose_unit(backup("a"), UNITS, leader="mysql/0") == "mysql/0"
    assert choose_unit(backup("a"), UNITS, leader="mysql/0", load={"mysql/0": 5}) == "mysql/0"
    assert choose_unit(backup("a"), UNITS, leader="mysql/1", primary="mysql/2") == "mysql/2"
    # A replica that is not (or no longer) a unit of the application is ignored.
    assert choose_unit(backup("a"), UNITS, leader="mysql/0", replicas={"mysql/7"}) == "mysql/0"


def test_restores_go_to_the_primary_or_the_leader():
    assert choose_unit(restore("r"), UNITS, leader="mysql/1") == "mysql/1"
    assert choose_unit(restore("r"), UNITS, leader="mysql/1", primary="mysql/2") == "mysql/2"


def test_unit_numbers_sort_numerically():
    units = ["mysql/10", "mysql/9", "mysql/0"]
    replicas = {"mysql/10", "mysql/9"}
    assert choose_unit(backup("a"), units, leader="mysql/0", replicas=replicas) == "mysql/9"


def test_several_units_without_replicas_the_leader_runs_every_backup():
    """Units of a charm that passes no `replicas=` are independent servers."""
    relation = provider_side_relation([backup("b1"), backup("b2")])
    peer = testing.PeerRelation("mysql-peers", peers_data={1: {}, 2: {}})
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, peer], secrets=[SECRET]),
    )

    assignments = json.loads(out.get_relation(peer.id).local_app_data[ASSIGNMENTS_KEY])
    assert assignments[str(relation.id)] == {"b1": {"unit": "mysql/0"}, "b2": {"unit": "mysql/0"}}
    started = [e.job.job_id for e in ctx.emitted_events if isinstance(e, JobRequestedEvent)]
    assert sorted(started) == ["b1", "b2"]


def test_leader_assigns_each_job_to_exactly_one_unit_and_only_that_unit_runs_it():
    relation = provider_side_relation([backup("b1"), backup("b2"), restore("r1")])
    peer = testing.PeerRelation("mysql-peers", peers_data={1: {}, 2: {}})
    ctx = testing.Context(ReplicatedProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, peer], secrets=[SECRET]),
    )
    assignments = json.loads(out.get_relation(peer.id).local_app_data[ASSIGNMENTS_KEY])
    mine = assignments[str(relation.id)]
    assert mine["b1"]["unit"] in ("mysql/1", "mysql/2")
    assert mine["b2"]["unit"] in ("mysql/1", "mysql/2")
    assert mine["b1"]["unit"] != mine["b2"]["unit"]  # spread by load
    # A restore next to two writing backups is refused, reported by the leader.
    assert mine["r1"]["unit"] == "mysql/0"
    assert "is writing" in mine["r1"]["refusal"]
    statuses = json.loads(out.get_relation(relation.id).local_unit_data["jobs"])
    assert [(s["job-id"], s["status"]) for s in statuses] == [("r1", "error")]
    assert not [e for e in ctx.emitted_events if isinstance(e, JobRequestedEvent)]

    # Each non-leader unit sees the assignments and runs only its own job.
    app_data = out.get_relation(peer.id).local_app_data
    ran: dict[str, list[str]] = {}
    for unit_id in (1, 2):
        ctx = testing.Context(
            ReplicatedProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS, unit_id=unit_id
        )
        peer_view = testing.PeerRelation(
            "mysql-peers", id=peer.id, local_app_data=dict(app_data), peers_data={0: {}}
        )
        state = testing.State(leader=False, relations=[relation, peer_view], secrets=[SECRET])
        unit_out = ctx.run(ctx.on.relation_changed(peer_view, remote_unit=0), state)
        events = [e for e in ctx.emitted_events if isinstance(e, JobRequestedEvent)]
        ran[f"mysql/{unit_id}"] = [e.job.job_id for e in events]
        published = json.loads(unit_out.get_relation(relation.id).local_unit_data["jobs"])
        assert [s["job-id"] for s in published] == ran[f"mysql/{unit_id}"]
        assert all(s["unit"] == f"mysql/{unit_id}" for s in published)
        mirrored = json.loads(unit_out.get_relation(peer.id).local_unit_data[UNIT_STATES_KEY])
        assert set(mirrored.values()) == {"running"}
    assert sorted(ran["mysql/1"] + ran["mysql/2"]) == ["b1", "b2"]
    assert len(ran["mysql/1"]) == len(ran["mysql/2"]) == 1


def test_restore_is_assigned_once_the_backups_finished_elsewhere():
    relation = provider_side_relation([backup("b1"), restore("r1")])
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    previous = {str(relation.id): {"b1": {"unit": "mysql/1"}}}
    peer = testing.PeerRelation(
        "mysql-peers",
        local_app_data={ASSIGNMENTS_KEY: json.dumps(previous)},
        peers_data={1: {UNIT_STATES_KEY: json.dumps({f"{relation.id}/b1": "success"})}},
    )
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, peer], secrets=[SECRET]),
    )
    assignments = json.loads(out.get_relation(peer.id).local_app_data[ASSIGNMENTS_KEY])
    assert assignments[str(relation.id)]["r1"] == {"unit": "mysql/0"}
    events = [e for e in ctx.emitted_events if isinstance(e, JobRequestedEvent)]
    assert [e.job.job_id for e in events] == ["r1"]


def test_job_of_a_departed_unit_is_failed_by_the_leader():
    relation = provider_side_relation([backup("b1")])
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    previous = {str(relation.id): {"b1": {"unit": "mysql/7"}}}
    peer = testing.PeerRelation(
        "mysql-peers", local_app_data={ASSIGNMENTS_KEY: json.dumps(previous)}
    )
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, peer], secrets=[SECRET]),
    )
    statuses = json.loads(out.get_relation(relation.id).local_unit_data["jobs"])
    assert statuses[0]["status"] == "error"
    assert "mysql/7 left before it reported the job" in statuses[0]["message"]


def test_one_restore_at_a_time_holds_across_relations_oldest_request_first():
    first = provider_side_relation(
        [restore("r1", "2026-11-22T07:00:05Z")], remote_app_name="manager-a"
    )
    second = provider_side_relation(
        [restore("r2", "2026-11-22T07:00:01Z")], remote_app_name="manager-b"
    )
    peer = testing.PeerRelation("mysql-peers")
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    out = ctx.run(
        ctx.on.relation_changed(second, remote_unit=0),
        testing.State(leader=True, relations=[first, second, peer], secrets=[SECRET]),
    )
    one = json.loads(out.get_relation(first.id).local_unit_data["jobs"])
    two = json.loads(out.get_relation(second.id).local_unit_data["jobs"])
    assert [s["status"] for s in two] == ["running"]
    assert [s["status"] for s in one] == ["error"]
    assert "another restore (job r2) is running" in one[0]["message"]
