"""The engine's process contract: what the charm writes is what the engine reads, and back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mysql_provider.specs import JobSpecError, engine_job

from database_backup.cli import load_spec
from database_backup.contract import (
    ConnectionSection,
    EngineResult,
    EngineSpec,
    EngineState,
    ServerSection,
    SpecError,
    StorageSection,
)
from database_backup.interface import JobRequest, JobType, StorageConfig

SOCKET = "/run/mysqld/mysqld.sock"


def _spec() -> EngineSpec:
    return EngineSpec(
        cluster_id="uuid/db",
        storage=StorageSection("b", "AK", "SK", endpoint="http://127.0.0.1:7480", path="p"),
        connection=ConnectionSection(user="backup", password="pw", socket=SOCKET),
        server=ServerSection("/srv/data", "command", start=("a",), stop=("b",), status=("c",)),
        encryption_key=bytes(range(32)),
        workdir=Path("/w"),
    )


def test_a_written_spec_reads_back_as_the_engine_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(_spec().to_json()))
    path.chmod(0o600)

    assert load_spec(path, env={}) == _spec()


def test_the_spec_repr_shows_no_secret() -> None:
    shown = repr(_spec()) + repr(_spec().storage) + repr(_spec().connection)
    assert not any(secret in shown for secret in ("SK", "'pw'", "AK"))


def test_state_round_trip_keeps_data_changed_and_the_result() -> None:
    state = EngineState(
        command="restore", status="error", phase="start", message="no", data_changed=True,
        result={"backup-id": "b1", "stored-size": 5, "flavour": "sqlite", "encrypted": "yes"},
    )  # fmt: skip

    again = EngineState.from_json(json.loads(json.dumps(state.to_json())))

    assert again == state
    assert again.typed_result() == EngineResult(backup_id="b1", stored_size=5)


def test_an_odd_state_document_reads_as_unknown_values() -> None:
    state = EngineState.from_json({"status": "exploded", "bytes-done": -1, "phase": 3})
    assert (state.status, state.bytes_done, state.phase, state.data_changed) == (
        "running", None, None, None
    )  # fmt: skip


def test_the_provider_refuses_a_server_section_the_engine_would_refuse() -> None:
    request = JobRequest("b", JobType.BACKUP, StorageConfig(bucket="b"))
    with pytest.raises(JobSpecError, match=r"'server\.type' must be 'systemd' or 'command'"):
        engine_job(
            request, cluster_id="uuid/db", new_backup_id="20261122T080000Z-aaaa",
            credentials=("AK", "SK"), encryption_key=None,
            backup_connection={"user": "u", "socket": SOCKET}, admin_connection={},
            server={"type": "docker", "datadir": "/d"}, workdir="/w",
        )  # fmt: skip


def test_a_bad_port_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="port"):
        ConnectionSection.from_json({"port": True})
