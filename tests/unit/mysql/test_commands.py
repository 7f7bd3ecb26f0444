"""Tool command lines (both flavours) and parsing of the backup tools' logs."""

from __future__ import annotations

from pathlib import Path

from database_backup.mysql.flavour import for_name
from database_backup.mysql.physical.commands import (
    BinlogCoordinates,
    backup_command,
    coordinates_from,
    extract_command,
    parse_binlog_coordinates,
    parse_binlog_info_file,
    parse_checkpoint_lsn,
    parse_checkpoints_file,
    prepare_command,
    to_lsn_from,
    tool_succeeded,
)

MYSQL = for_name("mysql", "8.0.36")
MARIADB = for_name("mariadb", "10.11.19-MariaDB")

MARIADB_LOG = """\
[00] 2026-11-22 07:03:07 mariabackup: The latest check point (for incremental): '44404'
[00] 2026-11-22 07:03:07 Backup created in directory '/tmp/cexp/tgt/'
[00] 2026-11-22 07:03:07 MySQL binlog position: filename 'bin.000001', position '563095', \
GTID of the last change '0-1-3'
[00] 2026-11-22 07:03:07 completed OK!
"""

XTRABACKUP_LOG = """\
2024-03-01T10:00:01.000000-00:00 0 [Note] [MY-011825] [Xtrabackup] MySQL binlog position: \
filename 'binlog.000003', position '235', GTID of the last change \
'c7c9e6f6-d7a1-11ee-8d2b-0242ac110002:1-42'
2024-03-01T10:00:02.000000-00:00 0 [Note] [MY-011825] [Xtrabackup] completed OK!
"""


def test_mysql_backup_command():
    argv = backup_command(MYSQL, Path("/w/.client.cnf"), target_dir=Path("/w/xb"), parallel=4)
    assert argv == [
        "xtrabackup",
        "--defaults-extra-file=/w/.client.cnf",
        "--backup",
        "--stream=xbstream",
        "--target-dir=/w/xb",
        "--parallel=4",
    ]


def test_mariadb_backup_command_defaults_file_first():
    argv = backup_command(MARIADB, Path("/w/c.cnf"), target_dir=Path("/w/xb"))
    assert argv[0] in ("mariabackup", "mariadb-backup")
    assert argv[1] == "--defaults-extra-file=/w/c.cnf"
    assert "--parallel=1" not in argv
    assert not any("password" in part for part in argv)


def test_extract_commands():
    assert extract_command(MYSQL, Path("/s")) == ["xbstream", "-x", "-C", "/s"]
    assert extract_command(MARIADB, Path("/s"), parallel=2) == [
        "mbstream",
        "-x",
        "-C",
        "/s",
        "--parallel=2",
    ]


def test_prepare_commands():
    assert prepare_command(MYSQL, Path("/s")) == [
        "xtrabackup",
        "--prepare",
        "--target-dir=/s",
        "--use-memory=256M",
    ]
    assert prepare_command(MARIADB, Path("/s"), use_memory_mb=64)[1:] == [
        "--prepare",
        "--target-dir=/s",
        "--use-memory=64M",
    ]


def test_parse_mariadb_log():
    assert parse_binlog_coordinates(MARIADB_LOG) == BinlogCoordinates(
        "bin.000001", 563095, "0-1-3"
    )
    assert parse_checkpoint_lsn(MARIADB_LOG) == 44404
    assert tool_succeeded(MARIADB_LOG)


def test_parse_xtrabackup_log():
    coords = parse_binlog_coordinates(XTRABACKUP_LOG)
    assert coords == BinlogCoordinates(
        "binlog.000003", 235, "c7c9e6f6-d7a1-11ee-8d2b-0242ac110002:1-42"
    )
    assert parse_checkpoint_lsn(XTRABACKUP_LOG) is None


def test_parse_log_without_gtid_or_binlog():
    log = "MySQL binlog position: filename 'mysql-bin.000002', position '120'\n"
    assert parse_binlog_coordinates(log) == BinlogCoordinates("mysql-bin.000002", 120, None)
    assert parse_binlog_coordinates("nothing here\ncompleted OK!") is None


def test_failed_run_is_not_success():
    assert not tool_succeeded("[00] FATAL ERROR: 2026-11-22 failed to execute query\n")


def test_parse_binlog_info_file():
    assert parse_binlog_info_file("bin.000001\t563095\t0-1-3\n") == BinlogCoordinates(
        "bin.000001", 563095, "0-1-3"
    )
    assert parse_binlog_info_file("binlog.000002\t157\n") == BinlogCoordinates(
        "binlog.000002", 157, None
    )
    assert parse_binlog_info_file("") is None


def test_stream_files_win_over_the_log():
    files = {
        "mariadb_backup_binlog_info": b"bin.000009\t77\t0-1-5\n",
        "xtrabackup_checkpoints": b"backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 9001\n",
    }
    assert coordinates_from(files, MARIADB_LOG) == BinlogCoordinates("bin.000009", 77, "0-1-5")
    assert to_lsn_from(files, MARIADB_LOG) == 9001
    assert coordinates_from({}, MARIADB_LOG) == BinlogCoordinates("bin.000001", 563095, "0-1-3")
    assert to_lsn_from({}, MARIADB_LOG) == 44404
    assert parse_checkpoints_file("from_lsn = 0\nto_lsn = 12\nbackup_type = full") == {
        "from_lsn": 0,
        "to_lsn": 12,
    }
