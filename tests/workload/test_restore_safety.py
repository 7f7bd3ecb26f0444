"""Restore safety on the real MariaDB and RGW (issue 12 items 6 and 7).

One restore at a time per server; a logical restore that fails changes nothing.

The CLI runs as separate processes, as the charm's detached worker runs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from database_backup.catalog import Catalog
from database_backup.mysql import ProgressEvent
from database_backup.mysql.logical.dump import backup_logical
from database_backup.mysql.logical.restore import LogicalRestoreError, restore_logical
from database_backup.storage import S3Config, S3Storage
from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import (
    change,
    cli_server,
    connection,
    databases,
    fill,
    new_id,
    run_cli,
    start_cli,
    start_command,
    wait_state,
)

CLUSTER = "model-safety/mariadb"


def _spec(db: MariaDBServer, config: S3Config, path: Path, **server: Any) -> Path:
    sections = cli_server(db)
    sections["server"].update(server)
    spec = {
        "cluster-id": CLUSTER,
        "storage": {
            "bucket": config.bucket,
            "endpoint": config.endpoint,
            "region": config.region,
            "path": "safety",
        },
        "workdir": str(path.parent / "work"),
        **sections,
    }
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def _backup(spec: Path, config: S3Config, state: Path, *args: str) -> str:
    run = run_cli(["backup", *args], spec, config, state)
    assert run.returncode == 0, run.stderr
    return json.loads(state.read_text())["backup-id"]


def test_a_second_restore_of_any_kind_is_refused_while_one_runs(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _spec(server, s3_config, tmp_path / "spec.json")
    fill(server, "shop", rows=2_000)
    physical = _backup(spec, s3_config, tmp_path / "b1.json")
    logical = _backup(spec, s3_config, tmp_path / "b2.json", "--kind", "logical")
    change(server, "shop")
    # the first restore's server takes a while to start: time to try a second one
    slow = _spec(server, s3_config, tmp_path / "slow.json",
                 start=["sh", "-c", "sleep 4; " + shlex.join(start_command(server))])  # fmt: skip
    first_state = tmp_path / "job-first" / "state.json"
    first_state.parent.mkdir()
    first = start_cli(["restore", "--backup-id", physical], slow, s3_config, first_state)
    try:
        wait_state(first_state, lambda doc: doc.get("phase") == "start")
        attempts = {
            "logical": ["restore", "--backup-id", logical],
            "physical": ["restore", "--backup-id", physical],
            "pitr": ["pitr", "--target", "latest", "--no-ship-first"],
            "recover": ["recover"],
        }
        refused = {
            name: run_cli(argv, spec, s3_config, tmp_path / f"{name}.json")
            for name, argv in attempts.items()
        }
    finally:
        _, first_err = first.communicate(timeout=180)

    assert first.returncode == 0, first_err
    for name, run in refused.items():
        assert run.returncode == 3, (name, run.stderr)
        assert (
            f"a restore (restore of backup {physical}; job job-first, pid {first.pid}, started "
            in run.stderr
        ), (name, run.stderr)
        assert "is already running on this server" in run.stderr
        document = json.loads((tmp_path / f"{name}.json").read_text())
        assert document["status"] == "error"
        assert document["data-changed"] is False
    assert "after_backup" not in databases(server)
    # the lock goes with the restore: the next one runs
    after = run_cli(["restore", "--backup-id", logical], spec, s3_config, tmp_path / "l.json")
    assert after.returncode == 0, after.stderr


DATABASES = ("alpha", "beta", "gamma")


def _logical_backup_then_changed(
    server: MariaDBServer, catalog: Catalog, work: Path
) -> tuple[str, dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """An uncompressed logical backup of three databases, then all three changed.

    Returns:
        The backup id, the checksums at backup time and the checksums after the change.
    """
    for db in DATABASES:
        fill(server, db, rows=5_000)
    at_backup = {db: server.checksum_tables(db) for db in DATABASES}
    meta = backup_logical(connection(server), catalog, backup_id=new_id(),
                          databases=list(DATABASES), compression_level=None,
                          workdir=work)  # fmt: skip
    for db in DATABASES:
        change(server, db)
    return meta.backup_id, at_backup, {db: server.checksum_tables(db) for db in DATABASES}


def _checksums(server: MariaDBServer) -> dict[str, dict[str, str]]:
    return {db: server.checksum_tables(db) for db in DATABASES}


def _as_backed_up(
    server: MariaDBServer, at_backup: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """The checksums of the backed-up tables (a restore leaves tables made since alone)."""
    now = _checksums(server)
    return {db: {t: now[db].get(t, "absent") for t in tables} for db, tables in at_backup.items()}


def test_gateway_lost_once_applying_starts_does_not_stop_a_logical_restore(
    server: MariaDBServer, catalog: Catalog, ceph: CephS3, tmp_path: Path
):
    backup_id, at_backup, _ = _logical_backup_then_changed(server, catalog, tmp_path)
    phases: list[str] = []

    def progress(event: ProgressEvent) -> None:
        phases.append(event.phase)
        if event.phase == "apply" and ceph.rgw_running:
            ceph.kill_rgw()  # the network is gone: everything needed is already local

    result = restore_logical(connection(server), catalog, backup_id, progress=progress,
                             workdir=tmp_path / "r")  # fmt: skip

    assert not ceph.rgw_running
    assert _as_backed_up(server, at_backup) == at_backup
    assert result.databases == sorted(DATABASES)
    assert phases.index("download") < phases.index("check") < phases.index("apply")
    left = [path.name for path in (tmp_path / "r").iterdir() if path.suffix != ".log"]
    assert left == []  # the downloaded artefact is removed


def test_truncated_artefact_is_refused_and_nothing_changes(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    backup_id, _, changed = _logical_backup_then_changed(server, catalog, tmp_path)
    meta = catalog.read_metadata(backup_id)
    key = catalog.artefact_key(backup_id, meta.artefacts[0])
    storage.put_bytes(key, storage.get_bytes(key)[: meta.stored_size // 2])  # cut midway

    with pytest.raises(LogicalRestoreError, match="nothing was applied") as caught:
        restore_logical(connection(server), catalog, backup_id, workdir=tmp_path / "r")

    assert caught.value.data_changed is False
    assert _checksums(server) == changed


def test_statement_failing_midway_names_the_databases_changed(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    backup_id, at_backup, changed = _logical_backup_then_changed(server, catalog, tmp_path)
    meta = catalog.read_metadata(backup_id)
    key = catalog.artefact_key(backup_id, meta.artefacts[0])
    marker = b"-- Current Database: `beta`\n"
    dump = storage.get_bytes(key)
    assert marker in dump
    broken = dump.replace(marker, marker + b"THIS IS NOT SQL;\n")  # a corrupt statement
    storage.put_bytes(key, broken)  # recorded as it is: it passes the checks, fails applying
    catalog.write_metadata(dataclasses.replace(
        meta, sha256=hashlib.sha256(broken).hexdigest(), parts_sha256=None,
        stored_size=len(broken),
        raw_size=len(broken),
    ))  # fmt: skip

    with pytest.raises(LogicalRestoreError) as caught:
        restore_logical(connection(server), catalog, backup_id, workdir=tmp_path / "r")

    message = str(caught.value)
    assert caught.value.data_changed is True
    assert "the data was changed" in message
    assert "database(s) alpha, beta" in message
    assert "gamma" not in message.partition("database(s)")[2].partition(";")[0]
    assert "THIS IS NOT SQL" in message or "syntax" in message
    assert _as_backed_up(server, at_backup)["alpha"] == at_backup["alpha"]
    assert server.checksum_tables("gamma") == changed["gamma"]
