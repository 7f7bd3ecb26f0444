"""Job directories: files and modes, outcomes, the lock, pruning."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path

import pytest

from database_backup.jobs import JobRecord, JobStore, job_key
from database_backup.jobs.worker import conclude


def record(key: str = "7-backup-1", created_at: str = "2026-11-22T07:00:00Z") -> JobRecord:
    return JobRecord(
        key=key, job_id="backup-1", scope="7", kind="full backup",
        command=("backup", "--backup-id", "b-1"), created_at=created_at,
    )  # fmt: skip


def test_create_writes_a_private_spec_and_a_secret_free_record(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs")

    local = store.create(record(), {"storage": {"secret-key": "s3cr3t"}})

    assert stat.S_IMODE(local.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(local.spec_path.stat().st_mode) == 0o600
    assert json.loads(local.spec_path.read_text())["storage"]["secret-key"] == "s3cr3t"
    assert "s3cr3t" not in (local.dir / "job.json").read_text()
    found = store.get("7-backup-1")
    assert found is not None
    assert found.record == record()


def test_a_second_job_with_the_same_key_is_refused(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.create(record(), {})
    with pytest.raises(FileExistsError):
        store.create(record(), {})


def test_job_key_is_a_safe_directory_name() -> None:
    assert job_key("3", "../../etc/passwd") == "3-.._.._etc_passwd"
    assert "/" not in job_key("3", "a/b")


def test_a_job_not_started_yet_is_running_and_not_locked(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {})
    outcome = local.outcome()
    assert (outcome.status, outcome.finished) == ("running", False)
    assert not local.is_locked()
    assert local.is_dead()  # nobody holds the lock: had a worker started, it died


def test_a_held_lock_means_alive(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {})
    fd = os.open(local.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert local.is_locked()
        assert not local.is_dead()
    finally:
        os.close(fd)
    assert local.is_dead()


def test_progress_comes_from_the_engine_state(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {})
    local.state_path.write_text(
        json.dumps({"status": "running", "phase": "streaming", "bytes-done": 5,
                    "bytes-estimated": 10, "started-at": "2026-11-22T07:00:00+00:00"})
    )  # fmt: skip
    outcome = local.outcome()
    assert (outcome.phase, outcome.bytes_done, outcome.bytes_estimated) == ("streaming", 5, 10)
    assert outcome.started_at == "2026-11-22T07:00:00+00:00"


def test_finish_is_recorded_once_and_removes_the_spec(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {"secret": "x"})
    local.finish("error", "first")
    local.finish("success", None)
    assert local.outcome().status == "error"
    assert local.outcome().message == "first"
    assert not local.spec_path.exists()


def test_mark_dead_names_the_phase_and_the_log(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {})
    local.state_path.write_text(json.dumps({"status": "running", "phase": "download"}))
    local.mark_dead()
    outcome = local.outcome()
    assert outcome.status == "error"
    assert "during phase 'download'" in (outcome.message or "")
    assert str(local.log_path) in (outcome.message or "")


def test_result_is_read_only_on_success(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {})
    local.state_path.write_text(json.dumps({"status": "success", "result": {"backup-id": "b"}}))
    local.finish("success", None)
    assert local.outcome().result == {"backup-id": "b"}


def test_prune_keeps_running_jobs_and_the_newest_finished(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    for n in range(5):
        local = store.create(record(f"k{n}", created_at=f"2026-11-22T07:00:0{n}Z"), {})
        if n < 4:
            local.finish("success", None)

    removed = store.prune(keep=2)

    assert removed == ["k0", "k1"]
    assert [job.record.key for job in store.jobs()] == ["k2", "k3", "k4"]


@pytest.mark.parametrize(
    ("returncode", "state", "expected"),
    [
        (0, {"status": "success"}, ("success", None)),
        (1, {"status": "error", "message": "S3 rejected the credentials"},
         ("error", "S3 rejected the credentials")),
        (-9, {"status": "running", "phase": "streaming"},
         ("error", "the engine was stopped by SIGKILL during phase 'streaming'")),
        (0, {"status": "running"},
         ("error", "the engine exited without recording a result; see the job's log")),
        (2, {}, ("error", "the engine failed (bad arguments or spec): error: bad --kind")),
    ],
)  # fmt: skip
def test_conclude_turns_exit_code_and_state_into_an_outcome(
    tmp_path: Path, returncode: int, state: dict[str, object], expected: tuple[str, str | None]
) -> None:
    local = JobStore(tmp_path).create(record(), {})
    local.state_path.write_text(json.dumps(state))
    local.log_path.write_text("usage: database-backup ...\nerror: bad --kind\n")

    status = conclude(local, returncode)

    outcome = local.outcome()
    assert (status, outcome.status) == (expected[0], expected[0])
    if expected[0] == "error":
        assert outcome.message == expected[1]


def test_the_engine_is_a_module_name_and_old_records_default_to_the_cli(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Python module name"):
        JobRecord(key="k", job_id="j", scope="1", kind="copy", command=(), engine="x; rm -rf /")
    copy = JobRecord(key="k", job_id="j", scope="1", kind="copy", command=("copy",),
                     engine="backup_manager.copy_worker")  # fmt: skip
    assert JobRecord.from_dict(copy.to_dict()) == copy
    old = {key: value for key, value in record().to_dict().items() if key != "engine"}
    assert JobRecord.from_dict(old).engine == "database_backup.cli"


def test_outcome_says_whether_a_failed_restore_changed_the_data(tmp_path: Path) -> None:
    local = JobStore(tmp_path).create(record(), {})
    local.state_path.write_text(
        json.dumps({"status": "error", "phase": "start", "message": "did not start",
                    "data-changed": False})
    )  # fmt: skip
    local.finish("error", "did not start")
    outcome = local.outcome()
    assert (outcome.status, outcome.data_changed) == ("error", False)
