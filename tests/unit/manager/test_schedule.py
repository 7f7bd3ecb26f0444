"""Cron arithmetic, catch-up and the cron entry of the backup-manager."""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path

import pytest

from backup_manager import schedule as schedule_mod
from backup_manager.schedule import (
    Schedule,
    cron_entry,
    cron_file,
    due_kind,
    next_run,
    write_cron,
)

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


def test_cron_entry_dispatches_the_event_through_juju_exec_by_path_into_a_log(tmp_path: Path):
    schedule = Schedule("0 2 * * *", "incremental", "0 1 * * 0")
    log = Path("/var/log/backup-manager/backup-manager-0-schedule.log")
    text = cron_entry(schedule, "backup-manager/0", Path("/var/lib/juju/agents/unit-x/charm"), log)
    lines = [line for line in text.splitlines() if not line.startswith(("#", "SHELL"))]
    command = (
        "root (date -u +\\%Y-\\%m-\\%dT\\%H:\\%M:\\%SZ; /usr/bin/juju-exec backup-manager/0 "
        "'JUJU_DISPATCH_PATH=hooks/scheduled-backup /var/lib/juju/agents/unit-x/charm/dispatch')"
        " >> /var/log/backup-manager/backup-manager-0-schedule.log 2>&1"
    )
    assert lines == [f"0 2 * * * {command}", f"0 1 * * 0 {command}"]


def test_the_cron_command_runs_and_logs_what_juju_exec_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Run the entry's command as cron would (`%` unescaped, /bin/sh) with a stand-in juju-exec."""
    fake = tmp_path / "juju-exec"
    fake.write_text('#!/bin/sh\necho "juju-exec $1 $2"\necho "a warning" >&2\n')
    fake.chmod(0o755)
    monkeypatch.setattr(schedule_mod, "JUJU_EXEC", str(fake))
    log = tmp_path / "log" / "m-0-schedule.log"
    text = cron_entry(Schedule("0 2 * * *"), "m/0", tmp_path / "charm", log)
    line = next(line for line in text.splitlines() if "juju-exec" in line)
    command = line.split(" root ", 1)[1].replace("\\%", "%")
    log.parent.mkdir()
    subprocess.run(["/bin/sh", "-c", command], check=True)
    stamp, said, warned = log.read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert (
        said
        == f"juju-exec m/0 JUJU_DISPATCH_PATH=hooks/scheduled-backup {tmp_path}/charm/dispatch"
    )
    assert warned == "a warning"


@pytest.mark.parametrize(
    ("unit", "name"),
    [
        ("backup-manager/0", "backup-manager_backup-manager-0"),
        ("bm.eu/12", "backup-manager_bm_eu-12"),
    ],
)
def test_the_cron_file_is_named_per_unit_with_only_the_characters_cron_reads(
    unit: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(schedule_mod, "CRON_DIR", tmp_path)
    path = cron_file(unit)
    assert path == tmp_path / name
    assert re.fullmatch(r"[A-Za-z0-9_-]+", path.name)


def test_units_on_one_machine_keep_their_own_cron_files(tmp_path: Path):
    """A second unit (or a second application) on the machine neither overwrites nor deletes.

    (conftest puts CRON_DIR and LOG_DIR under tmp_path.)
    """
    charm_dir = tmp_path / "charm"
    assert write_cron(Schedule("0 2 * * *"), "backup-manager/0", charm_dir)
    assert write_cron(Schedule("0 3 * * *"), "backup-manager-eu/0", charm_dir)
    first = cron_file("backup-manager/0").read_text()
    second = cron_file("backup-manager-eu/0").read_text()
    assert "0 2 * * * root " in first
    assert "juju-exec backup-manager/0 " in first
    assert "0 3 * * * root " in second
    assert "juju-exec backup-manager-eu/0 " in second
    assert write_cron(Schedule(""), "backup-manager-eu/0", charm_dir)  # removal of one unit
    assert not cron_file("backup-manager-eu/0").exists()
    assert cron_file("backup-manager/0").read_text() == first
    assert (tmp_path / "log" / "backup-manager-0-schedule.log").is_file()
    assert (tmp_path / "log" / "backup-manager-eu-0-schedule.log").is_file()


def test_write_cron_installs_updates_and_removes(tmp_path: Path):
    path = cron_file("m/0")
    charm_dir = tmp_path / "charm"
    assert write_cron(Schedule("0 2 * * *"), "m/0", charm_dir)
    assert not write_cron(Schedule("0 2 * * *"), "m/0", charm_dir)
    assert path.stat().st_mode & 0o777 == 0o644
    assert write_cron(Schedule("0 3 * * *"), "m/0", charm_dir)
    assert "0 3 * * *" in path.read_text()
    assert write_cron(Schedule(""), "m/0", charm_dir)
    assert not path.exists()


def test_the_old_shared_cron_file_is_removed_only_when_it_is_this_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Before per-unit names, every unit wrote /etc/cron.d/backup-manager: upgrade cleans it."""
    monkeypatch.setattr(schedule_mod, "CRON_DIR", tmp_path)
    monkeypatch.setattr(schedule_mod, "LOG_DIR", tmp_path / "log")
    old = tmp_path / "backup-manager"
    theirs = "0 2 * * * root juju-exec other/0 'JUJU_DISPATCH_PATH=hooks/x /c/dispatch'\n"
    old.write_text(theirs)
    write_cron(Schedule("0 2 * * *"), "m/0", tmp_path / "charm")
    assert old.read_text() == theirs
    old.write_text("0 2 * * * root juju-exec m/0 'JUJU_DISPATCH_PATH=hooks/x /c/dispatch'\n")
    write_cron(Schedule("0 2 * * *"), "m/0", tmp_path / "charm")
    assert not old.exists()


def test_the_schedule_log_is_kept_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(schedule_mod, "CRON_DIR", tmp_path)
    monkeypatch.setattr(schedule_mod, "LOG_DIR", tmp_path / "log")
    monkeypatch.setattr(schedule_mod, "LOG_MAX_BYTES", 1000)
    write_cron(Schedule("0 2 * * *"), "m/0", tmp_path / "charm")
    log = tmp_path / "log" / "m-0-schedule.log"
    log.write_text("".join(f"line {n}\n" for n in range(500)))
    write_cron(Schedule("0 2 * * *"), "m/0", tmp_path / "charm")
    kept = log.read_text()
    assert len(kept) <= 1000
    assert kept.endswith("line 499\n")
    assert kept.startswith("line ")


@pytest.mark.parametrize(
    ("expression", "words"),
    [("0 2 * *", "five fields"), ("61 * * * *", "not a valid cron"), ("@daily x", "five fields")],
)
def test_invalid_cron_is_explained(expression: str, words: str):
    from backup_manager.config import check_cron

    with pytest.raises(ValueError, match=words):
        check_cron(expression)
