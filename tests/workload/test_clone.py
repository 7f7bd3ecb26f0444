"""Clone: cluster A's backup and binlogs restored into server B, whose prefix differs (issue 12).

Two real MariaDB servers and RGW; the command line runs as a separate process. B reads
A's prefix (`--source-cluster`), replays A's binlogs for PITR, then writes its own
timeline and its next backup under its own prefix; A's prefix is never written.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from database_backup.storage import S3Config
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import cli_server, fill, run_cli, stop_command

SOURCE = "model-lost/mysql-server"
TARGET = "model-new/db"


def _spec(db: MariaDBServer, config: S3Config, key: bytes, workdir: Path, cluster: str) -> Path:
    spec: dict[str, Any] = {
        "cluster-id": cluster,
        "storage": {"bucket": config.bucket, "endpoint": config.endpoint, "path": "clone"},
        **cli_server(db),
        "encryption-key": base64.b64encode(key).decode(),
        "workdir": str(workdir),
    }
    path = workdir.parent / f"{workdir.name}.spec.json"
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def _stopped(db: MariaDBServer) -> None:
    if not db.is_running() and db.pid_file.exists():
        subprocess.run(stop_command(db), check=False, timeout=60)
    db.stop()


@pytest.fixture(scope="module")
def servers(
    make_mariadb: Callable[..., MariaDBServer],
) -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    a = make_mariadb("clone-a")
    b = make_mariadb("clone-b", server_id=2)
    yield a, b
    _stopped(a)
    _stopped(b)


def test_pitr_and_restore_of_cluster_a_into_server_b(
    servers: tuple[MariaDBServer, MariaDBServer], s3_config: S3Config, tmp_path: Path
):
    a, b = servers
    key = generate_key()
    spec_a = _spec(a, s3_config, key, tmp_path / "a", SOURCE)
    spec_b = _spec(b, s3_config, key, tmp_path / "b", TARGET)

    def run(spec: Path, *args: str) -> Any:
        proc = run_cli(list(args), spec, s3_config, tmp_path / f"{spec.name}.state")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    fill(a, "shop", rows=2_000)
    run(spec_a, "ship-binlogs", "--flush")
    full = run(spec_a, "backup")
    at_backup = a.checksum_tables("shop")
    a.execute("UPDATE shop.orders SET amount = amount + 5 WHERE id < 500;")
    a.execute("INSERT INTO shop.orders VALUES (900001, 'late', 1, 'after the backup');")
    run(spec_a, "ship-binlogs", "--flush")
    at_last_write = a.checksum_tables("shop")
    timelines_of_a = run(spec_a, "list-binlogs")
    fill(b, "other", rows=10)  # B's own data, replaced by the clone

    recovered = run(
        spec_b, "pitr", "--target", "latest", "--source-cluster", SOURCE, "--no-ship-first"
    )
    assert recovered["backup-id"] == full["backup-id"]
    assert b.checksum_tables("shop") == at_last_write
    assert "other" not in {row[0] for row in b.query("SHOW DATABASES")}
    assert run(spec_a, "list-binlogs") == timelines_of_a  # A's prefix untouched
    own = run(spec_b, "list-binlogs")
    assert len(own) == 1  # B's own timeline, under B's prefix

    # B's next backup goes under B's prefix; A's catalog is unchanged
    mine = run(spec_b, "backup")
    assert [r["backup-id"] for r in run(spec_b, "list", "--json")] == [mine["backup-id"]]
    assert [r["backup-id"] for r in run(spec_a, "list", "--json")] == [full["backup-id"]]

    # a plain restore of A's backup into B (B has its own timeline now: a new one starts)
    restored = run(spec_b, "restore", "--backup-id", full["backup-id"], "--source-cluster", SOURCE)
    assert restored["backup-id"] == full["backup-id"]
    assert b.checksum_tables("shop") == at_backup
    assert len(run(spec_b, "list-binlogs")) == 2
    assert run(spec_a, "list-binlogs") == timelines_of_a


def test_a_bad_source_cluster_is_refused_before_anything_changes(
    servers: tuple[MariaDBServer, MariaDBServer], s3_config: S3Config, tmp_path: Path
):
    _, b = servers
    spec_b = _spec(b, s3_config, generate_key(), tmp_path / "b", TARGET)
    before = b.checksum_tables("shop")
    proc = run_cli(
        ["pitr", "--target", "latest", "--source-cluster", "../escape"],
        spec_b,
        s3_config,
        tmp_path / "state.json",
    )
    assert proc.returncode != 0
    assert "source cluster" in proc.stderr
    assert b.checksum_tables("shop") == before
