"""The detached worker as a real process: session, environment, lock, hand-back.

The engine's command line runs for real with a spec it refuses at once (no storage), so
no network or database is needed: the worker must still record the error, delete the
spec, release the lock and run the hand-back command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from database_backup.jobs import JobRecord, JobStore, LocalJob, clean_env, start_worker
from database_backup.jobs.launch import cancel, worker_pid
from database_backup.jobs.worker import engine_argv

SECRET = "sk-do-not-leak-0123456789"


def hand_back_command(out: Path) -> tuple[str, ...]:
    """Stands in for juju-exec: writes its environment and working directory to `out`."""
    code = (
        "import json, os, sys; "
        f"open({str(out)!r}, 'w').write(json.dumps({{'env': dict(os.environ), "
        "'cwd': os.getcwd(), 'sid': os.getsid(0)}))"
    )
    return (sys.executable, "-c", code)


def start(tmp_path: Path, spec: dict[str, object], notify: tuple[str, ...] | None) -> LocalJob:
    record = JobRecord(
        key="1-backup-1", job_id="backup-1", scope="1", kind="full backup",
        command=("list", "--json"), notify=notify, notify_cwd=str(tmp_path),
        labels={"job-log": str(tmp_path / "jobs.log")},  # not the machine's
    )  # fmt: skip
    local = JobStore(tmp_path / "jobs").create(record, spec)
    start_worker(local)
    return local


def wait_until_finished(local: LocalJob, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (local.finished_record() is None or local.is_locked()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local.finished_record() is not None, local.log_path.read_text()


def test_worker_records_the_engine_error_and_hands_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUJU_CONTEXT_ID", "must-not-reach-the-worker")
    out = tmp_path / "hand-back.json"
    local = start(tmp_path, {"cluster-id": "m/app", "secret": SECRET}, hand_back_command(out))
    pid = worker_pid(local)
    wait_until_finished(local)
    deadline = time.monotonic() + 30
    while not out.exists() and time.monotonic() < deadline:  # the hand-back comes last
        time.sleep(0.05)

    outcome = local.outcome()
    assert outcome.status == "error"
    assert "the spec needs a 'storage' object" in (outcome.message or "")
    assert not local.spec_path.exists()
    assert not local.is_locked()
    handed = json.loads(out.read_text())
    assert handed["cwd"] == str(tmp_path)
    assert handed["sid"] == pid  # the worker leads its own session, apart from the hook's
    assert "JUJU_CONTEXT_ID" not in handed["env"]
    assert set(handed["env"]) <= {*clean_env(sys.path), "PWD", "LC_CTYPE"}
    assert SECRET not in local.log_path.read_text()


def test_without_a_hand_back_command_the_worker_still_finishes(tmp_path: Path) -> None:
    local = start(tmp_path, {}, None)
    wait_until_finished(local)
    assert local.outcome().status == "error"


def test_engine_argv_puts_no_secret_on_the_command_line(tmp_path: Path) -> None:
    record = JobRecord(key="k", job_id="j", scope="1", kind="restore",
                       command=("restore", "--backup-id", "b"))  # fmt: skip
    local = JobStore(tmp_path).create(record, {"storage": {"secret-key": SECRET}})
    argv = engine_argv(local)
    assert argv[1:5] == ["-m", "database_backup.cli", "restore", "--backup-id"]
    assert argv[-4:] == ["--spec", str(local.spec_path), "--state-file", str(local.state_path)]
    assert SECRET not in " ".join(argv)


def test_cancel_of_a_job_without_a_live_worker_is_refused(tmp_path: Path) -> None:
    record = JobRecord(key="k", job_id="j", scope="1", kind="restore", command=("recover",))
    local = JobStore(tmp_path).create(record, {})
    assert cancel(local) is False


def test_clean_env_keeps_only_what_the_worker_needs(tmp_path: Path) -> None:
    env = clean_env([str(tmp_path), "/does/not/exist", str(tmp_path)])
    assert set(env) == {"PATH", "LANG", "LC_ALL", "HOME", "PYTHONPATH"}
    assert env["PYTHONPATH"] == str(tmp_path)


def test_the_job_runner_does_not_import_ops() -> None:
    code = "import sys, database_backup.jobs.worker; print('ops' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
