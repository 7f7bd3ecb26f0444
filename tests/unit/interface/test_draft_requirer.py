"""A requirer written to the published draft: inline `access-key`/`secret-key`, no secret id.

The draft's example (fixed for its two JSON slips) with distinctive key values, so a leak
is found wherever it lands: the job must reach the charm with its keys, and the keys must
appear in no databag the provider writes, no log record and no stored event snapshot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ops import testing

from database_backup.interface import JobRequestedEvent, SecretUnavailableError, StorageConfig

from .charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm

VECTORS = Path(__file__).parent / "vectors"
ACCESS = "AKIADRAFTINLINE0001"
SECRET = "draft-inline-secret-value-7f3a9c"


def draft_jobs() -> list[dict[str, Any]]:
    """The draft's requirer example with our distinctive key values."""
    items = json.loads((VECTORS / "draft_requirer_example.json").read_text())
    for item in items:
        item["storage-config"].update({"access-key": ACCESS, "secret-key": SECRET})
    return items


def draft_relation(items: list[dict[str, Any]] | None = None) -> testing.Relation:
    """The relation as the provider sees a draft requirer: raw JSON, keys inline."""
    return testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": json.dumps(draft_jobs() if items is None else items)},
    )


def assert_no_keys(text: str, where: str) -> None:
    assert ACCESS not in text, f"the inline access key leaked into {where}"
    assert SECRET not in text, f"the inline secret key leaked into {where}"


def written_databags(out: testing.State) -> str:
    """Everything the provider unit (and app) wrote in any relation."""
    parts: list[str] = []
    for relation in out.relations:
        parts.append(json.dumps(dict(relation.local_unit_data)))
        parts.append(json.dumps(dict(relation.local_app_data)))
    return "\n".join(parts)


class RecordingProvider(ProviderCharm):
    """Records the credentials each started job resolves to (a real charm passes them on)."""

    started: ClassVar[list[tuple[str, str, str]]] = []

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        try:
            credentials = self.backups.credentials_for(event.job)
        except SecretUnavailableError as exc:
            type(self).started.append((event.job.job_id, "error", str(exc)))
            return
        type(self).started.append(
            (event.job.job_id, credentials.access_key, credentials.secret_key)
        )
        super()._on_job_requested(event)


class DeferringProvider(ProviderCharm):
    """Defers every job once (a charm that waits for its server), then starts it."""

    started: ClassVar[list[tuple[str, str | None, str | None]]] = []
    defer_jobs = True

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        if type(self).defer_jobs:
            event.defer()
            return
        storage = event.job.storage
        type(self).started.append(
            (event.job.job_id, storage.inline_access_key, storage.inline_secret_key)
        )


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, str, str]]]:
    RecordingProvider.started = []
    yield RecordingProvider.started
    RecordingProvider.started = []


