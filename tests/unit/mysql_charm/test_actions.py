"""Scenario tests of the operator's actions: show-jobs, shipping-status, cancel-job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mysql_provider.service import juju_exec_command
from ops import testing

from .conftest import FakeLauncher, FakeServer, job, relation, state


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


def test_juju_exec_hand_back_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    charm_dir = Path("/var/lib/juju/agents/unit-mysql-server-2/charm")
    command = juju_exec_command("mysql-server/2", charm_dir)
    dispatch = f"JUJU_DISPATCH_PATH=hooks/job-finished {charm_dir}/dispatch"
    assert command == ["juju-exec", "mysql-server/2", dispatch]
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert juju_exec_command("mysql-server/2", Path("/charm")) is None
