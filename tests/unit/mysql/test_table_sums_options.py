"""`backup --table-sums-budget/--table-sums-max-table-mb`: parsed, refused when bad, passed on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from database_backup import cli
from database_backup.catalog import BackupMetadata
from database_backup.cli import backup as backup_command
from database_backup.mysql.tablesums import Limits
from tests.unit.catalog.factories import backup


def _spec(tmp_path: Path) -> Path:
    data = {
        "cluster-id": "model-uuid/mysql",
        "storage": {"bucket": "backups", "endpoint": "http://127.0.0.1:7480",
                    "access-key": "AKIAEXAMPLE", "secret-key": "spec-secret"},
        "connection": {"host": "127.0.0.1", "port": 3306, "user": "backup", "password": "pw"},
        "server": {"type": "systemd", "unit": "mysql", "datadir": "/var/lib/mysql"},
        "workdir": str(tmp_path / "work"),
    }  # fmt: skip
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def no_catalog(_spec: object) -> None:
    """The catalog the fakes never use."""


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The keyword arguments each kind of backup was called with (no server, no storage)."""
    calls: dict[str, dict[str, Any]] = {}

    def fake(kind: str) -> Any:
        def take(*_args: object, **kwargs: Any) -> BackupMetadata:
            calls[kind] = kwargs
            parent = "20261122T080000Z-aaaa" if kind == "incremental" else None
            return backup(str(kwargs["backup_id"]), 0, kind=kind, parent=parent)

        return take

    for kind in ("full", "incremental", "logical"):
        monkeypatch.setattr(backup_command, f"backup_{kind}", fake(kind))
    monkeypatch.setattr(backup_command, "make_catalog", no_catalog)
    return calls


def _run(tmp_path: Path, *extra: str) -> int:
    spec = _spec(tmp_path)
    state = tmp_path / "state.json"
    return cli.main(["backup", "--spec", str(spec), "--state-file", str(state), *extra])


@pytest.mark.parametrize("kind", ["full", "incremental", "logical"])
def test_the_budget_and_the_table_cap_reach_every_kind_of_backup(
    tmp_path: Path, taken: dict[str, dict[str, Any]], kind: str
):
    code = _run(tmp_path, "--kind", kind, "--table-sums-budget", "0",
                "--table-sums-max-table-mb", "512")  # fmt: skip

    assert code == 0
    limits = taken[kind]["table_sums_limits"]
    assert limits == Limits(budget_seconds=0, max_table_bytes=512 * 2**20)


def test_without_the_options_the_defaults_of_the_measurement_apply(
    tmp_path: Path, taken: dict[str, dict[str, Any]]
):
    assert _run(tmp_path) == 0

    assert taken["full"]["table_sums_limits"] == Limits()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--table-sums-budget", "-1", "0 (do not measure) or more seconds"),
        ("--table-sums-budget", "soon", "0 (do not measure) or more seconds"),
        ("--table-sums-max-table-mb", "0", "at least 1"),
    ],
)
def test_a_bad_value_is_refused_saying_what_to_give(
    tmp_path: Path,
    taken: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    message: str,
):
    with pytest.raises(SystemExit) as exc:
        _run(tmp_path, option, value)

    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert taken == {}
