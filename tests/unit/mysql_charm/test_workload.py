"""The workload module (no ops): option files, the backup user's SQL, commands."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from charmlibs import apt as charmlibs_apt
from mysql_provider import packages
from mysql_provider.workload import (
    FLAVOURS,
    Server,
    WorkloadError,
    backup_grants,
    backup_user_sql,
    render_config,
    sql_string,
)

from .conftest import FakeApt, dpkg_lock_error


class Recorder:
    def __init__(self, returncode: int = 0, stderr: str = "") -> None:
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.returncode = returncode
        self.stderr = stderr

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((list(argv), kwargs))
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


def test_mysql_options_turn_on_gtid_binlogs_outside_the_datadir() -> None:
    text = render_config(FLAVOURS["mysql"], server_id=3, binlog_days=2)
    assert text.splitlines()[1] == "[mysqld]"
    for line in ("server_id = 3", "log_bin = /var/lib/mysql-binlog/bin", "binlog_format = ROW",
                 "gtid_mode = ON", "enforce_gtid_consistency = ON",
                 "binlog_expire_logs_seconds = 172800"):  # fmt: skip
        assert line in text.splitlines()


def test_mariadb_options_use_gtid_strict_mode() -> None:
    text = render_config(FLAVOURS["mariadb"], server_id=1, binlog_days=7)
    assert "[mariadb]" in text
    assert "gtid_strict_mode = ON" in text
    assert "gtid_mode" not in text


def test_backup_user_can_read_and_copy_but_never_write() -> None:
    for flavour in ("mysql", "mariadb"):
        grants = {g.strip() for g in backup_grants(flavour).split(",")}
        assert {"SELECT", "RELOAD", "PROCESS", "LOCK TABLES"} <= grants
        assert not grants & {"INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "ALL", "SUPER"}
    assert "BACKUP_ADMIN" in backup_grants("mysql")
    assert "BINLOG MONITOR" in backup_grants("mariadb")


def test_password_is_quoted_in_sql() -> None:
    assert sql_string("it's a \\ test") == "'it\\'s a \\\\ test'"
    sql = backup_user_sql("mariadb", "p'w", host="127.0.0.1")
    assert "IDENTIFIED BY 'p\\'w'" in sql
    assert "'charm-backup'@'127.0.0.1'" in sql


def test_sql_goes_to_the_client_on_stdin_never_in_argv(tmp_path: Path) -> None:
    run = Recorder()
    Server("mysql", run=run, root=tmp_path).ensure_backup_user("hunter2-secret")
    ((argv, kwargs),) = run.calls
    assert argv[0] == "mysql"
    assert "--protocol=socket" in argv
    assert "hunter2-secret" not in " ".join(argv)
    assert "hunter2-secret" in kwargs["input"]


def test_install_goes_through_charmlibs_apt(tmp_path: Path, fake_apt: FakeApt) -> None:
    Server("mariadb", run=Recorder(), root=tmp_path).install()
    assert fake_apt.calls == [
        ["update"], ["add", "mariadb-server", "mariadb-client", "mariadb-backup", "zstd"],
    ]  # fmt: skip


def test_a_held_dpkg_lock_raises_apts_reason(tmp_path: Path, fake_apt: FakeApt) -> None:
    fake_apt.install_failures.append(dpkg_lock_error())
    with pytest.raises(WorkloadError) as failure:
        Server("mysql", run=Recorder(), root=tmp_path).install()
    assert str(failure.value) == (
        "could not install mysql-server, mysql-client, percona-xtrabackup, zstd: Could not get "
        "lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (unattended-upgr)"
    )


def test_a_package_missing_from_the_archive_is_named(fake_apt: FakeApt) -> None:
    fake_apt.install_failures.append(
        charmlibs_apt.PackageError("Failed to install packages: percona-xtrabackup")
    )
    with pytest.raises(packages.PackageInstallError, match=r"^Failed to install packages: per"):
        packages.install(["percona-xtrabackup"])


def test_a_failed_package_list_update_gives_apts_reason(fake_apt: FakeApt) -> None:
    stderr = (
        b"Hit:1 http://archive\nE: Failed to fetch http://mirror/InRelease  Could not resolve\n"
    )
    fake_apt.update_failures.append(subprocess.CalledProcessError(100, ["apt-get"], b"", stderr))
    with pytest.raises(packages.PackageInstallError) as failure:
        packages.install(["zstd"])
    assert str(failure.value) == "Failed to fetch http://mirror/InRelease  Could not resolve"
    assert fake_apt.calls == [["update"]]


def test_configure_reports_a_change_only_once(tmp_path: Path) -> None:
    server = Server("mysql", run=Recorder(), root=tmp_path)
    assert server.configure(server_id=1, binlog_days=7) is True
    assert server.configure(server_id=1, binlog_days=7) is False
    assert server.configure(server_id=1, binlog_days=8) is True
    assert (tmp_path / "var/lib/mysql-binlog").is_dir()


def test_unknown_flavour_is_refused() -> None:
    with pytest.raises(WorkloadError, match="unknown flavour 'postgres'"):
        Server("postgres")


def test_engine_sections_point_at_the_systemd_server(tmp_path: Path) -> None:
    server = Server("mariadb", root=tmp_path)
    assert server.server_section() == {
        "type": "systemd", "unit": "mariadb", "datadir": "/var/lib/mysql"
    }  # fmt: skip
    assert server.backup_connection("pw")["user"] == "charm-backup"
    assert server.admin_connection()["user"] == "root"
