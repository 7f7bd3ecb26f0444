"""Every action result stays bounded, whatever the history or catalog size.

ops hands each result value to `action-set` as one `key=value` argument, and Linux refuses
a single argument over MAX_ARG_STRLEN (128 KiB): a larger value crashes the action. The
manager pages listings (newest first, `limit` and `offset`) and keeps each value under a
96 KiB budget, saying when more exist. Run with `-s` to see the sizes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ops import testing

from backup_manager import results as result_values
from database_backup.catalog import BackupMetadata, Catalog

from .fakes import NOW, FakeS3
from .helpers import cluster, context, db_relation, peer, s3_relation, state

MAX_ARG_STRLEN = 128 * 1024
BUDGET = 96 * 1024


def _record(n: int, chatty: int = 30) -> dict[str, Any]:
    """A finished backup job as the history keeps it, with a long provider message."""
    finished = NOW - timedelta(hours=200 - n)
    return {
        "job-id": f"backup-{n:04d}-{'f' * 24}",
        "type": "backup",
        "kind": "incremental",
        "app": "mysql",
        "location": "s3-a",
        "status": "error" if n % 2 else "success",
        "backup-id": f"{finished:%Y%m%dT%H%M%SZ}-{n:04x}",
        "parent-id": f"{finished - timedelta(hours=1):%Y%m%dT%H%M%SZ}-{n:04x}",
        "phase": "streaming",
        "progress": "100% (1.0 GiB of 1.0 GiB)",
        "unit": "mysql/0",
        "requested-at": f"{finished - timedelta(minutes=9):%Y-%m-%dT%H:%M:%SZ}",
        "started-at": f"{finished - timedelta(minutes=8):%Y-%m-%dT%H:%M:%SZ}",
        "finished-at": f"{finished:%Y-%m-%dT%H:%M:%SZ}",
        "size": 1 << 30,
        "description": f"nightly backup {n} " + "d" * 200,
        "message": f"job {n}: " + "mariabackup said something long about the server. " * chatty,
    }


def _history_state(records: int = 200, chatty: int = 30) -> testing.State:
    history = [_record(n, chatty) for n in range(records)]
    rel, secret = s3_relation()
    return state(rel, db_relation(), peer({"history": json.dumps(history)}), secrets=[secret])


def _catalog_with(s3: FakeS3, count: int) -> None:
    bucket = s3.bucket("bucket-a")
    catalog = Catalog(bucket, cluster())
    catalog.ensure_cluster()
    for n in range(count):
        finished = NOW - timedelta(hours=count - n)
        backup_id = f"{finished:%Y%m%dT%H%M%SZ}-{n:04x}"
        bucket.put_bytes(catalog.artefact_key(backup_id, "data.xbstream.zst"), b"x")
        meta = BackupMetadata(
            backup_id=backup_id,
            kind="full",
            parent_id=None,
            started_at=finished - timedelta(minutes=5),
            finished_at=finished,
            artefacts=["data.xbstream.zst"],
            stored_size=1,
            sha256="ab" * 32,
            compression="zstd",
            encrypted=False,
            flavour="mariadb",
            server_version="10.11.6",
            description=f"backup number {n} taken before the change window " + "x" * 100,
        )
        catalog.write_metadata(meta)


def _run(name: str, st: testing.State, **params: Any) -> dict[str, Any]:
    ctx = context()
    ctx.run(ctx.on.action(name, params=params), st)
    assert ctx.action_results is not None
    return ctx.action_results


def _sizes(results: dict[str, Any]) -> dict[str, int]:
    """Bytes of each value as action-set receives it (`key=value`, one argument)."""
    return {key: len(f"{key}={value}".encode()) for key, value in results.items()}


def _check_bounded(label: str, results: dict[str, Any]) -> None:
    sizes = _sizes(results)
    shown = f"shows {results['count']} of {results['total']}"
    print(f"\n{label}: {shown}; bytes " + ", ".join(f"{k}={v}" for k, v in sorted(sizes.items())))
    assert max(sizes.values()) < BUDGET < MAX_ARG_STRLEN


@pytest.mark.parametrize("params", [{}, {"limit": 200}, {"limit": 200, "offset": 100}])
def test_list_jobs_with_a_full_history_stays_bounded(s3: FakeS3, params: dict[str, Any]):
    results = _run("list-jobs", _history_state(), **params)
    _check_bounded(f"list-jobs {params} with 200 records", results)
    rows = json.loads(results["json"])
    assert results["total"] == 200
    assert results["count"] == len(rows) > 0


def test_list_jobs_pages_from_the_newest(s3: FakeS3):
    st = _history_state(chatty=2)
    first = _run("list-jobs", st)
    rows = json.loads(first["json"])
    assert first["count"] == 50
    assert rows[-1]["job-id"].startswith("backup-0199-")  # newest last, as before
    assert rows[0]["job-id"].startswith("backup-0150-")
    assert "showing jobs 1-50 of 200, counted from the newest" in first["more"]
    assert "offset=50" in first["more"]
    second = _run("list-jobs", st, limit=20, offset=50)
    rows = json.loads(second["json"])
    assert [r["job-id"][:11] for r in (rows[0], rows[-1])] == ["backup-0130", "backup-0149"]
    assert "showing jobs 51-70 of 200" in second["more"]
    last = _run("list-jobs", st, limit=50, offset=180)
    assert last["count"] == 20
    assert "older" not in last["more"]


def test_list_jobs_cut_to_the_budget_says_so(s3: FakeS3):
    results = _run("list-jobs", _history_state(), limit=200)
    shown = results["count"]
    assert shown < 200
    assert f"offset={shown}" in results["more"]
    assert "96 KiB" in results["more"]


def test_a_short_history_has_no_more_note(s3: FakeS3):
    results = _run("list-jobs", _history_state(records=3))
    assert results["count"] == results["total"] == 3
    assert "more" not in results


@pytest.mark.parametrize("params", [{}, {"limit": 200}, {"offset": 450, "limit": 200}])
def test_list_backups_of_a_large_catalog_stays_bounded(s3: FakeS3, params: dict[str, Any]):
    _catalog_with(s3, 500)
    rel, secret = s3_relation()
    results = _run("list-backups", state(rel, db_relation(), secrets=[secret]), **params)
    _check_bounded(f"list-backups {params} with 500 entries", results)
    assert results["total"] == 500
    assert results["count"] == len(json.loads(results["json"])) > 0


def test_list_backups_pages_from_the_newest(s3: FakeS3):
    _catalog_with(s3, 500)
    rel, secret = s3_relation()
    st = state(rel, db_relation(), secrets=[secret])
    results = _run("list-backups", st)
    rows = json.loads(results["json"])
    assert results["count"] == 50
    assert rows[-1]["backup-id"].endswith("-01f3")  # the newest (n=499), last
    assert "showing backups 1-50 of 500, counted from the newest" in results["more"]
    assert "offset=50" in results["more"]
    older = _run("list-backups", st, offset=490, limit=50)
    assert older["count"] == 10
    assert json.loads(older["json"])[0]["backup-id"].endswith("-0000")


def test_an_offset_past_the_oldest_says_how_many_there_are(s3: FakeS3):
    results = _run("list-jobs", _history_state(records=3), offset=10)
    assert results["count"] == 0
    assert results["more"] == "offset=10 is past the oldest of the 3 jobs: give an offset below 3"


def test_the_last_guard_cuts_any_oversized_value_and_says_so():
    values = result_values.bounded({"json": "x" * 200_000, "job-id": "backup-1"})
    assert values["job-id"] == "backup-1"
    assert len(f"json={values['json']}".encode()) <= BUDGET
    assert values["json"].endswith("over the 96 KiB an action result value may be)")
    assert "200005 bytes" in values["json"]


def test_a_single_huge_record_is_clipped_not_dropped(s3: FakeS3):
    record = {**_record(0), "message": "m" * 50_000, "tables": [f"shop.t{n}" for n in range(900)]}
    rel, secret = s3_relation()
    st = state(rel, db_relation(), peer({"history": json.dumps([record])}), secrets=[secret])
    results = _run("list-jobs", st)
    _check_bounded("list-jobs with one huge record", results)
    (shown,) = json.loads(results["json"])
    assert shown["message"].endswith("...")
    assert shown["selection"] == "900 tables: shop.t0, shop.t1, shop.t2 and 897 more"