def test_draft_job_reaches_the_charm_with_its_inline_keys(
    recorded: list[tuple[str, str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    relation = draft_relation()
    ctx = testing.Context(RecordingProvider, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")]),
    )

    # One unit: both jobs are its own; the backup starts with the keys it was given.
    assert ("unique-job-id", ACCESS, SECRET) in recorded
    statuses = json.loads(out.get_relation(relation.id).local_unit_data["jobs"])
    by_id = {status["job-id"]: status for status in statuses}
    assert by_id["unique-job-id"]["status"] == "running"
    # The echo keeps the draft's request fields, the keys stripped.
    assert by_id["unique-job-id"]["storage-config"] == {"bucket": "my-bucket"}
    assert_no_keys(written_databags(out), "a databag the provider wrote")
    assert_no_keys(json.dumps([log.message for log in ctx.juju_log]), "juju-log")
    assert_no_keys("\n".join(r.getMessage() for r in caplog.records), "a log record")


def test_draft_job_keys_stay_out_of_a_deferred_snapshot_and_come_back_from_the_relation():
    DeferringProvider.started = []
    DeferringProvider.defer_jobs = True
    relation = draft_relation(draft_jobs()[:1])
    peer = testing.PeerRelation("mysql-peers")
    ctx = testing.Context(DeferringProvider, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    state = testing.State(leader=True, relations=[relation, peer])

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)

    (deferred,) = [d for d in out.deferred if d.name.endswith("job_requested")]
    assert_no_keys(json.dumps(deferred.snapshot_data), "the stored event snapshot")
    assert DeferringProvider.started == []

    DeferringProvider.defer_jobs = False
    ctx.run(ctx.on.update_status(), out)
    assert DeferringProvider.started == [("unique-job-id", ACCESS, SECRET)]


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"bucket": "logs"}, "set credentials-secret-id"),
        ({"bucket": "logs", "access-key": ACCESS}, "'access-key' without 'secret-key'"),
        ({"bucket": "logs", "secret-key": SECRET}, "'secret-key' without 'access-key'"),
    ],
)
def test_missing_or_half_inline_keys_say_what_to_give(storage: dict[str, str], expected: str):
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    with ctx(ctx.on.update_status(), testing.State(leader=True)) as mgr:
        lib = mgr.charm.backups
        with pytest.raises(SecretUnavailableError) as caught:
            lib.credentials_for_storage(StorageConfig.from_dict(storage))
        mgr.run()
    assert expected in str(caught.value)
    assert_no_keys(str(caught.value), "the error message")


def test_an_invalid_draft_job_is_reported_without_echoing_its_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    items = draft_jobs()[:1]
    items[0]["storage-config"]["bucket"] = "b"  # too short: the job is refused
    items.append({**draft_jobs()[0], "job-id": "typed", "storage-config": [ACCESS, SECRET]})
    items.append(
        {
            **draft_jobs()[0],
            "job-id": "bad-key-type",
            "storage-config": {"bucket": "my-bucket", "access-key": ACCESS, "secret-key": 7},
        }
    )
    relation = draft_relation(items)
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")]),
    )

    statuses = json.loads(out.get_relation(relation.id).local_unit_data["jobs"])
    assert {s["job-id"]: s["status"] for s in statuses} == {
        "unique-job-id": "error",
        "typed": "error",
        "bad-key-type": "error",
    }
    assert_no_keys(written_databags(out), "a databag the provider wrote")
    assert_no_keys(json.dumps([log.message for log in ctx.juju_log]), "juju-log")
    assert_no_keys("\n".join(r.getMessage() for r in caplog.records), "a log record")


def test_a_job_event_whose_job_left_the_relation_keeps_the_snapshot_copy_without_keys():
    DeferringProvider.started = []
    DeferringProvider.defer_jobs = True
    relation = draft_relation(draft_jobs()[:1])
    ctx = testing.Context(DeferringProvider, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    state = testing.State(leader=True, relations=[relation, testing.PeerRelation("mysql-peers")])
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)

    emptied = testing.Relation(
        "database-backup",
        id=relation.id,
        interface="database_backup",
        remote_app_name="draft-manager",
        remote_app_data={"jobs": "[]"},
    )
    later = testing.State(
        leader=True,
        relations=[emptied, testing.PeerRelation("mysql-peers")],
        deferred=out.deferred,
    )
    DeferringProvider.defer_jobs = False
    ctx.run(ctx.on.update_status(), later)
    assert DeferringProvider.started == [("unique-job-id", None, None)]


def test_an_invalid_log_shipping_request_is_logged_without_its_inline_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    request = {"enabled": True, "storage-config": [ACCESS, SECRET]}
    relation = testing.Relation(
        "database-backup", remote_app_data={"jobs": "[]", "log-shipping": json.dumps(request)}
    )
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    seen: list[object] = []
    with ctx(ctx.on.update_status(), testing.State(leader=True, relations=[relation])) as mgr:
        lib = mgr.charm.backups
        seen.append(lib.log_shipping_request(lib.relations[0]))
        mgr.run()

    assert seen == [None]
    assert "storage-config" in caplog.text  # the problem is reported...
    assert_no_keys(caplog.text, "a log record")  # ...without the keys
