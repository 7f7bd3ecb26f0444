"""From job requests to the engine's command line and spec (pure functions)."""

from __future__ import annotations

import pytest
from mysql_provider.specs import (
    DrillPlace,
    JobSpecError,
    artefact_path,
    engine_job,
    restore_source,
)

from database_backup.interface import BackupKind

from .conftest import job

ADMIN = {"user": "root", "password": "", "socket": "/run/mysqld/mysqld.sock"}
BACKUP = {"user": "charm-backup", "password": "pw", "socket": "/run/mysqld/mysqld.sock"}
SERVER = {"type": "systemd", "unit": "mysql", "datadir": "/var/lib/mysql"}


def build(request, key: bytes | None = None, drill: DrillPlace | None = None):
    return engine_job(
        request, cluster_id="uuid/mysql-server", new_backup_id="20261122T080000Z-aaaa",
        credentials=("AK", "SK"), encryption_key=key, backup_connection=BACKUP,
        admin_connection=ADMIN, server=SERVER, workdir="/var/lib/mysql-server-charm/work",
        drill=drill,
    )  # fmt: skip


def test_full_backup_connects_as_the_backup_user() -> None:
    engine = build(job("b", compression_level=9, description="nightly"))
    assert engine.command == (
        "backup", "--backup-id", "20261122T080000Z-aaaa", "--job-id", "b",
        "--description", "nightly", "--compression-level", "9",
    )  # fmt: skip
    assert engine.spec["connection"] == BACKUP
    assert engine.spec["storage"]["access-key"] == "AK"
    assert "encryption-key" not in engine.spec


def test_uncompressed_encrypted_backup() -> None:
    engine = build(job("b", compression=False), key=bytes(32))
    assert engine.command[-1] == "--no-compression"
    assert engine.spec["encryption-key"] == "A" * 43 + "="


def test_incremental_and_logical_fields_are_passed_on() -> None:
    inc = build(job("i", backup_kind=BackupKind.INCREMENTAL, parent_backup_id="p-1"))
    assert inc.command[5:9] == ("--kind", "incremental", "--parent-id", "p-1")
    newest = build(job("i", backup_kind=BackupKind.INCREMENTAL))
    assert "--parent-id" not in newest.command  # the engine picks the newest physical backup
    logical = build(job("l", backup_kind=BackupKind.LOGICAL, databases=("shop", "crm")))
    assert logical.command[5:9] == ("--kind", "logical", "--databases", "shop,crm")
    tables = build(job("t", backup_kind=BackupKind.LOGICAL, tables=("shop.a", "shop.b")))
    assert tables.command[7:9] == ("--tables", "shop.a,shop.b")


def test_restore_connects_as_admin() -> None:
    engine = build(job("r", "restore", databases=("shop",)))
    assert engine.command == (
        "restore",
        "--backup-id",
        "20261122T071500Z-3fa9",
        "--databases",
        "shop",
    )
    assert engine.spec["connection"] == ADMIN
    assert engine.spec["server"] == SERVER
    assert engine.kind.value == "restore"


def test_point_in_time_is_a_pitr_from_the_named_backup_or_the_engines_choice() -> None:
    named = build(job("r", "restore", point_in_time="2026-11-22T07:00:00Z"))
    assert named.command == (
        "pitr", "--target", "2026-11-22T07:00:00Z", "--backup-id", "20261122T071500Z-3fa9",
    )  # fmt: skip
    latest = build(job("r", "restore", point_in_time="latest", backup_id=None))
    assert latest.command == ("pitr", "--target", "latest")


@pytest.mark.parametrize(
    ("artefact", "backup_id", "expected"),
    [
        ("prod/uuid/mysql-server/backups/b-1", None, ("uuid/mysql-server", "b-1")),
        ("prod/other-uuid/db/backups/b-2/", None, ("other-uuid/db", "b-2")),
        (None, "b-3", ("uuid/mysql-server", "b-3")),
        ("/nightly/0041/", "b-4", ("uuid/mysql-server", "b-4")),
    ],
)
def test_restore_source(
    artefact: str | None, backup_id: str | None, expected: tuple[str, str]
) -> None:
    request = job("r", "restore", artefact_path=artefact, backup_id=backup_id)
    assert restore_source(request, "uuid/mysql-server") == expected


def test_restore_naming_no_backup_is_refused() -> None:
    with pytest.raises(JobSpecError, match="names no backup"):
        restore_source(job("r", "restore", artefact_path="/nightly/0041/", backup_id=None), "c")


def test_artefact_path_includes_the_storage_path() -> None:
    assert artefact_path(job(), "uuid/app", "b-1") == "prod/uuid/app/backups/b-1"


@pytest.mark.parametrize("point_in_time", [None, "latest"])
def test_a_backup_of_another_cluster_is_cloned_into_our_own_prefix(
    point_in_time: str | None,
) -> None:
    """Reads come from the source prefix; the spec's cluster (where we write) stays ours."""
    other = "0ther-model/old-db"
    request = job(
        "r",
        "restore",
        artefact_path=f"prod/{other}/backups/20261122T071500Z-3fa9",
        point_in_time=point_in_time,
    )
    engine = build(request)
    assert engine.spec["cluster-id"] == "uuid/mysql-server"
    assert engine.command[-2:] == ("--source-cluster", other)
    assert engine.cluster_id == other  # the backup restored, for the job's artefact-path


def test_a_backup_of_our_own_cluster_names_no_source() -> None:
    request = job("r", "restore", artefact_path="prod/uuid/mysql-server/backups/b-1")
    engine = build(request)
    assert "--source-cluster" not in engine.command
    assert engine.spec["cluster-id"] == "uuid/mysql-server"


def test_a_drill_is_a_verify_command_that_reads_the_live_server_as_the_backup_user() -> None:
    drill = job("d", verify_backup_id="20261121T070000Z-0b1c", encryption_secret_id="secret:k")
    place = DrillPlace("/srv/drills", min_free_bytes=5 * 2**30, unit="mysql-server/0")

    engine = build(drill, key=bytes(32), drill=place)

    assert engine.command == (
        "verify", "--backup-id", "20261121T070000Z-0b1c", "--job-id", "d",
        "--unit", "mysql-server/0",
        "--scratch-root", "/srv/drills", "--min-free-bytes", str(5 * 2**30),
    )  # fmt: skip
    assert engine.kind.value == "restore drill"
    assert engine.backup_id == "20261121T070000Z-0b1c"
    assert engine.spec["server"] == SERVER
    assert engine.spec["storage"]["secret-key"] == "SK"
    assert engine.spec["encryption-key"] == "A" * 43 + "="
    # the engine only asks the live server what it is: the least-privileged account will do
    assert engine.spec["connection"] == BACKUP
    assert "SK" not in engine.command
    assert "pw" not in " ".join(engine.command)


def test_a_drill_to_a_point_in_time_without_a_free_space_floor() -> None:
    drill = job("d", verify_backup_id="b-1", point_in_time="latest")

    engine = build(drill, drill=DrillPlace("/var/lib/database-backup/drills"))

    assert engine.command == (
        "verify", "--backup-id", "b-1", "--job-id", "d", "--point-in-time", "latest",
        "--scratch-root", "/var/lib/database-backup/drills",
    )  # fmt: skip


def test_a_drill_without_a_place_is_refused() -> None:
    with pytest.raises(JobSpecError, match="drill-directory"):
        build(job("d", verify_backup_id="b-1"))
