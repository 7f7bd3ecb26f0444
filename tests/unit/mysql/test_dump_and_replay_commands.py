"""Command lines of the logical dump, incremental backups and binlog replay.

Also the CLI's options for logical backups, point-in-time recovery and binlog shipping.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup import cli
from database_backup.mysql.binlog.replay import client_command, reader_command
from database_backup.mysql.flavour import for_name
from database_backup.mysql.logical.dump import dump_command
from database_backup.mysql.physical.commands import backup_command, prepare_command

MARIADB = for_name("mariadb", "10.11.6-MariaDB")
MYSQL = for_name("mysql", "8.0.36")
DEFAULTS = Path("/w/.client.cnf")


def test_dump_commands():
    argv = dump_command(MARIADB, DEFAULTS, databases=["a", "-b"])
    assert argv[1] == f"--defaults-extra-file={DEFAULTS}"
    assert {"--single-transaction", "--routines", "--triggers", "--events", "--master-data=2",
            "--gtid"} <= set(argv)  # fmt: skip
    assert argv[-4:] == ["--databases", "--", "a", "-b"]  # a name is never an option
    mysql = dump_command(MYSQL, DEFAULTS, table_database="shop", tables=["t1", "t2"])
    assert mysql[0] == "mysqldump"
    assert "--source-data=2" in mysql
    assert mysql[-4:] == ["--", "shop", "t1", "t2"]
    assert not any("password" in part for part in argv + mysql)


def test_incremental_and_chain_prepare_commands():
    argv = backup_command(MARIADB, DEFAULTS, target_dir=Path("/x"), incremental_lsn=4242)
    assert argv[-1] == "--incremental-lsn=4242"
    assert prepare_command(MARIADB, Path("/s"), incremental_dir=Path("/s.inc1"))[-1] == (
        "--incremental-dir=/s.inc1"
    )
    assert "--apply-log-only" in prepare_command(MYSQL, Path("/s"), apply_log_only=True)
    assert "--apply-log-only" not in prepare_command(MARIADB, Path("/s"), apply_log_only=True)


def test_replay_commands():
    stop = datetime(2026, 11, 22, 9, 15, 7, 900_000, tzinfo=timezone.utc)
    argv = reader_command(MARIADB, Path("/b/bin.000003"), start_position=563, stop_datetime=stop)
    assert argv == ["mariadb-binlog", "--start-position=563",
                    "--stop-datetime=2026-11-22 09:15:07", "/b/bin.000003"]  # fmt: skip
    assert reader_command(MARIADB, Path("/b/bin.000004"), start_position=4) == [
        "mariadb-binlog", "/b/bin.000004"
    ]  # fmt: skip
    client = client_command(MARIADB, DEFAULTS)
    assert client[:3] == ["mariadb", f"--defaults-extra-file={DEFAULTS}", "--binary-mode"]
    assert "--max-allowed-packet=1073741824" in client  # one big transaction's BINLOG statement


def test_cli_parses_logical_pitr_and_binlog_commands():
    parser = cli.build_parser()
    args = parser.parse_args(["backup", "--spec", "s", "--kind", "logical", "--tables",
                              "shop.a, shop.b"])  # fmt: skip
    assert (args.kind, args.tables, args.databases) == ("logical", ["shop.a", "shop.b"], None)
    args = parser.parse_args(["pitr", "--spec", "s", "--target", "2026-11-22T09:00:00Z"])
    assert args.target == "2026-11-22T09:00:00Z"
    assert args.no_ship_first is False
    args = parser.parse_args(["ship-binlogs", "--spec", "s", "--flush"])
    assert args.flush is True
    assert set(cli.COMMANDS) >= {"ship-binlogs", "pitr", "list-binlogs", "purge-binlogs"}


@pytest.mark.parametrize(
    "argv",
    [
        ["pitr", "--spec", "s", "--target", "yesterday"],
        ["backup", "--spec", "s", "--kind", "differential"],
        ["backup", "--spec", "s", "--databases", "a", "--tables", "a.t"],
    ],
    ids=["target", "kind", "both-scopes"],
)
def test_cli_rejects_bad_logical_and_pitr_arguments(argv: list[str]):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2
