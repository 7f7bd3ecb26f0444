"""Scenario tests of the operator's actions: show-jobs, shipping-status, cancel-job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mysql_provider import service
from mysql_provider.service import juju_exec_command
from ops import testing

from database_backup.jobs import JobRecord, JobStore

from .conftest import FakeLauncher, FakeServer, job, relation, state

ACTION_VALUE_LIMIT = 128 * 1024  # Juju refuses a larger action-set value


def test_show_jobs_lists_local_jobs_with_progress(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"))
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state(rel))
    launcher.progress(launcher.started[0], "streaming", 40, 100)

    ctx.run(ctx.on.action("show-jobs"), out)

    assert ctx.action_results is not None
    assert ctx.action_results["count"] == 1
    (row,) = json.loads(ctx.action_results["jobs"])
    assert (row["job-id"], row["status"], row["phase"]) == ("backup-1", "running", "streaming")
    assert row["progress"] == {"bytes-done": 40, "bytes-estimated": 100}


def test_shipping_status_reports_the_last_shipped_binlog(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    shipper = server.shipper()
    shipper.dir.mkdir(parents=True)
    state_doc = {
        "status": "success", "finished-at": "2026-11-22T07:20:00+00:00",
        "result": {"timeline": "2", "shipped": ["bin.000006", "bin.000007"]},
    }  # fmt: skip
    shipper.state_path.write_text(json.dumps(state_doc))

    ctx.run(ctx.on.action("shipping-status"), state())

    assert ctx.action_results == {
        "running": False, "timeline": "2", "status": "success",
        "finished-at": "2026-11-22T07:20:00+00:00", "last-shipped-file": "bin.000007",
        "last-shipped-at": "2026-11-22T07:20:00+00:00",
    }  # fmt: skip


def test_cancel_job_of_an_unknown_job_fails_with_a_hint(ctx: testing.Context[Any]) -> None:
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("cancel-job", params={"job-id": "nope"}), state())
    assert failure.value.message == "no job 'nope' runs on mysql-server/0 (see show-jobs)"


def test_juju_exec_hand_back_command_calls_juju_exec_by_absolute_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Path("/usr/bin/juju-exec") == service.JUJU_EXEC
    installed = tmp_path / "juju-exec"
    installed.touch()
    monkeypatch.setattr(service, "JUJU_EXEC", installed)
    monkeypatch.setattr("shutil.which", lambda name: None)  # not on the worker's PATH
    charm_dir = Path("/var/lib/juju/agents/unit-mysql-server-2/charm")

    command = juju_exec_command("mysql-server/2", charm_dir)

    dispatch = f"JUJU_DISPATCH_PATH=hooks/job-finished {charm_dir}/dispatch"
    assert command == [str(installed), "mysql-server/2", dispatch]
    monkeypatch.setattr(service, "JUJU_EXEC", tmp_path / "missing")
    assert juju_exec_command("mysql-server/2", Path("/charm")) is None


def many_finished_jobs(server: FakeServer, count: int) -> None:
    """`count` finished jobs in the unit's store, each with a long error message."""
    store = JobStore(server.state_dir / "jobs")
    for n in range(count):
        request = job(f"backup-{n:03d}").to_dict()
        record = JobRecord(key=f"1-backup-{n:03d}", job_id=f"backup-{n:03d}", scope="1",
                           kind="full backup", command=("backup",),
                           created_at=f"2026-11-22T07:{n // 60:02d}:{n % 60:02d}+00:00",
                           labels={"request": request, "backup-id": f"b-{n}"})  # fmt: skip
        store.create(record, {}).finish("error", f"S3 said no ({n}): " + "x" * 1900)


def test_show_jobs_stays_bounded_whatever_the_number_of_jobs(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    many_finished_jobs(server, 120)

    ctx.run(ctx.on.action("show-jobs"), state())

    results = ctx.action_results
    assert results is not None
    assert all(len(str(value).encode()) < ACTION_VALUE_LIMIT for value in results.values())
    assert results["count"] == 120
    rows = json.loads(results["jobs"])
    assert [row["job-id"] for row in rows] == [f"backup-{n:03d}" for n in range(100, 120)]
    assert results["note"] == "showing the newest 20 of 120 jobs; run with limit=N for more"


def test_show_jobs_with_a_large_limit_still_fits_an_action_value(
    ctx: testing.Context[Any], server: FakeServer
) -> None:
    many_finished_jobs(server, 120)

    ctx.run(ctx.on.action("show-jobs", params={"limit": 100}), state())

    results = ctx.action_results
    assert results is not None
    assert len(results["jobs"].encode()) < ACTION_VALUE_LIMIT
    rows = json.loads(results["jobs"])
    assert rows[-1]["job-id"] == "backup-119"  # the newest are the ones kept
    assert 20 < len(rows) < 100
    assert results["note"] == (
        f"showing the newest {len(rows)} of 120 jobs (the output is limited to 100 KiB)"
    )


def test_cancel_job_does_not_echo_a_huge_job_id(ctx: testing.Context[Any]) -> None:
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("cancel-job", params={"job-id": "x" * 200_000}), state())
    assert len(failure.value.message.encode()) < 8 * 1024
    assert failure.value.message.endswith("... runs on mysql-server/0 (see show-jobs)")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit=0: give a number of jobs from 1 to 100, like limit=20"),
        ({"limit": 101}, "limit=101: give a number of jobs from 1 to 100, like limit=20"),
    ],
)
def test_show_jobs_refuses_a_limit_out_of_range_and_says_what_to_give(
    ctx: testing.Context[Any], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("show-jobs", params=params), state())
    assert failure.value.message == message


def test_cancel_job_with_an_empty_job_id_says_what_to_give(ctx: testing.Context[Any]) -> None:
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("cancel-job", params={"job-id": " "}), state())
    assert failure.value.message == "give job-id=<id> of a running job (see show-jobs)"
