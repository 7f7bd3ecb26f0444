"""Restore drills (`database-backup verify`) against the real MariaDB and RGW.

The drill runs as the engine's command line in its own process, restores into a scratch
server of its own (the live server's `mariadbd`, its own directory and socket, no TCP) and
must leave the live server exactly as it was: datadir entries and table files' mtimes,
port, process and CHECKSUM TABLE are compared before and after.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from database_backup.catalog import Catalog
from database_backup.storage import S3Config, S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import cli_server, fill, run_cli, start_cli, wait_state

CLUSTER = "model-drill/mariadb"
KEY = generate_key()


def _spec(db: MariaDBServer, config: S3Config, tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    spec: dict[str, Any] = {
        "cluster-id": CLUSTER,
        "storage": {"bucket": config.bucket, "endpoint": config.endpoint, "path": ""},
        **cli_server(db),
        "encryption-key": base64.b64encode(KEY).decode(),
        "workdir": str(tmp_path / "work"),
    }
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def _run(spec: Path, config: S3Config, state: Path, *args: str) -> dict[str, Any]:
    proc = run_cli(list(args), spec, config, state)
    document: dict[str, Any] = json.loads(state.read_text())
    document["exit"] = proc.returncode
    document["stderr"] = proc.stderr
    return document


def _backup(spec: Path, config: S3Config, tmp_path: Path, *args: str) -> str:
    state = _run(spec, config, tmp_path / "backup.json", "backup", *args)
    assert state["exit"] == 0, state["stderr"]
    return str(state["result"]["backup-id"])


def _drill(spec: Path, config: S3Config, tmp_path: Path, *args: str) -> dict[str, Any]:
    return _run(spec, config, tmp_path / "drill.json", "verify", "--job-id", "job-d", *args)


def _scratch_dirs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "work" / "drills").glob("drill-*"))


def _servers_in(directory: Path) -> list[int]:
    """Pids of processes whose command line names `directory`."""
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(directory).encode() in cmdline and b"mariadbd" in cmdline:
                found.append(int(proc.name))
    return found


def _quiesce(db: MariaDBServer) -> None:
    """Flush every dirty page, so that an idle server leaves its table files alone."""
    db.execute("FLUSH TABLES; SET GLOBAL innodb_max_dirty_pages_pct = 0;")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dirty = db.scalar("SELECT variable_value FROM information_schema.global_status "
                          "WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'")  # fmt: skip
        if dirty == "0":
            return
        time.sleep(0.2)


def _live_picture(db: MariaDBServer) -> dict[str, Any]:
    """What a drill must not change: entries, table files' mtimes, process, port, data."""
    data = db.datadir
    return {
        "entries": sorted(str(p.relative_to(data)) for p in data.rglob("*")),
        "beside": sorted(p.name for p in data.parent.iterdir()),
        "table-files": {p.name: p.stat().st_mtime_ns for p in (data / "shop").iterdir()},
        "pid": db.pid,
        "port": db.scalar("SELECT @@port"),
        "socket": db.scalar("SELECT @@socket"),
        "checksums": db.checksum_tables("shop"),
    }


@pytest.fixture
def filled(server: MariaDBServer) -> MariaDBServer:
    fill(server, "shop", rows=5_000)
    return server


def test_a_good_physical_backup_passes_and_the_live_server_is_untouched(
    filled: MariaDBServer, s3_config: S3Config, storage: S3Storage, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path)
    _quiesce(filled)
    before = _live_picture(filled)

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id, "--unit", "db/0")

    assert state["exit"] == 0, state["stderr"]
    assert state["status"] == "success"
    verification = state["result"]["verification"]
    assert verification["result"] == "pass"
    assert verification["tables-checked"] == 3
    assert verification["tables-compared"] >= 1  # the InnoDB table at least
    assert "reason" not in verification
    assert _live_picture(filled) == before
    assert _scratch_dirs(tmp_path) == []
    stored = Catalog(storage, CLUSTER).read_verification(backup_id)
    assert stored is not None
    assert stored["result"] == "pass"
    assert (stored["backup-id"], stored["job-id"], stored["unit"]) == (backup_id, "job-d", "db/0")


def test_a_logical_backup_passes(filled: MariaDBServer, s3_config: S3Config, tmp_path: Path):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path, "--kind", "logical")

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id)

    assert state["exit"] == 0, state["stderr"]
    assert state["result"]["kind"] == "logical"
    assert state["result"]["verification"]["result"] == "pass"
    assert state["result"]["verification"]["tables-checked"] == 3
    assert _scratch_dirs(tmp_path) == []


def test_an_incremental_chain_passes(filled: MariaDBServer, s3_config: S3Config, tmp_path: Path):
    spec = _spec(filled, s3_config, tmp_path)
    _backup(spec, s3_config, tmp_path)
    filled.execute("UPDATE shop.orders SET amount = amount + 1 WHERE id % 7 = 0;")
    inc = _backup(spec, s3_config, tmp_path, "--kind", "incremental")

    state = _drill(spec, s3_config, tmp_path, "--backup-id", inc)

    assert state["exit"] == 0, state["stderr"]
    assert state["result"]["kind"] == "incremental"
    assert state["result"]["verification"]["result"] == "pass"


