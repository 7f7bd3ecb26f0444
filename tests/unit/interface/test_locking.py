"""Lock policy: every pair of kinds of work, as a table."""

from __future__ import annotations

import itertools

import pytest

from database_backup.interface import (
    BackupKind,
    JobRequest,
    JobType,
    StorageConfig,
    Work,
    WorkKind,
    may_start,
    work_of,
)

F, INC, L = WorkKind.FULL_BACKUP, WorkKind.INCREMENTAL_BACKUP, WorkKind.LOGICAL_BACKUP
R, S, D = WorkKind.RESTORE, WorkKind.LOG_SHIPPING, WorkKind.DRILL

# (running, new) -> allowed?  Every one of the 36 ordered pairs is listed.
# A restore may start while a drill runs: the unit running the drill cancels it first.
TABLE = {
    (F, F): True, (F, INC): True, (F, L): True, (F, R): False, (F, S): True, (F, D): True,
    (INC, F): True, (INC, INC): True, (INC, L): True, (INC, R): False, (INC, S): True,
    (INC, D): True,
    (L, F): True, (L, INC): True, (L, L): True, (L, R): False, (L, S): True, (L, D): True,
    (R, F): False, (R, INC): False, (R, L): False, (R, R): False, (R, S): False,
    (R, D): False,
    (S, F): True, (S, INC): True, (S, L): True, (S, R): True, (S, S): True, (S, D): True,
    (D, F): True, (D, INC): True, (D, L): True, (D, R): True, (D, S): True, (D, D): False,
}  # fmt: skip


def test_table_covers_every_pair():
    assert set(TABLE) == set(itertools.product(WorkKind, repeat=2))


@pytest.mark.parametrize(("running", "new"), sorted(TABLE, key=str))
def test_pair(running: WorkKind, new: WorkKind):
    decision = may_start([Work(running, "job-a")], Work(new, "job-b"))
    assert decision.allowed is TABLE[(running, new)]
    if decision.allowed:
        assert decision.reason == ""
    else:
        assert "job-a" in decision.reason


@pytest.mark.parametrize(
    ("running", "new", "words"),
    [
        (R, R, "only one restore at a time"),
        (R, F, "the database is being restored"),
        (R, S, "the database is being restored"),
        (F, R, "a full backup (job job-a) is writing"),
        (L, R, "a logical backup (job job-a) is writing"),
        (R, D, "the database is being restored (job job-a)"),
        (D, D, "another restore drill (job job-a) is running; one drill at a time"),
    ],
)
def test_refusals_say_why(running: WorkKind, new: WorkKind, words: str):
    assert words in may_start([Work(running, "job-a")], Work(new, "job-b")).reason


def test_nothing_running_allows_everything():
    assert all(may_start([], Work(kind, "x")).allowed for kind in WorkKind)


def test_a_job_does_not_conflict_with_itself():
    assert may_start([Work(R, "same")], Work(R, "same")).allowed


def test_first_conflict_among_many_is_reported():
    running = [Work(S, "ship"), Work(F, "full-1"), Work(F, "full-2")]
    decision = may_start(running, Work(R, "restore-1"))
    assert not decision.allowed
    assert "full-1" in decision.reason


def test_jobs_map_to_work_kinds():
    storage = StorageConfig(bucket="b", credentials_secret_id="secret:x")
    assert work_of(JobRequest("a", JobType.BACKUP, storage)).kind is F
    kinds = {BackupKind.INCREMENTAL: INC, BackupKind.LOGICAL: L, BackupKind.FULL: F}
    for kind, expected in kinds.items():
        job = JobRequest("a", JobType.BACKUP, storage, backup_kind=kind, parent_backup_id="p")
        assert work_of(job).kind is expected
    assert work_of(JobRequest("a", JobType.RESTORE, storage, backup_id="p")).kind is R
    drill = JobRequest("d", JobType.BACKUP, storage, verify_backup_id="20261122T070000Z-ab12")
    assert work_of(drill).kind is D
    assert not D.is_backup  # a drill writes no backup: a restore need not wait for it
