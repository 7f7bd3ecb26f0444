"""Workers as transient systemd units (outside the Juju agent's cgroup), and the fallback.

There is no systemd on the test machine: the systemd-run and systemctl command lines are
checked exactly and their answers faked; the fallback (a detached process in its own
session) runs for real in `test_worker.py`.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from database_backup.jobs import (
    JobRecord,
    JobStore,
    LocalJob,
    dispatch_command,
    handback,
    start_worker,
    systemd,
)
from database_backup.jobs.launch import cancel

SECRET = "sk-never-on-a-command-line-0123"
SYSTEMCTL_RUN = "database_backup.jobs.systemd.subprocess.run"  # what systemctl queries call


class FakeRun:
    """Stands in for subprocess.run: records each argv, answers like systemd would."""

    def __init__(self, active: str = "active", main_pid: int = 5151, fail: str = "") -> None:
        self.calls: list[list[str]] = []
        self.active = active
        self.main_pid = main_pid
        self.fail = fail

    def __call__(self, argv: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == systemd.SYSTEMD_RUN and self.fail:
            return subprocess.CompletedProcess(argv, 1, "", f"{self.fail}\n")
        if argv[1:2] == ["is-active"]:
            code = 0 if self.active in ("active", "activating", "deactivating") else 3
            return subprocess.CompletedProcess(argv, code, f"{self.active}\n", "")
        if argv[1:2] == ["show"]:
            return subprocess.CompletedProcess(argv, 0, f"{self.main_pid}\n", "")
        return subprocess.CompletedProcess(argv, 0, "", "")


def new_job(tmp_path: Path, key: str = "7-backup-1:x") -> LocalJob:
    record = JobRecord(key=key, job_id="backup-1", scope="7", kind="full backup",
                       command=("backup", "--backup-id", "b-1"),
                       labels={"job-log": str(tmp_path / "jobs.log")})  # fmt: skip
    return JobStore(tmp_path / "jobs").create(record, {"storage": {"secret-key": SECRET}})


def test_systemd_is_detected_like_sd_booted(tmp_path: Path) -> None:
    assert systemd.booted(tmp_path) is True  # the directory exists: systemd is PID 1
    assert systemd.booted(tmp_path / "system") is False
    assert Path("/run/systemd/system") == systemd.RUN_DIR
    assert systemd.booted() is os.path.isdir("/run/systemd/system")


def test_unit_name_is_sanitised_and_unique_per_unit_and_job_directory(tmp_path: Path) -> None:
    name = systemd.unit_name("7-backup/1:x y", owner="mysql-server/0", where=tmp_path)
    assert name.startswith("database-backup-mysql-server-0-7-backup-1-x-y-")
    assert name.endswith(".service")
    assert all(c.isalnum() or c in "-_." for c in name)
    other_app = systemd.unit_name("7-backup/1:x y", owner="mysql-b/0", where=tmp_path)
    other_dir = systemd.unit_name("7-backup/1:x y", owner="mysql-server/0", where=Path("/x"))
    assert len({name, other_app, other_dir}) == 3
    long = systemd.unit_name("k" * 400, owner="a/0", where=tmp_path)
    assert len(long) <= 255


def test_systemd_run_argv_is_exact_and_carries_no_secret(tmp_path: Path) -> None:
    local = new_job(tmp_path)
    run = FakeRun()

    pid = start_worker(
        local, python="/venv/bin/python3", python_path=[str(tmp_path)], systemd=True, run=run,
        owner="mysql-server/0",
    )  # fmt: skip

    unit = systemd.unit_name(local.record.key, owner="mysql-server/0", where=local.dir)
    assert run.calls[0] == [
        "/usr/bin/systemd-run",
        f"--unit={unit}",
        "--collect",
        "--quiet",
        "--description=database-backup job backup-1 (full backup)",
        "--property=Type=exec",
        "--property=KillMode=mixed",
        f"--property=TimeoutStopSec={systemd.STOP_TIMEOUT}",
        f"--property=WorkingDirectory={local.dir}",
        "--property=StandardInput=null",
        f"--property=StandardOutput=append:{local.log_path}",
        f"--property=StandardError=append:{local.log_path}",
        "--setenv=HOME=/root",
        "--setenv=LANG=C.UTF-8",
        "--setenv=LC_ALL=C.UTF-8",
        "--setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"--setenv=PYTHONPATH={tmp_path}",
        "--",
        "/venv/bin/python3",
        "-m",
        "database_backup.jobs.worker",
        str(local.dir),
    ]
    assert run.calls[1] == [
        "/usr/bin/systemctl", "show", "--property=MainPID", "--value", unit,
    ]  # fmt: skip
    assert pid == 5151
    assert local.systemd_unit == unit
    assert all(SECRET not in " ".join(call) for call in run.calls)
    assert local.log_path.stat().st_mode & 0o777 == 0o600  # created before systemd appends


def test_no_juju_variable_reaches_the_transient_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUJU_CONTEXT_ID", "ctx-1")
    monkeypatch.setenv("JUJU_UNIT_NAME", "mysql-server/3")
    run = FakeRun()
    local = new_job(tmp_path)
    start_worker(local, systemd=True, run=run)
    argv = run.calls[0]
    assert not [arg for arg in argv if "JUJU_" in arg]
    assert local.systemd_unit is not None
    assert "mysql-server-3" in local.systemd_unit  # the owner comes from the hook's unit


def test_a_failed_systemd_run_fails_the_job_with_its_reason(tmp_path: Path) -> None:
    local = new_job(tmp_path)
    run = FakeRun(fail="Failed to start transient service unit: Unit x.service already exists.")
    with pytest.raises(OSError, match="already exists"):
        start_worker(local, systemd=True, run=run)
    outcome = local.outcome()
    assert outcome.status == "error"
    assert "could not start the job's worker" in (outcome.message or "")
    assert not local.spec_path.exists()


@pytest.mark.parametrize(
    ("answer", "dead"), [("active", False), ("activating", False), ("inactive", True),
                         ("failed", True)],
)  # fmt: skip
def test_a_unit_started_worker_is_alive_until_systemd_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, dead: bool
) -> None:
    local = new_job(tmp_path)
    start_worker(local, systemd=True, run=FakeRun())
    monkeypatch.setattr(SYSTEMCTL_RUN, FakeRun(active=answer))
    assert not local.is_locked()  # the worker has not taken its lock yet
    assert local.is_dead() is dead


def test_without_an_answer_from_systemctl_a_new_unit_gets_a_grace_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = new_job(tmp_path)
    start_worker(local, systemd=True, run=FakeRun())

    def broken(*_: Any, **__: Any) -> None:
        raise FileNotFoundError("/usr/bin/systemctl")

    monkeypatch.setattr(SYSTEMCTL_RUN, broken)
    assert local.is_dead() is False  # just started: starting, not dead
    record = local.worker_record()
    assert record is not None
    record["started-at"] = "2026-01-01T00:00:00Z"
    (local.dir / "worker.json").write_text(json.dumps(record))
    assert local.is_dead() is True


def test_cancel_under_systemd_signals_the_main_process_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = new_job(tmp_path)
    start_worker(local, systemd=True, run=FakeRun())
    run = FakeRun()
    monkeypatch.setattr(SYSTEMCTL_RUN, run)
    assert cancel(local) is True
    assert run.calls[-1] == [
        "/usr/bin/systemctl", "kill", "--kill-who=main", "--signal=SIGTERM",
        local.systemd_unit,
    ]  # fmt: skip
    local.finish("error", "stopped")
    assert cancel(local) is False  # finished: nothing to cancel


def test_without_systemd_the_worker_is_a_detached_process(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    class FakePopen:
        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            seen.update(argv=argv, **kwargs)
            self.pid = 4242

    local = new_job(tmp_path)
    assert start_worker(local, python="/py", popen=FakePopen, systemd=False) == 4242
    assert seen["argv"][:3] == ["/py", "-m", "database_backup.jobs.worker"]
    assert seen["start_new_session"] is True
    assert not any(k.startswith("JUJU_") for k in seen["env"])
    assert local.systemd_unit is None
    assert (local.dir / "worker.pid").read_text().strip() == "4242"


def test_start_worker_chooses_systemd_only_where_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(systemd, "RUN_DIR", tmp_path / "run-systemd-system")
    started: list[str] = []

    class FakePopen:
        def __init__(self, argv: list[str], **_: Any) -> None:
            started.append("popen")
            self.pid = 1

    run = FakeRun()
    start_worker(new_job(tmp_path, "a"), popen=FakePopen, run=run)
    assert (started, run.calls) == (["popen"], [])
    (tmp_path / "run-systemd-system").mkdir()
    start_worker(new_job(tmp_path, "b"), popen=FakePopen, run=run)
    assert started == ["popen"]
    assert run.calls[0][0] == "/usr/bin/systemd-run"


def test_the_default_hand_back_calls_juju_exec_by_absolute_path(tmp_path: Path) -> None:
    fake = tmp_path / "juju-exec"
    assert dispatch_command("mysql-server/0", Path("/charm dir"), juju_exec=str(fake)) is None
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    command = dispatch_command("mysql-server/0", Path("/charm dir"), juju_exec=str(fake))
    assert command == (
        str(fake), "mysql-server/0", "JUJU_DISPATCH_PATH=hooks/job-finished '/charm dir'/dispatch",
    )  # fmt: skip
    assert inspect.signature(handback.dispatch_command).parameters["juju_exec"].default == (
        "/usr/bin/juju-exec"
    )


def test_a_worker_started_without_a_lock_fd_takes_the_lock_itself(tmp_path: Path) -> None:
    """How a transient unit starts it: the worker locks the job before anything else."""
    local = new_job(tmp_path)
    local.log_path.touch(mode=0o600)
    with open(local.log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "database_backup.jobs.worker", str(local.dir)],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": ":".join(sys.path)},
        )  # fmt: skip
    assert process.wait(timeout=60) == 1  # the engine refuses the spec: the job failed
    outcome = local.outcome()
    assert outcome.status == "error"
    assert (local.dir / "worker.pid").read_text().strip() == str(process.pid)
    assert not local.spec_path.exists()
    assert not local.is_locked()


def test_a_second_worker_for_a_running_job_refuses_to_start(tmp_path: Path) -> None:
    local = new_job(tmp_path)
    fd = os.open(local.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "database_backup.jobs.worker", str(local.dir)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": ":".join(sys.path)},
        )  # fmt: skip
    finally:
        os.close(fd)
    assert result.returncode == 2
    assert "already runs" in result.stderr
    assert local.finished_record() is None  # the running worker's job is left alone


def test_the_hand_back_output_goes_to_the_job_log(tmp_path: Path) -> None:
    record = JobRecord(
        key="k", job_id="j", scope="1", kind="full backup", command=("list", "--json"),
        notify=(sys.executable, "-c", "print('hand-back says hello')"),
        labels={"job-log": str(tmp_path / "jobs.log")},  # not the machine's
    )  # fmt: skip
    local = JobStore(tmp_path / "jobs").create(record, {})
    start_worker(local, systemd=False)
    deadline = time.monotonic() + 60
    while "hand-back says hello" not in local.log_path.read_text():
        assert time.monotonic() < deadline, local.log_path.read_text()
        time.sleep(0.05)
    assert "handing back:" in local.log_path.read_text()


def test_cancel_without_systemd_reaches_the_engine_through_the_worker(tmp_path: Path) -> None:
    record = JobRecord(key="k", job_id="j", scope="1", kind="restore", command=("restore",),
                       engine="tests.unit.jobs.slow_engine",
                       labels={"job-log": str(tmp_path / "jobs.log")})  # fmt: skip
    local = JobStore(tmp_path / "jobs").create(record, {})
    start_worker(local, systemd=False)
    deadline = time.monotonic() + 30
    while local.state().get("status") != "running":
        assert time.monotonic() < deadline, local.log_path.read_text()
        time.sleep(0.05)
    assert local.is_locked()

    assert cancel(local) is True

    while local.finished_record() is None or local.is_locked():
        assert time.monotonic() < deadline, local.log_path.read_text()
        time.sleep(0.05)
    outcome = local.outcome()
    assert (outcome.status, outcome.message) == ("error", "stopped by SIGTERM")
    assert "passing SIGTERM on to the engine" in local.log_path.read_text()