def test_a_drill_to_a_point_in_time_replays_binlogs_and_passes(
    filled: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    assert _run(spec, s3_config, tmp_path / "s.json", "ship-binlogs", "--flush")["exit"] == 0
    backup_id = _backup(spec, s3_config, tmp_path)
    time.sleep(1.1)
    filled.execute("UPDATE shop.orders SET amount = 1 WHERE id < 500;")
    time.sleep(1.1)
    target = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    filled.execute("DELETE FROM shop.orders WHERE id < 100;")
    assert _run(spec, s3_config, tmp_path / "s.json", "ship-binlogs", "--flush")["exit"] == 0

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id, "--point-in-time", target)

    assert state["exit"] == 0, state["stderr"]
    verification = state["result"]["verification"]
    assert verification["result"] == "pass"
    assert verification["point-in-time"] == target
    assert verification["tables-compared"] == 0
    assert state["result"]["replayed-files"] >= 1
    assert any("not compared" in note for note in state["result"]["notes"])


def test_a_tampered_artefact_fails_with_the_reason(
    filled: MariaDBServer, s3_config: S3Config, storage: S3Storage, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path)
    catalog = Catalog(storage, CLUSTER)
    meta = catalog.read_metadata(backup_id)
    key = catalog.artefact_key(backup_id, meta.artefacts[0])
    data = bytearray(storage.get_bytes(key))
    data[len(data) // 2] ^= 0x01
    storage.put_bytes(key, bytes(data))

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id)

    assert state["exit"] == 1
    assert state["status"] == "error"
    assert state["message"].startswith("drill failed: ")
    assert "failed verification" in state["message"]
    verification = state["result"]["verification"]
    assert verification["result"] == "fail"
    assert verification["reason"] == state["message"]
    stored = catalog.read_verification(backup_id)
    assert stored is not None
    assert stored["result"] == "fail"
    assert _scratch_dirs(tmp_path) == []


def test_altered_recorded_sums_fail_naming_the_table(
    filled: MariaDBServer, s3_config: S3Config, storage: S3Storage, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path)
    catalog = Catalog(storage, CLUSTER)
    meta_key = catalog.artefact_key(backup_id, "backup.json")
    document = json.loads(storage.get_bytes(meta_key))
    sums = document["table-sums"]["tables"]
    assert "shop.orders" in sums
    sums["shop.orders"]["rows"] += 1
    storage.put_bytes(meta_key, json.dumps(document).encode())

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id)

    assert state["exit"] == 1
    rows = sums["shop.orders"]["rows"]
    assert f"shop.orders: {rows} rows recorded, {rows - 1} found" in state["message"]
    assert state["result"]["verification"]["result"] == "fail"


def test_a_drill_that_would_eat_the_live_databases_room_is_refused_before_downloading(
    filled: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path)
    too_much = str(2**62)

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id,
                   "--min-free-bytes", too_much)  # fmt: skip

    assert state["exit"] == 1
    assert state["message"].startswith("drill refused: the drill needs about ")
    assert "--scratch-root" in state["message"]
    assert state["bytes-done"] == 0
    assert state["phase"] == "drill-restoring"  # never reached a download
    assert "result" not in state
    assert _scratch_dirs(tmp_path) == []


def test_a_scratch_root_inside_the_live_datadir_is_refused(
    filled: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path)
    inside = filled.datadir / "drills"

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id,
                   "--scratch-root", str(inside))  # fmt: skip

    assert state["exit"] == 1
    assert state["message"].startswith("drill refused: the drill directory ")
    assert not inside.exists()


@dataclass
class _Started:
    """A drill running in the background, stopped once its scratch server has started."""

    spec: Path
    backup_id: str
    proc: subprocess.Popen[bytes]
    state: Path
    scratch: Path


def _start_drill(db: MariaDBServer, config: S3Config, tmp_path: Path) -> _Started:
    spec = _spec(db, config, tmp_path)
    backup_id = _backup(spec, config, tmp_path)
    state = tmp_path / "drill.json"
    proc = start_cli(["verify", "--backup-id", backup_id], spec, config, state)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in _scratch_dirs(tmp_path):
            if (path / "scratch.pid").exists():
                return _Started(spec, backup_id, proc, state, path)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    pytest.fail("the drill never started its scratch server")


