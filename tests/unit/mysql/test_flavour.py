"""Flavour detection from what the server reports, and each flavour's tools."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from database_backup.mysql import ConnectionSpec, FlavourError, detect
from database_backup.mysql.flavour import flavour_name, for_name, parse_version


@pytest.mark.parametrize(
    ("version", "comment", "expected"),
    [
        ("10.11.19-MariaDB-0+deb12u1-log", "Debian 12", "mariadb"),
        ("5.5.5-10.6.16-MariaDB-0ubuntu0.22.04.1", "Ubuntu 22.04", "mariadb"),
        ("11.4.2-MariaDB", "MariaDB Server", "mariadb"),
        ("10.6.12", "MariaDB Server", "mariadb"),
        ("8.0.36-0ubuntu0.22.04.1", "(Ubuntu)", "mysql"),
        ("8.0.35-27", "Percona Server (GPL), Release 27, Revision 2f8eeab2", "mysql"),
        ("8.4.0", "MySQL Community Server - GPL", "mysql"),
    ],
)
def test_flavour_name(version: str, comment: str, expected: str):
    assert flavour_name(version, comment) == expected


def test_flavour_name_rejects_empty_version():
    with pytest.raises(FlavourError, match="empty version"):
        flavour_name("  ", "MySQL")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("10.11.19-MariaDB-0+deb12u1-log", (10, 11, 19)),
        ("5.5.5-10.6.16-MariaDB", (10, 6, 16)),
        ("8.0.36-0ubuntu0.22.04.1", (8, 0, 36)),
        ("garbage", (0, 0, 0)),
    ],
)
def test_parse_version(version: str, expected: tuple[int, int, int]):
    assert parse_version(version) == expected


def test_mysql_tools():
    flavour = for_name("mysql", "8.0.36")
    assert (flavour.backup_tool, flavour.stream_tool) == ("xtrabackup", "xbstream")
    assert (flavour.dump_tool, flavour.binlog_tool) == ("mysqldump", "mysqlbinlog")
    assert flavour.client_tool in ("mysql", "mariadb")
    assert flavour.version_tuple == (8, 0, 36)


def test_mariadb_tools():
    flavour = for_name("mariadb", "10.11.19-MariaDB")
    assert flavour.backup_tool in ("mariabackup", "mariadb-backup")
    assert flavour.stream_tool == "mbstream"
    assert flavour.dump_tool in ("mariadb-dump", "mysqldump")
    assert flavour.binlog_tool in ("mariadb-binlog", "mysqlbinlog")


def test_each_flavour_carries_its_command_and_sql_differences():
    """The MariaDB/MySQL differences live on the flavour, not in the modules using them."""
    mariadb, mysql = for_name("mariadb", "10.11.19"), for_name("mysql", "8.0.36")
    assert mariadb.dump_options == ("--master-data=2", "--gtid")
    assert mysql.dump_options == ("--source-data=2", "--set-gtid-purged=COMMENTED")
    assert (mariadb.prepare_apply_log_only, mysql.prepare_apply_log_only) == (False, True)
    assert mariadb.user_role_column == "is_role"
    assert mysql.user_role_column == "'N'"
    assert mariadb.show_create_user_sql("'a'@'%'") == "SHOW CREATE USER 'a'@'%';"
    assert mysql.show_create_user_sql("'a'@'%'") == (
        "SET SESSION print_identified_with_as_hex = ON; SHOW CREATE USER 'a'@'%';"
    )
    assert mariadb.set_gtid_state_sql("0-1-5") == "SET GLOBAL gtid_binlog_state = '0-1-5';"
    assert mysql.set_gtid_state_sql("uuid:1-5") == "SET GLOBAL gtid_purged = 'uuid:1-5';"


def test_unknown_flavour():
    with pytest.raises(FlavourError, match="postgres"):
        for_name("postgres")


def _fake_client(directory: Path, output: str, rc: int = 0) -> str:
    """A stand-in client program: records its argv and stdin, prints `output`."""
    script = directory / "fake-client"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{directory}/argv"\n'
        f'cat > "{directory}/stdin"\n'
        f"printf '{output}'\n"
        f"exit {rc}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_detect_mysql_through_the_client(tmp_path: Path):
    client = _fake_client(tmp_path, "8.0.36-0ubuntu0.22.04.1\\t(Ubuntu)\\t/var/lib/mysql/\\n")
    conn = ConnectionSpec(user="backup", password="not-in-argv")
    flavour = detect(conn, client=client, workdir=tmp_path)
    assert flavour.name == "mysql"
    assert flavour.version == "8.0.36-0ubuntu0.22.04.1"
    assert flavour.backup_tool == "xtrabackup"
    assert flavour.datadir == "/var/lib/mysql/"
    argv = (tmp_path / "argv").read_text()
    assert "not-in-argv" not in argv
    assert argv.startswith("--defaults-extra-file=")
    assert "VERSION()" in (tmp_path / "stdin").read_text()
    # the defaults file is gone once the query is done
    assert not any(name.endswith(".cnf") for name in os.listdir(tmp_path))


def test_detect_reports_client_error(tmp_path: Path):
    client = _fake_client(tmp_path, "", rc=1)
    with pytest.raises(FlavourError, match="cannot detect"):
        detect(ConnectionSpec(user="x"), client=client, workdir=tmp_path)
