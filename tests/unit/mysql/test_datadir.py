"""DatadirSwap on a real filesystem: staging, swap in, roll back, partial failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from database_backup.mysql.physical.datadir import DatadirSwap, SwapError


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> content of every file under root (the journal left out)."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith("restore-journal.json"):
            result[str(path.relative_to(root))] = path.read_text()
    return result


def _fail_rename(monkeypatch: pytest.MonkeyPatch, *, call: int, error: OSError) -> None:
    """From now on the `call`-th `os.rename` raises `error`; the others rename."""
    real_rename = os.rename
    calls = {"n": 0}

    def flaky_rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", flaky_rename)


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "shop").mkdir(parents=True)
    (data / "ibdata1").write_text("old-ibdata")
    (data / "shop" / "orders.ibd").write_text("old-orders")
    data.chmod(0o750)
    return data


def _stage(swap: DatadirSwap) -> None:
    staging = swap.create_staging()
    (staging / "shop").mkdir()
    (staging / "ibdata1").write_text("new-ibdata")
    (staging / "shop" / "orders.ibd").write_text("new-orders")
    (staging / "xtrabackup_checkpoints").write_text("backup_type = full-prepared")


def test_staging_is_a_private_sibling(datadir: Path):
    swap = DatadirSwap(datadir, "b1")
    staging = swap.create_staging()
    assert staging.parent == datadir.parent
    assert staging.name == "data.restore-b1"
    assert (staging.stat().st_mode & 0o777) == 0o700
    with pytest.raises(SwapError, match="another restore"):
        DatadirSwap(datadir, "b1").create_staging()


def test_swap_in_then_discard(datadir: Path):
    inode = datadir.stat().st_ino
    swap = DatadirSwap(datadir, "b1")
    _stage(swap)
    swap.swap_in()
    assert _tree(datadir) == {
        "ibdata1": "new-ibdata",
        "shop/orders.ibd": "new-orders",
        "xtrabackup_checkpoints": "backup_type = full-prepared",
    }
    assert _tree(swap.previous) == {"ibdata1": "old-ibdata", "shop/orders.ibd": "old-orders"}
    assert datadir.stat().st_ino == inode
    assert (datadir.stat().st_mode & 0o777) == 0o750
    swap.discard_previous()
    assert sorted(os.listdir(datadir.parent)) == ["data"]


def test_roll_back_after_swap_removes_files_the_new_server_created(datadir: Path):
    swap = DatadirSwap(datadir, "b1")
    _stage(swap)
    swap.swap_in()
    (datadir / "ib_logfile0").write_text("created by the failed start")
    swap.roll_back()
    assert _tree(datadir) == {"ibdata1": "old-ibdata", "shop/orders.ibd": "old-orders"}
    assert sorted(os.listdir(datadir.parent)) == ["data"]


def test_roll_back_after_a_partial_move_out(datadir: Path, monkeypatch: pytest.MonkeyPatch):
    swap = DatadirSwap(datadir, "b1")
    _stage(swap)
    _fail_rename(monkeypatch, call=2, error=OSError(5, "Input/output error"))
    with pytest.raises(SwapError, match="Input/output error"):
        swap.swap_in()
    monkeypatch.undo()  # os.rename works again
    assert swap.state == "moving-out"
    swap.roll_back()
    assert _tree(datadir) == {"ibdata1": "old-ibdata", "shop/orders.ibd": "old-orders"}
    assert sorted(os.listdir(datadir.parent)) == ["data"]


def test_roll_back_after_a_partial_move_in(datadir: Path, monkeypatch: pytest.MonkeyPatch):
    swap = DatadirSwap(datadir, "b1")
    _stage(swap)
    # 2 entries moved out, 1 moved in, then failure
    _fail_rename(monkeypatch, call=4, error=OSError(28, "No space left on device"))
    with pytest.raises(SwapError, match="No space left"):
        swap.swap_in()
    monkeypatch.undo()  # os.rename works again
    swap.roll_back()
    assert _tree(datadir) == {"ibdata1": "old-ibdata", "shop/orders.ibd": "old-orders"}
    assert sorted(os.listdir(datadir.parent)) == ["data"]


def test_nested_layout_for_a_mount_point(datadir: Path, monkeypatch: pytest.MonkeyPatch):
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: str(p) == str(datadir) or real_ismount(p))
    (datadir / "lost+found").mkdir()
    swap = DatadirSwap(datadir, "b2")
    assert swap.nested
    assert swap.staging.parent == datadir
    _stage(swap)
    swap.swap_in()
    assert _tree(datadir) == {
        "ibdata1": "new-ibdata",
        "shop/orders.ibd": "new-orders",
        "xtrabackup_checkpoints": "backup_type = full-prepared",
        f"{swap.previous.name}/ibdata1": "old-ibdata",
        f"{swap.previous.name}/shop/orders.ibd": "old-orders",
    }
    assert (datadir / "lost+found").is_dir()
    swap.roll_back()
    assert _tree(datadir) == {"ibdata1": "old-ibdata", "shop/orders.ibd": "old-orders"}
    assert sorted(os.listdir(datadir)) == ["ibdata1", "lost+found", "shop"]


def test_match_owner_uses_the_datadirs_owner(datadir: Path):
    if os.geteuid() != 0:
        pytest.skip("changing file owners needs root")
    os.chown(datadir, 4242, 4343)
    swap = DatadirSwap(datadir, "b3")
    _stage(swap)
    swap.match_owner()
    for path in [swap.staging, *swap.staging.rglob("*")]:
        assert (path.stat().st_uid, path.stat().st_gid) == (4242, 4343)


def test_missing_datadir(tmp_path: Path):
    with pytest.raises(SwapError, match="does not exist"):
        DatadirSwap(tmp_path / "nope", "x")


# -- crash recovery: a child process dies at a chosen point of the swap ---------------------

_CHILD = """
import os, sys, time
from pathlib import Path
from database_backup.mysql.physical.datadir import DatadirSwap

