"""The engine CLI's restore lock: one restore, PITR or recovery at a time per server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from database_backup.cli import app
from database_backup.cli.restore_lock import RestoreBusyError, lock_path, needs_lock, restore_lock
from database_backup.contract import EngineSpec


def _spec(tmp_path: Path, work: str = "work") -> EngineSpec:
    return EngineSpec.from_json({
        "cluster-id": "model/db",
        "storage": {"bucket": "b", "endpoint": "http://127.0.0.1:1", "path": "p",
                    "access-key": "a", "secret-key": "s"},
        "server": {"type": "command", "datadir": str(tmp_path / "data"), "start": ["true"],
                   "stop": ["true"], "status": ["true"]},
        "workdir": str(tmp_path / work),
    })  # fmt: skip


def _args(command: str, **values: object) -> argparse.Namespace:
    return argparse.Namespace(command=command, **values)


def test_restore_pitr_and_recover_take_the_lock_plan_only_and_backup_do_not():
    assert needs_lock(_args("restore", backup_id="x"))
    assert needs_lock(_args("pitr", plan_only=False))
    assert needs_lock(_args("recover"))
    assert not needs_lock(_args("pitr", plan_only=True))
    assert not needs_lock(_args("backup"))


def test_a_second_holder_is_refused_with_who_holds_it(tmp_path: Path):
    spec = _spec(tmp_path)
    state = tmp_path / "jobs" / "job-7" / "state.json"
    with (
        restore_lock(spec, _args("restore", backup_id="B1", state_file=state)),
        pytest.raises(RestoreBusyError) as caught,
        restore_lock(spec, _args("recover", state_file=None)),
    ):
        pytest.fail("entered a held lock")
    message = str(caught.value)
    assert message.startswith("a restore (restore of backup B1; job job-7, pid ")
    assert "is already running on this server" in message
    with restore_lock(spec, _args("recover", state_file=None)):  # released on exit
        pass


def test_the_lock_lives_in_the_work_directory_and_names_its_holder(tmp_path: Path):
    spec = _spec(tmp_path)
    assert lock_path(spec) == tmp_path / "work" / "restore.lock"
    with (
        restore_lock(spec, _args("pitr", state_file=None)),
        pytest.raises(RestoreBusyError, match=r"a restore \(pitr; pid"),
        restore_lock(spec, _args("restore", backup_id="B2", state_file=None)),
    ):
        pytest.fail("entered a held lock")
    assert not list(tmp_path.glob("data.*"))  # nothing left beside the datadir


def test_main_refuses_with_exit_code_3_and_records_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = _spec(tmp_path)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({
        "cluster-id": "model/db",
        "storage": {"bucket": "b", "endpoint": "http://127.0.0.1:1", "path": "p",
                    "access-key": "a", "secret-key": "s"},
        "workdir": str(spec.work_dir),
    }))  # fmt: skip
    spec_file.chmod(0o600)
    state = tmp_path / "state.json"
    monkeypatch.setitem(app.COMMANDS, "recover", lambda *_: pytest.fail("ran while locked"))
    with restore_lock(spec, _args("restore", backup_id="B1", state_file=None)):
        code = app.main(["recover", "--spec", str(spec_file), "--state-file", str(state)])
    assert code == app.EXIT_BUSY == 3
    document = json.loads(state.read_text())
    assert document["status"] == "error"
    assert document["data-changed"] is False
    assert "a restore (restore of backup B1;" in document["message"]
