"""Scenario tests of restore drills on the provider unit.

A drill is a `backup` job with `verify-backup-id`: the unit runs the engine's `verify`
in a detached worker, maps its verification to the status, refuses it during a restore,
and cancels it when a real restore arrives.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from mysql_provider import runner
from ops import testing
from scenario.state import _Event

from database_backup.interface import JobRequest
from database_backup.interface.locking import RESTORING_MESSAGE
from database_backup.interface.testing import requests_databag
from database_backup.jobs import LocalJob

from .conftest import FakeLauncher, FakeServer, job, relation, relation_in, state, statuses

VERIFIED = "20261121T070000Z-0b1c"
PASS = {
    "result": "pass", "checked-at": "2026-11-22T07:20:00Z", "duration-seconds": 41.5,
    "tables-checked": 12, "tables-compared": 11, "tables-skipped": 1,
}  # fmt: skip
REASON = "drill failed: shop.orders: 2500 rows recorded, 2499 found"
FAIL = {"result": "fail", "checked-at": "2026-11-22T07:20:00Z", "reason": REASON,
        "tables-checked": 12, "tables-compared": 11, "tables-skipped": 0}  # fmt: skip


def drill(job_id: str = "drill-1", **extra: Any) -> JobRequest:
    return job(job_id, verify_backup_id=VERIFIED, requested_at="2026-11-22T07:00:00Z", **extra)


def run_changed(ctx: testing.Context[Any], rel: testing.Relation, st: testing.State) -> Any:
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), st)


def rerun(
    ctx: testing.Context[Any], out: testing.State, rel: testing.Relation, *jobs: JobRequest
) -> Any:
    """Run relation-changed after the requirer replaced its jobs on `rel` by `jobs`."""
    current = relation_in(out, rel.id)
    changed = dataclasses.replace(current, remote_app_data=requests_databag(jobs))
    relations = {*out.relations} - {current} | {changed}
    return run_changed(ctx, changed, dataclasses.replace(out, relations=relations))


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch, launcher: FakeLauncher) -> list[str]:
    """Record the SIGTERMs the runner sends (the jobs store's stop path) by job id."""
    sent: list[str] = []

    def fake_cancel(local: LocalJob) -> bool:
        sent.append(local.record.job_id)
        return True

    monkeypatch.setattr(runner, "cancel", fake_cancel)
    return sent


def test_a_drill_starts_the_engines_verify_without_a_secret_on_its_command_line(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill(point_in_time="2026-11-22T06:00:00Z"))

    out = run_changed(ctx, rel, state(rel, config={"drill-min-free-gb": 2.0}))

    (local,) = launcher.started
    assert local.record.command == (
        "verify", "--backup-id", VERIFIED, "--job-id", "drill-1", "--unit", "mysql-server/0",
        "--point-in-time", "2026-11-22T06:00:00Z",
        "--scratch-root", "/var/lib/database-backup/drills", "--min-free-bytes", str(2 * 2**30),
    )  # fmt: skip
    assert local.record.kind == "restore drill"
    spec = json.loads(local.spec_path.read_text())
    assert spec["storage"]["secret-key"] == "unit-secret-key-value"
    assert spec["server"]["datadir"] == "/var/lib/mysql"
    assert spec["connection"]["user"] == "charm-backup"  # never root: it only asks what runs
    described = " ".join(local.record.command) + (local.dir / "job.json").read_text()
    assert "unit-secret-key-value" not in described
    assert "backup-pw-123" not in described
    status = statuses(out, rel)["drill-1"]
    assert status["status"] == "running"
    assert status["job-type"] == "backup"
    assert status["verify-backup-id"] == VERIFIED
    assert "backup-id" not in status  # a drill makes no backup: nothing to list as one
    assert "backup-kind" not in status


def test_a_passed_drill_is_a_success_with_its_verification(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    (local,) = launcher.started
    launcher.progress(local, "drill-checking", 0, 0)
    out = ctx.run(ctx.on.update_status(), out)
    assert statuses(out, rel)["drill-1"]["phase"] == "drill-checking"

    launcher.finish(local, result={"verification": PASS})
    out = ctx.run(_Event("job_finished"), out)

    status = statuses(out, rel)["drill-1"]
    assert status["status"] == "success"
    assert status["verification"] == PASS
    assert status["verify-backup-id"] == VERIFIED
    assert status["message"] == f"drill of backup {VERIFIED} passed"
    assert "artefact-path" not in status
    assert "backup-id" not in status


def test_a_failed_drill_is_an_error_whose_message_is_the_reason(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    (local,) = launcher.started

    launcher.finish(local, "error", message=REASON, result={"verification": FAIL})
    out = ctx.run(_Event("job_finished"), out)

    status = statuses(out, rel)["drill-1"]
    assert status["status"] == "error"
    assert status["message"] == REASON
    assert status["verification"] == FAIL


def test_a_refused_drill_is_an_error_without_a_verdict_on_the_backup(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    message = "drill refused: 3.1 GiB free under /var/lib/database-backup/drills, 8 GiB needed"

    launcher.finish(launcher.started[0], "error", message=message)
    out = ctx.run(_Event("job_finished"), out)

    status = statuses(out, rel)["drill-1"]
    assert (status["status"], status["message"]) == ("error", message)
    assert "verification" not in status


def test_an_engine_that_passes_without_a_verification_is_not_a_passed_drill(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))

    launcher.finish(launcher.started[0], result={"backup-id": "b-9"})
    out = ctx.run(_Event("job_finished"), out)

    status = statuses(out, rel)["drill-1"]
    assert status["status"] == "error"
    assert "without a verification" in status["message"]
    assert "verification" not in status


def test_an_engine_verification_that_says_fail_is_never_published_as_success(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))

    launcher.finish(launcher.started[0], result={"verification": FAIL})
    out = ctx.run(_Event("job_finished"), out)

    status = statuses(out, rel)["drill-1"]
    assert (status["status"], status["message"]) == ("error", REASON)


def test_a_restore_cancels_the_running_drill_and_starts_in_the_same_hook(
    ctx: testing.Context[Any], launcher: FakeLauncher, stops: list[str]
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    restore = job("restore-1", "restore", requested_at="2026-11-22T07:05:00Z")

    out = rerun(ctx, out, rel, drill(), restore)

    assert stops == ["drill-1"]
    assert [local.record.job_id for local in launcher.started] == ["drill-1", "restore-1"]
    published = statuses(out, rel)
    assert published["drill-1"]["status"] == "error"
    assert published["drill-1"]["message"] == "cancelled: restore job restore-1 was requested"
    assert published["restore-1"]["status"] == "running"
    assert isinstance(out.unit_status, testing.MaintenanceStatus)

    # the drill's worker ends later, after cleaning up: its status stays the cancellation
    launcher.finish(launcher.started[0], "error", message="cancelled: stopped by SIGTERM")
    out = ctx.run(_Event("job_finished"), out)
    cancelled = statuses(out, rel)["drill-1"]["message"]
    assert cancelled == "cancelled: restore job restore-1 was requested"


def test_a_restore_that_cannot_start_leaves_the_drill_running(
    ctx: testing.Context[Any], launcher: FakeLauncher, stops: list[str]
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    restore = job(
        "restore-1", "restore", backup_id=None, artefact_path="elsewhere",
        requested_at="2026-11-22T07:05:00Z",
    )  # fmt: skip

    out = rerun(ctx, out, rel, drill(), restore)

    assert stops == []
    assert statuses(out, rel)["restore-1"]["status"] == "error"
    assert statuses(out, rel)["drill-1"]["status"] == "running"


def test_a_drill_during_a_restore_is_refused_with_the_locked_message(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    restore = job("restore-1", "restore", requested_at="2026-11-22T06:00:00Z")
    rel = relation(restore)
    out = run_changed(ctx, rel, state(rel))

    out = rerun(ctx, out, rel, restore, drill())

    assert len(launcher.started) == 1
    refused = statuses(out, rel)["drill-1"]
    assert refused["status"] == "error"
    assert refused["message"] == RESTORING_MESSAGE.format(job="restore-1")


def test_a_second_drill_waits_for_none_it_is_refused(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))

    out = rerun(ctx, out, rel, drill(), drill("drill-2"))

    assert len(launcher.started) == 1
    assert "one drill at a time" in statuses(out, rel)["drill-2"]["message"]


def test_a_drill_runs_beside_a_backup(ctx: testing.Context[Any], launcher: FakeLauncher) -> None:
    backup = job("backup-1", requested_at="2026-11-22T06:00:00Z")
    rel = relation(backup)
    out = run_changed(ctx, rel, state(rel))

    out = rerun(ctx, out, rel, backup, drill())

    assert [local.record.job_id for local in launcher.started] == ["backup-1", "drill-1"]
    assert statuses(out, rel)["drill-1"]["status"] == "running"


@pytest.mark.parametrize(
    "inside", ["/var/lib/mysql", "/var/lib/mysql/drills", "/var/lib/mysql-binlog/x"]
)
def test_a_drill_directory_inside_the_live_servers_files_is_refused(
    ctx: testing.Context[Any], launcher: FakeLauncher, inside: str
) -> None:
    rel = relation(drill())

    out = run_changed(ctx, rel, state(rel, config={"drill-directory": inside}))

    assert launcher.started == []
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "drill-directory" in out.unit_status.message
    assert "outside" in out.unit_status.message
    assert statuses(out, rel)["drill-1"]["status"] == "error"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"drill-directory": "drills"}, "drill-directory: give an absolute path"),
        ({"drill-min-free-gb": -1.0}, "drill-min-free-gb"),
    ],
)
def test_bad_drill_settings_block_the_unit_saying_what_to_give(
    ctx: testing.Context[Any], config: dict[str, Any], words: str
) -> None:
    out = ctx.run(ctx.on.config_changed(), state(config=config))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert words in out.unit_status.message


def test_show_jobs_names_the_backup_a_drill_verifies_and_its_result(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    launcher.finish(launcher.started[0], result={"verification": PASS})
    out = ctx.run(_Event("job_finished"), out)

    ctx.run(ctx.on.action("show-jobs"), out)

    assert ctx.action_results is not None
    (row,) = json.loads(ctx.action_results["jobs"])
    assert row["verify-backup-id"] == VERIFIED
    assert row["verification"] == "pass"


def test_a_running_drill_does_not_hold_back_the_servers_configuration(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    rel = relation(drill())
    out = run_changed(ctx, rel, state(rel))
    server.calls.clear()

    ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"flavour": "mysql"}))

    # the scratch server shares nothing with the live one: a drill is no reason to wait
    assert ["systemctl", "restart", "mysql"] in server.calls