datadir, crash_at = Path(sys.argv[1]), sys.argv[2]
swap = DatadirSwap(datadir, "crash", "pitr" if crash_at == "replaying" else "physical")
staging = swap.create_staging()
(staging / "shop").mkdir()
(staging / "ibdata1").write_text("new-ibdata")
(staging / "shop" / "orders.ibd").write_text("new-orders")
(staging / "xtrabackup_checkpoints").write_text("prepared")
if crash_at == "hold":
    print("ready", flush=True)
    time.sleep(60)
if crash_at.isdigit():
    real, count = os.rename, [0]
    def rename(src, dst):
        count[0] += 1
        if count[0] == int(crash_at):
            os._exit(9)
        real(src, dst)
    os.rename = rename
if crash_at != "staged":
    swap.swap_in()
if crash_at == "verified":
    swap._record("verified")
if crash_at == "replaying":
    swap.start_replay()
os._exit(9)
"""


def _crash_child(datadir: Path, crash_at: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(datadir), crash_at], capture_output=True, timeout=60
    )
    assert proc.returncode == 9, proc.stderr.decode()


OLD = {"ibdata1": "old-ibdata", "shop/orders.ibd": "old-orders"}
NEW = {
    "ibdata1": "new-ibdata",
    "shop/orders.ibd": "new-orders",
    "xtrabackup_checkpoints": "prepared",
}


@pytest.mark.parametrize(
    ("crash_at", "expected", "what"),
    [
        ("staged", OLD, "before touching"),
        ("1", OLD, "moving-out"),  # before the first entry moved out
        ("2", OLD, "moving-out"),  # one of two entries moved out
        ("3", OLD, "moving-in"),  # all moved out, nothing moved in
        ("5", OLD, "moving-in"),  # two of three staged entries moved in
        ("after-swap", OLD, "swapped"),  # restored data in place, never verified
        ("replaying", OLD, "replaying"),  # a PITR's replay on the restored data
        ("verified", NEW, "verified"),
    ],
)
def test_recover_after_the_restore_process_died(
    datadir: Path, crash_at: str, expected: dict[str, str], what: str
):
    _crash_child(datadir, crash_at)
    assert (datadir.parent / "data.restore-journal.json").exists()

    swap = DatadirSwap.interrupted(datadir)
    assert swap is not None
    message = swap.recover()

    assert what in message
    assert _tree(datadir) == expected
    assert sorted(os.listdir(datadir.parent)) == ["data"]
    assert DatadirSwap.interrupted(datadir) is None


@pytest.mark.parametrize(
    ("crash_at", "kind", "phase", "said"),
    [
        ("staged", "physical", "fetching", "the physical restore died before touching"),
        ("after-swap", "physical", "swapped", "the physical restore died while swapped"),
        ("replaying", "pitr", "replaying", "the pitr restore died while replaying"),
        ("verified", "physical", "done", "the physical restore had been verified"),
    ],
)
def test_the_journal_names_the_kind_and_phase_and_recover_reports_them(
    datadir: Path, crash_at: str, kind: str, phase: str, said: str
):
    _crash_child(datadir, crash_at)
    journal = json.loads((datadir.parent / "data.restore-journal.json").read_text())
    assert (journal["kind"], journal["phase"]) == (kind, phase)

    swap = DatadirSwap.interrupted(datadir)
    assert swap is not None
    assert said in swap.recover()


@pytest.mark.parametrize("had_marker", [True, False], ids=["marker", "no-marker"])
def test_a_pitr_killed_while_replaying_puts_the_kept_files_back(
    datadir: Path, tmp_path: Path, had_marker: bool
):
    marker = tmp_path / "work" / "binlog-timeline.json"
    marker.parent.mkdir()
    if had_marker:
        marker.write_text('{"old": "timeline"}')
    swap = DatadirSwap(datadir, "crash", "pitr")
    (swap.create_staging() / "ibdata1").write_text("new-ibdata")
    swap.swap_in()
    swap.start_replay(keep_files=(marker,))
    marker.write_text('{"new": "timeline"}')  # the recovery claimed its new timeline
    swap._release()  # the process died: its lock is gone, the journal stays

    interrupted = DatadirSwap.interrupted(datadir)
    assert interrupted is not None
    message = interrupted.recover()

    assert "the pitr restore died while replaying" in message
    assert _tree(datadir) == OLD
    if had_marker:
        assert marker.read_text() == '{"old": "timeline"}'
    else:
        assert not marker.exists()
    assert sorted(os.listdir(marker.parent)) == (["binlog-timeline.json"] if had_marker else [])


def test_a_running_restore_is_not_recovered_under_its_feet(datadir: Path):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(datadir), "hold"], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        with pytest.raises(SwapError, match=r"another restore .* is running"):
            DatadirSwap.interrupted(datadir)
        with pytest.raises(SwapError, match=r"another restore .* is running"):
            DatadirSwap(datadir, "second").create_staging()
    finally:
        child.kill()
        child.wait()
    swap = DatadirSwap.interrupted(datadir)
    assert swap is not None
    assert "before touching" in swap.recover()
    assert _tree(datadir) == OLD
    assert sorted(os.listdir(datadir.parent)) == ["data"]


def test_new_restore_refused_while_an_interrupted_one_waits(datadir: Path):
    _crash_child(datadir, "3")
    with pytest.raises(SwapError, match="recover it first"):
        DatadirSwap(datadir, "next").create_staging()
