"""Property: whatever the requirer's databag holds, the provider hook never crashes.

Each bad job with a readable job id ends in `error` with a message saying what was wrong,
good jobs beside it still start, and what the provider writes validates.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from database_backup.interface import JobRequestedEvent, schemas
from database_backup.interface.requirer import REQUEST_ERROR_KEY

from .charms import PROVIDER_ACTIONS, PROVIDER_META, ProviderCharm

SECRET = testing.Secret({"access-key": "a", "secret-key": "s"})
MISSING_SECRET = "secret:d0000000000000000000"

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def job(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {
        "job-id": draw(st.sampled_from(["j1", "j2", "j3", "j4", "j5", "j6"])),
        "job-type": draw(st.sampled_from(["backup", "backup", "restore"])),
        "job-config": {"compression": draw(st.booleans())},
        "storage-interface": "s3",
        "storage-config": {
            "bucket": "backups",
            "credentials-secret-id": draw(st.sampled_from([SECRET.id, SECRET.id, MISSING_SECRET])),
        },
    }
    if item["job-type"] == "restore":
        item["artefact-path"] = "p/backups/1/"
    mutation = draw(
        st.sampled_from(
            [
                *("none", "none", "drop", "retype", "unknown-type", "config-key"),
                *("set", "kind", "pitr", "huge"),
            ]
        )
    )
    if mutation == "drop":
        item.pop(draw(st.sampled_from(sorted(item))))
    elif mutation == "retype":
        item[draw(st.sampled_from(sorted(item)))] = draw(json_values)
    elif mutation == "unknown-type":
        item["job-type"] = draw(st.text(max_size=10))
    elif mutation == "config-key":
        item["job-config"]["level"] = draw(json_values)
    elif mutation == "set":
        item[draw(st.text(max_size=12))] = draw(json_values)
    elif mutation == "kind":
        item["backup-kind"] = draw(st.sampled_from(["full", "incremental", "logical", "bogus"]))
    elif mutation == "huge":
        item[draw(st.sampled_from(sorted(item)))] = "x" * draw(st.integers(1990, 5000))
    elif mutation == "pitr":
        item["point-in-time"] = draw(st.sampled_from(["latest", "2026-11-22T07:00:00Z", "noon"]))
    return item


databags = st.one_of(
    st.lists(job(), max_size=6).map(json.dumps),
    st.lists(job() | json_values, max_size=4).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=40),
)


def run_provider(raw: str) -> tuple[dict[str, str], list[str]]:
    relation = testing.Relation(
        "database-backup", remote_app_name="manager", remote_app_data={"jobs": raw}
    )
    peer = testing.PeerRelation("mysql-peers")
    ctx = testing.Context(ProviderCharm, meta=PROVIDER_META, actions=PROVIDER_ACTIONS)
    state = testing.State(leader=True, relations=[relation, peer], secrets=[SECRET])
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    requested = [e.job.job_id for e in ctx.emitted_events if isinstance(e, JobRequestedEvent)]
    return dict(out.get_relation(relation.id).local_unit_data), requested


def classify(raw: str) -> tuple[bool, dict[str, str]]:
    """Independently of the library: is `raw` an array, and what should each job id get?"""
    if raw == "":  # an emptied value means "no jobs", as a missing key does
        return True, {}
    try:
        items = json.loads(raw)
    except ValueError:
        return False, {}
    if not isinstance(items, list):
        return False, {}

    def reportable(item: object) -> bool:
        # A status can only carry an id of 1 to 128 characters; others go to request-error.
        job_id = item.get("job-id") if isinstance(item, dict) else None
        return isinstance(job_id, str) and 0 < len(job_id) <= 128

    ids = Counter(i["job-id"] for i in items if reportable(i))
    expected: dict[str, str] = {}
    for item in items:
        if not reportable(item):
            continue
        job_id = item["job-id"]
        invalid = ids[job_id] > 1 or schemas.errors_of(item, schemas.REQUIRER, "job")
        missing_secret = (
            not invalid and item["storage-config"].get("credentials-secret-id") == MISSING_SECRET
        )
        expected[job_id] = "error" if invalid or missing_secret else "valid"
    return True, expected


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(databags)
def test_provider_survives_any_databag(raw: str):
    is_array, expected = classify(raw)

    unit_data, requested = run_provider(raw)

    if is_array and any(
        isinstance(i, dict) and isinstance(i.get("job-id"), str) and len(i["job-id"]) > 128
        for i in json.loads(raw or "[]")
    ):
        assert "job #" in unit_data[REQUEST_ERROR_KEY]
    if not is_array:
        assert REQUEST_ERROR_KEY in unit_data
        assert unit_data["jobs"] == "[]"
        assert requested == []
        return
    schemas.validate(unit_data, schemas.PROVIDER)
    statuses = {s["job-id"]: s for s in json.loads(unit_data["jobs"])}
    schemas.validate(list(statuses.values()), schemas.PROVIDER, "jobs")
    assert set(statuses) == set(expected)
    for job_id, verdict in expected.items():
        status = statuses[job_id]
        if verdict == "error":
            assert status["status"] == "error"
            assert status["message"]
            assert job_id not in requested
        else:
            # Valid jobs start, or are refused by the lock policy with a reason.
            assert status["status"] in ("running", "error")
            if status["status"] == "error":
                assert "restore" in status["message"]
            else:
                assert job_id in requested
    assert "very-secret" not in json.dumps(unit_data)
