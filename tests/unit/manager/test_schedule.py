"""Cron arithmetic, catch-up and the cron entry of the backup-manager."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from backup_manager.schedule import Schedule, cron_entry, due_kind, next_run, write_cron

T = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.timezone.utc)


def at(hour: int, minute: int = 0, day: int = 22) -> datetime.datetime:
    return T.replace(day=day, hour=hour, minute=minute)


def test_next_run_is_the_earliest_of_both_schedules():
    schedule = Schedule("0 2 * * *", "incremental", "0 1 * * 0")  # 2026-11-22 is a Sunday
    assert next_run(schedule, at(0, 30)) == at(1)
    assert next_run(schedule, at(1, 30)) == at(2)
    assert next_run(Schedule(""), at(0)) is None


def test_the_slot_is_due_once():
    schedule = Schedule("0 2 * * *")
    seeded = at(0)
    assert due_kind(schedule, at(1, 59), seeded) is None
    assert due_kind(schedule, at(2, 0), seeded) == ("full", at(2))
    assert due_kind(schedule, at(2, 1), at(2)) is None  # already ran for that slot


def test_a_missed_run_is_caught_up_once_not_as_a_backlog():
    schedule = Schedule("0 * * * *")
    # Down from 03:00 to 07:30: five hourly slots missed, one catch-up for the newest.
    assert due_kind(schedule, at(7, 30), at(2)) == ("full", at(7))
    assert due_kind(schedule, at(7, 45), at(7)) is None


def test_full_wins_when_it_coincides_with_an_incremental():
    schedule = Schedule("0 1 * * *", "incremental", "0 1 * * 0")
    assert due_kind(schedule, at(1, 0), at(0)) == ("full", at(1))
    # Monday: only the incremental fires.
    assert due_kind(schedule, at(1, 0, day=23), at(1)) == ("incremental", at(1, day=23))


def test_never_seeded_means_nothing_due():
    assert due_kind(Schedule("* * * * *"), at(5), None) is None


def test_cron_entry_dispatches_the_event_through_juju_exec(tmp_path: Path):
    schedule = Schedule("0 2 * * *", "incremental", "0 1 * * 0")
    text = cron_entry(schedule, "backup-manager/0", Path("/var/lib/juju/agents/unit-x/charm"))
    lines = [line for line in text.splitlines() if not line.startswith(("#", "SHELL"))]
    assert lines == [
        "0 2 * * * root juju-exec backup-manager/0 'JUJU_DISPATCH_PATH=hooks/scheduled-backup "
        "/var/lib/juju/agents/unit-x/charm/dispatch' >/dev/null 2>&1",
        "0 1 * * 0 root juju-exec backup-manager/0 'JUJU_DISPATCH_PATH=hooks/scheduled-backup "
        "/var/lib/juju/agents/unit-x/charm/dispatch' >/dev/null 2>&1",
    ]


def test_write_cron_installs_updates_and_removes(tmp_path: Path):
    path = tmp_path / "backup-manager"
    charm_dir = tmp_path / "charm"
    assert write_cron(Schedule("0 2 * * *"), "m/0", charm_dir, path)
    assert not write_cron(Schedule("0 2 * * *"), "m/0", charm_dir, path)
    assert path.stat().st_mode & 0o777 == 0o644
    assert write_cron(Schedule("0 3 * * *"), "m/0", charm_dir, path)
    assert "0 3 * * *" in path.read_text()
    assert write_cron(Schedule(""), "m/0", charm_dir, path)
    assert not path.exists()


@pytest.mark.parametrize(
    ("expression", "words"),
    [("0 2 * *", "five fields"), ("61 * * * *", "not a valid cron"), ("@daily x", "five fields")],
)
def test_invalid_cron_is_explained(expression: str, words: str):
    from backup_manager.config import check_cron

    with pytest.raises(ValueError, match=words):
        check_cron(expression)
