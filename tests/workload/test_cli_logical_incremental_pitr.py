"""The command line's incremental and logical backups, ship-binlogs and pitr, end to end.

Runs `python -m database_backup.cli` as a separate process against the real MariaDB and
RGW; the server is stopped and started through `server.type = command`.
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


def _spec(db: MariaDBServer, config: S3Config, key: bytes, workdir: Path) -> dict[str, Any]:
    """A spec without S3 keys (they come from the environment), the server by commands."""
    return {
        "cluster-id": "model-cli/pitr",
        "storage": {"bucket": config.bucket, "endpoint": config.endpoint, "path": "cli"},
        **cli_server(db),
        "encryption-key": base64.b64encode(key).decode(),
        "workdir": str(workdir),
    }


@pytest.fixture(scope="module")
def server(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    db = make_mariadb("cli-pitr")
    yield db
    if not db.is_running() and db.pid_file.exists():
        subprocess.run(stop_command(db), check=False, timeout=60)
    db.stop()


def _ok(proc: subprocess.CompletedProcess[str], secrets: tuple[str, ...]) -> object:
    assert proc.returncode == 0, proc.stderr
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_cli_incremental_logical_ship_and_pitr(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    key = generate_key()
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(_spec(server, s3_config, key, tmp_path / "work")))
    spec.chmod(0o600)
    secrets = (s3_config.secret_key, server.password, base64.b64encode(key).decode())

    def run(*args: str) -> object:
        return _ok(run_cli(list(args), spec, s3_config, tmp_path / "state.json"), secrets)

    fill(server, "shop", rows=2_000)
    shipped = run("ship-binlogs", "--flush")
    assert isinstance(shipped, dict)
    assert shipped["shipped"]
    full = run("backup")
    at_full = server.checksum_tables("shop")
    server.execute("UPDATE shop.orders SET amount = 7 WHERE id < 100;")
    inc = run("backup", "--kind", "incremental")
    logical = run("backup", "--kind", "logical", "--databases", "shop")
    assert isinstance(full, dict)
    assert isinstance(inc, dict)
    assert isinstance(logical, dict)
    assert (inc["kind"], inc["parent-id"]) == ("incremental", full["backup-id"])
    assert (logical["kind"], logical["databases"]) == ("logical", ["shop"])
    server.execute("INSERT INTO shop.orders VALUES (900001, 'late', 1, 'after the backups');")
    wanted = server.checksum_tables("shop")

    run("ship-binlogs", "--flush")
    plan = run("pitr", "--target", "latest", "--plan-only")
    assert isinstance(plan, dict)
    assert plan["backup-id"] == inc["backup-id"]
    assert plan["chain"] == [full["backup-id"], inc["backup-id"]]
    # not shipped yet: pitr ships the server's binlogs first, so "latest" includes it
    server.execute("DROP DATABASE shop;")
    binlogs = run("list-binlogs")
    assert isinstance(binlogs, list)
    assert len(binlogs) == 1

    recovered = run("pitr", "--target", "latest")
    assert isinstance(recovered, dict)
    assert recovered["backup-id"] == inc["backup-id"]
    assert "shop" not in {row[0] for row in server.query("SHOW DATABASES")}  # the DROP replayed
    after = run("list-binlogs")
    assert isinstance(after, list)
    assert len(after) == 2

    # the logical backup brings one table back into the recovered server
    restored = run("restore", "--backup-id", str(logical["backup-id"]), "--tables", "shop.orders")
    assert isinstance(restored, dict)
    assert restored["tables"] == ["shop.orders"]
    assert set(server.checksum_tables("shop")) == {"orders"}
    assert server.checksum_tables("shop")["orders"] != wanted["orders"]  # before the late row
    purge = run("purge-binlogs", "--dry-run")
    assert isinstance(purge, list)

    # binlogs are shipped: a physical restore starts a new timeline too
    physical = run("restore", "--backup-id", str(full["backup-id"]))
    assert isinstance(physical, dict)
    assert physical["backup-id"] == full["backup-id"]
    assert physical["replayed-files"] == 0
    timelines = run("list-binlogs")
    assert isinstance(timelines, list)
    assert len(timelines) == 3
    assert server.checksum_tables("shop") == at_full

    state = json.loads((tmp_path / "state.json").read_text())
    assert state["status"] == "success"
