"""The command line: spec file checks, secrets from the environment, argument validation."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
from pathlib import Path

import pytest

from database_backup import cli
from database_backup.mysql.errors import DataChangeError

KEY = base64.b64encode(bytes(range(32))).decode()


def _spec_data(**overrides: object) -> dict:
    data: dict = {
        "cluster-id": "model-uuid/mysql",
        "storage": {
            "bucket": "backups",
            "endpoint": "http://127.0.0.1:7480",
            "path": "prod",
            "access-key": "AKIAEXAMPLE",
            "secret-key": "spec-secret",
        },
        "connection": {"host": "127.0.0.1", "port": 3306, "user": "backup", "password": "pw"},
        "server": {"type": "systemd", "unit": "mysql", "datadir": "/var/lib/mysql"},
    }
    data.update(overrides)
    return data


def _write(path: Path, data: object, mode: int = 0o600) -> Path:
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_spec_readable_by_others_is_refused(tmp_path: Path, mode: int):
    path = _write(tmp_path / "spec.json", _spec_data(), mode)
    with pytest.raises(cli.SpecError, match=f"mode {mode:04o}.*chmod 600"):
        cli.load_spec(path, env={})


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_spec_is_accepted(tmp_path: Path, mode: int):
    path = _write(tmp_path / "spec.json", _spec_data(), mode)
    spec = cli.load_spec(path, env={})
    assert spec.cluster_id == "model-uuid/mysql"
    assert spec.storage.secret_key == "spec-secret"
    assert spec.encryption_key is None
    assert "spec-secret" not in repr(spec)
    assert "'pw'" not in repr(spec)


def test_environment_secrets_override_the_spec(tmp_path: Path):
    data = _spec_data()
    del data["storage"]["access-key"]
    del data["storage"]["secret-key"]
    path = _write(tmp_path / "spec.json", data)
    env = {
        cli.ENV_ACCESS_KEY: "env-access",
        cli.ENV_SECRET_KEY: "env-secret",
        cli.ENV_DB_PASSWORD: "env-pw",
        cli.ENV_ENCRYPTION_KEY: KEY,
    }
    spec = cli.load_spec(path, env=env)
    assert spec.storage.access_key == "env-access"
    assert spec.storage.secret_key == "env-secret"
    assert spec.connection.password == "env-pw"
    assert spec.encryption_key == bytes(range(32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cluster-id": ""}, "cluster-id"),
        ({"storage": {"bucket": "b", "access-key": "a"}}, "secret-key"),
        ({"storage": None}, "'storage' object"),
        ({"encryption-key": "not base64!"}, "not valid base64"),
        ({"encryption-key": base64.b64encode(b"short").decode()}, "32 bytes"),
        ({"connection": {"port": "3306"}}, "port"),
        (
            {"storage": {"bucket": "b", "access-key": "a", "secret-key": "s", "part-size-mb": 4}},
            "part-size-mb",
        ),
        (
            {
                "storage": {
                    "bucket": "b",
                    "access-key": "a",
                    "secret-key": "s",
                    "max-concurrency": 0,
                }
            },
            "max-concurrency",
        ),
        ({"server": {"type": "systemd", "datadir": "/d"}}, "unit"),
        ({"server": {"type": "command", "datadir": "/d", "start": "x"}}, "start"),
        ({"server": {"type": "docker", "datadir": "/d"}}, "systemd' or 'command"),
    ],
)
def test_invalid_specs(tmp_path: Path, change: dict, message: str):
    path = _write(tmp_path / "spec.json", _spec_data(**change))
    with pytest.raises(cli.SpecError, match=message):
        cli.load_spec(path, env={})


def test_not_json_and_missing(tmp_path: Path):
    path = tmp_path / "spec.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(cli.SpecError, match="not valid JSON"):
        cli.load_spec(path, env={})
    with pytest.raises(cli.SpecError, match="cannot read"):
        cli.load_spec(tmp_path / "missing.json", env={})


def test_no_option_takes_a_secret():
    parser = cli.build_parser()
    options: list[str] = []
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for sub in subparsers[0].choices.values():
        for action in sub._actions:
            options.extend(action.option_strings)
    assert options, "the parser has options"
    for option in options:
        assert not any(word in option for word in ("password", "secret", "access", "key"))


@pytest.mark.parametrize(
    "argv",
    [
        ["backup"],  # --spec missing
        ["backup", "--spec", "s.json", "--compression-level", "30"],
        ["backup", "--spec", "s.json", "--parallel", "0"],
        ["restore", "--spec", "s.json"],  # --backup-id missing
        ["drop", "--spec", "s.json"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_open_spec_refused_with_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    spec = _write(tmp_path / "spec.json", _spec_data(), 0o644)
    state = tmp_path / "state" / "job.json"
    code = cli.main(["list", "--spec", str(spec), "--state-file", str(state)])
    assert code == cli.EXIT_USAGE
    assert "chmod 600" in capsys.readouterr().err
    document = json.loads(state.read_text())
    assert document["status"] == "error"
    assert "chmod 600" in document["message"]
    assert document["pid"] == os.getpid()
    assert os.listdir(state.parent) == ["job.json"]  # no temporary files left


def test_state_file_updates_are_atomic_and_throttled(tmp_path: Path):
    path = tmp_path / "state.json"
    state = cli.StateFile(path, "backup")
    state.update(phase="backup", bytes_done=1)
    first = json.loads(path.read_text())
    assert (first["phase"], first["bytes-done"], first["status"]) == ("backup", 1, "running")
    state.update(force=False, bytes_done=2)  # within a second of the last write: not written
    assert json.loads(path.read_text())["bytes-done"] == 1
    state.update(status="success", result={"backup-id": "x"})
    final = json.loads(path.read_text())
    assert final["status"] == "success"
    assert final["result"] == {"backup-id": "x"}
    assert final["bytes-done"] == 2
    assert os.listdir(tmp_path) == ["state.json"]


def test_listing_table_aligns_columns_and_marks_missing_values():
    rows = [
        {"backup-id": "20261122T071500Z-3fa9", "kind": "full", "status": "complete",
         "finished-at": "2026-11-22T07:16:00Z", "stored-size": 1234, "compression": "zstd",
         "encrypted": True},
        {"backup-id": "20261122T081500Z-0001", "status": "incomplete", "stored-size": 99},
    ]  # fmt: skip

    lines = cli.format_table(rows).splitlines()

    assert lines[0].split() == [
        "backup-id", "kind", "status", "finished", "stored", "compression", "encrypted",
    ]  # fmt: skip
    assert lines[1].split() == [
        "20261122T071500Z-3fa9", "full", "complete", "2026-11-22T07:16:00Z", "1234", "zstd",
        "True",
    ]  # fmt: skip
    assert lines[2].split() == ["20261122T081500Z-0001", "-", "incomplete", "-", "99", "-", "-"]
    assert lines[1].index("complete") == lines[0].index("status")


def test_state_file_times_are_rfc3339_utc_with_z(tmp_path: Path):
    path = tmp_path / "state.json"
    state = cli.StateFile(path, "backup")
    state.update(phase="backup")
    document = json.loads(path.read_text())
    for name in ("started-at", "updated-at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document[name]), document[name]


def test_a_failed_restore_records_whether_it_changed_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def restore(*_args: object) -> None:
        raise DataChangeError("the restored server did not start", data_changed=True)

    monkeypatch.setitem(cli.COMMANDS, "restore", restore)
    spec = _write(tmp_path / "spec.json", _spec_data())
    state = tmp_path / "state.json"

    code = cli.main(["restore", "--spec", str(spec), "--state-file", str(state),
                     "--backup-id", "b1"])  # fmt: skip

    assert code == cli.EXIT_FAILED
    document = json.loads(state.read_text())
    assert document["status"] == "error"
    assert document["data-changed"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["finished-at"])
    assert "did not start" in capsys.readouterr().err