def test_sigterm_mid_drill_removes_the_scratch_server_and_its_directory(
    filled: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    drill = _start_drill(filled, s3_config, tmp_path)

    drill.proc.send_signal(signal.SIGTERM)

    assert drill.proc.wait(120) == 1
    wait_state(drill.state, lambda doc: doc.get("finished-at") is not None)
    document = json.loads(drill.state.read_text())
    assert document["message"] == "cancelled: stopped by signal SIGTERM"
    assert not drill.scratch.exists()
    assert _servers_in(drill.scratch) == []


def test_a_killed_drills_leftovers_are_removed_by_the_next_drill(
    filled: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    drill = _start_drill(filled, s3_config, tmp_path)
    os.kill(drill.proc.pid, signal.SIGKILL)  # the engine only: its scratch server runs on
    drill.proc.wait(30)
    left = _servers_in(drill.scratch)
    assert drill.scratch.exists()
    assert left

    state = _drill(drill.spec, s3_config, tmp_path, "--backup-id", drill.backup_id)

    assert state["exit"] == 0, state["stderr"]
    assert not drill.scratch.exists()
    assert _servers_in(drill.scratch) == []
    assert all(not Path(f"/proc/{pid}").exists() for pid in left)
    assert f"removed an interrupted drill's {drill.scratch.name}" in state["result"]["notes"]


def test_an_incremental_whose_parent_is_gone_fails_saying_so(
    filled: MariaDBServer, s3_config: S3Config, storage: S3Storage, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    full = _backup(spec, s3_config, tmp_path)
    inc = _backup(spec, s3_config, tmp_path, "--kind", "incremental")
    catalog = Catalog(storage, CLUSTER)
    storage.delete(catalog.artefact_key(full, "backup.json"))

    state = _drill(spec, s3_config, tmp_path, "--backup-id", inc)

    assert state["exit"] == 1
    assert state["message"].startswith(f"drill failed: backup {inc} needs its parent {full}")
    stored = catalog.read_verification(inc)
    assert stored is not None
    assert stored["result"] == "fail"
    assert _scratch_dirs(tmp_path) == []


def test_a_backup_of_a_damaged_table_fails_check_table_naming_it(
    filled: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    filled.execute(
        "CREATE TABLE shop.broken (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=MyISAM;"
        "INSERT INTO shop.broken SELECT seq, MD5(seq) FROM seq_1_to_2000; FLUSH TABLES;",
        database="shop",
    )
    data_file = filled.datadir / "shop" / "broken.MYD"
    os.truncate(data_file, data_file.stat().st_size // 2)  # a disk that lost a write
    try:
        spec = _spec(filled, s3_config, tmp_path)
        backup_id = _backup(spec, s3_config, tmp_path)

        state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id)
    finally:
        filled.execute("DROP TABLE shop.broken;")

    assert state["exit"] == 1
    assert state["message"].startswith("drill failed: CHECK TABLE found 1 damaged tables: ")
    assert "shop.broken: " in state["message"]
    assert state["result"]["verification"]["tables-checked"] == 4


def test_a_unit_with_another_key_is_refused_and_says_nothing_about_the_backup(
    filled: MariaDBServer, s3_config: S3Config, storage: S3Storage, tmp_path: Path
):
    spec = _spec(filled, s3_config, tmp_path)
    backup_id = _backup(spec, s3_config, tmp_path)
    document = json.loads(spec.read_text())
    document["encryption-key"] = base64.b64encode(generate_key()).decode()
    spec.write_text(json.dumps(document))

    state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id)

    assert state["exit"] == 1
    assert state["message"].startswith("drill refused: ")
    assert "key" in state["message"]
    assert Catalog(storage, CLUSTER).read_verification(backup_id) is None


def test_a_missing_backup_is_refused(filled: MariaDBServer, s3_config: S3Config, tmp_path: Path):
    spec = _spec(filled, s3_config, tmp_path)

    state = _drill(spec, s3_config, tmp_path, "--backup-id", "20260101T000000Z-dead")

    assert state["exit"] == 1
    assert state["message"].startswith("drill refused: backup 20260101T000000Z-dead not found")


def _server_with_32k_pages(base: Path) -> MariaDBServer:
    """A server whose datadir was initialised with 32 KiB InnoDB pages (not the default)."""
    db = MariaDBServer(base, extra_args=("--innodb-page-size=32768",))
    db.tmpdir.mkdir(parents=True)
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={db.datadir}", f"--tmpdir={db.tmpdir}",
         "--auth-root-authentication-method=normal", "--user=root", "--skip-test-db",
         "--innodb-page-size=32768"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    db.binlog_dir.mkdir()
    boot = subprocess.Popen(db.server_args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={db.socket}", "-uroot"],
            input=(
                "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';"
                f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{db.password}';"
                f"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{db.password}';"
                "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
            ),
            text=True, capture_output=True, check=False,
        ).returncode:  # fmt: skip
            assert time.monotonic() < deadline, "the 32k server never answered"
            time.sleep(0.2)
    finally:
        boot.terminate()
        boot.wait(60)
    db.start()
    return db


def test_a_backup_of_a_server_with_other_innodb_pages_passes(
    s3_config: S3Config, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
):
    db = _server_with_32k_pages(tmp_path_factory.mktemp("drill-32k"))
    try:
        assert db.scalar("SELECT @@innodb_page_size") == "32768"
        fill(db, "shop", rows=2_000)
        spec = _spec(db, s3_config, tmp_path)
        backup_id = _backup(spec, s3_config, tmp_path)

        state = _drill(spec, s3_config, tmp_path, "--backup-id", backup_id)
    finally:
        db.stop()

    assert state["exit"] == 0, state["stderr"]
    assert state["result"]["verification"]["result"] == "pass"
