"""One atomic JSON writer (and its reader) for every state, spec and journal file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from database_backup.files import read_json, write_json_atomic
from database_backup.mysql.binlog.timeline_owner import (
    MARKER_NAME,
    Marker,
    read_marker,
    write_marker,
)
from database_backup.mysql.physical.datadir import DatadirSwap


def test_writes_sorted_indented_json_with_a_newline(tmp_path: Path):
    path = tmp_path / "state.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == {"a": [1, 2], "b": 1}
    assert text.index('"a"') < text.index('"b"')


def test_mode_defaults_to_owner_only_and_can_be_set(tmp_path: Path):
    private = tmp_path / "private.json"
    shared = tmp_path / "shared.json"
    write_json_atomic(private, {})
    write_json_atomic(shared, {}, mode=0o644)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644


def test_replaces_an_existing_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "journal.json"
    write_json_atomic(path, {"state": "one"})
    write_json_atomic(path, {"state": "two"})
    assert read_json(path) == {"state": "two"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]


def test_a_value_json_cannot_encode_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    path = tmp_path / "state.json"
    write_json_atomic(path, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert read_json(path) == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_default_turns_other_values_into_text(tmp_path: Path):
    path = tmp_path / "state.json"
    write_json_atomic(path, {"where": tmp_path}, default=str)
    assert read_json(path) == {"where": str(tmp_path)}


def test_the_data_is_synced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b)))
    write_json_atomic(tmp_path / "state.json", {})
    assert order == ["fsync", "replace"]


def test_a_missing_directory_is_an_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        write_json_atomic(tmp_path / "absent" / "state.json", {})


def test_read_json_returns_none_for_missing_unreadable_or_non_object(tmp_path: Path):
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    assert read_json(tmp_path / "absent.json") is None
    assert read_json(tmp_path / "broken.json") is None
    assert read_json(tmp_path / "list.json") is None


# -- the writers that use it ------------------------------------------------------------


def test_the_timeline_marker_stays_private_over_a_stale_temporary(tmp_path: Path):
    """A crash can leave a temporary beside the marker; the next write must still be 0600."""
    stale = tmp_path / f"{MARKER_NAME}.tmp"
    stale.write_text("{}")
    stale.chmod(0o644)
    write_marker(tmp_path, Marker(location="loc", timeline="tl-1"))
    assert stat.S_IMODE((tmp_path / MARKER_NAME).stat().st_mode) == 0o600
    assert read_marker(tmp_path, "loc") == Marker(location="loc", timeline="tl-1")


def test_the_restore_journal_is_private_and_replaced_whole(tmp_path: Path):
    datadir = tmp_path / "mysql"
    datadir.mkdir()
    swap = DatadirSwap(datadir, "tag1")
    swap._record("staged")
    assert stat.S_IMODE(swap.journal.stat().st_mode) == 0o600
    assert read_json(swap.journal) == {
        "datadir": str(datadir),
        "failed": str(swap.failed),
        "kind": "physical",
        "phase": "fetching",
        "previous": str(swap.previous),
        "staging": str(swap.staging),
        "state": "staged",
        "tag": "tag1",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mysql", swap.journal.name]
