"""How a drill reads `CHECK TABLE` output, and the scratch server's isolation from the live one."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from database_backup.mysql.drill.binary import check_match
from database_backup.mysql.drill.checks import TableCheck, interpret, problem_text
from database_backup.mysql.drill.errors import DrillRefusedError
from database_backup.mysql.drill.scratch import MARKER, ScratchRoot, ScratchServer, check_passable
from database_backup.mysql.flavour import for_name
from tests.unit.catalog.factories import backup


def test_ok_and_up_to_date_tables_pass_and_warnings_before_an_ok_do_not_fail():
    report = TableCheck()

    interpret(
        [
            ("shop.orders", "check", "status", "OK"),
            ("shop.legacy", "check", "status", "Table is already up to date"),
            ("shop.events", "check", "warning", "1 client is using or hasn't closed the table"),
            ("shop.events", "check", "status", "OK"),
        ],
        report,
    )

    assert (report.checked, report.problems, report.unsupported) == (3, [], [])


def test_an_error_row_or_a_bad_last_status_fails_the_table():
    report = TableCheck()

    interpret(
        [
            ("shop.orders", "check", "Error", "Table 'orders' is marked as crashed"),
            ("shop.orders", "check", "status", "Operation failed"),
            ("shop.legacy", "check", "status", "Corrupt"),
        ],
        report,
    )

    assert report.problems == [
        "shop.orders: Table 'orders' is marked as crashed",
        "shop.legacy: Corrupt",
    ]


def test_an_engine_that_cannot_be_checked_is_counted_apart():
    report = TableCheck()

    interpret(
        [("shop.hot", "check", "note", "The storage engine for the table doesn't support check")],
        report,
    )

    assert (report.checked, report.unsupported) == (0, ["shop.hot"])


def test_the_reason_names_ten_problems_and_counts_the_rest():
    text = problem_text([f"db.t{n}: Corrupt" for n in range(13)])

    assert text.startswith("db.t0: Corrupt; db.t1: Corrupt")
    assert text.endswith("db.t9: Corrupt; and 3 more")


def _server(tmp_path: Path) -> ScratchServer:
    directory = tmp_path / "drill-abcd"
    directory.mkdir()
    owner = (os.getuid(), os.getgid())
    return ScratchServer(directory, "/usr/sbin/mariadbd", for_name("mariadb", "10.11.6"), owner)


def test_the_scratch_server_reads_no_option_file_and_listens_on_no_port(tmp_path: Path):
    server = _server(tmp_path)

    argv = server.server_args()

    assert argv[:2] == ["/usr/sbin/mariadbd", "--no-defaults"]
    assert "--skip-networking" in argv
    assert "--skip-log-bin" in argv
    assert "--event-scheduler=DISABLED" in argv
    assert not [arg for arg in argv if arg.startswith(("--port", "--bind-address"))]
    paths = [arg.split("=", 1)[1] for arg in argv if arg.startswith(("--datadir", "--socket"))]
    assert all(path.startswith(str(server.directory)) for path in paths)
    assert int(server.server_id) > 4_000_000_000
    assert server.conn.password not in " ".join(argv)


def test_a_scratch_root_inside_the_live_datadir_is_refused(tmp_path: Path):
    datadir = tmp_path / "mysql"
    datadir.mkdir()

    with pytest.raises(DrillRefusedError, match="inside the live datadir"):
        ScratchRoot(datadir / "drills", datadir)


def test_only_marked_scratch_directories_are_removed_as_stale(tmp_path: Path):
    root, datadir = tmp_path / "drills", tmp_path / "mysql"
    datadir.mkdir()
    (root / "drill-old1").mkdir(parents=True)
    (root / "drill-old1" / MARKER).write_text("")
    (root / "drill-notours").mkdir()

    with ScratchRoot(root, datadir) as scratch:
        assert scratch.removed == ["drill-old1"]
        with pytest.raises(DrillRefusedError, match="another drill is running"):
            ScratchRoot(root, datadir).__enter__()

    assert sorted(path.name for path in root.iterdir()) == ["drill-notours", "drill.lock"]


def test_a_scratch_root_too_deep_for_a_socket_is_refused(tmp_path: Path):
    with pytest.raises(DrillRefusedError, match="too deep for a Unix socket"):
        ScratchRoot(tmp_path / ("d" * 100), tmp_path / "mysql")


@pytest.mark.parametrize(
    ("flavour", "version", "words"),
    [
        ("mysql", "10.11.6", "is a mysql backup and this server runs mariadb"),
        ("mariadb", "10.6.18", "physical backups start only on the same major.minor version"),
    ],
)
def test_a_physical_backup_of_another_server_is_refused(flavour: str, version: str, words: str):
    meta = dataclasses.replace(backup("full-1", 1), flavour=flavour, server_version=version)

    with pytest.raises(DrillRefusedError, match=words):
        check_match(meta, for_name("mariadb", "10.11.6-MariaDB"))


def test_a_logical_backup_loads_into_any_version():
    meta = dataclasses.replace(backup("dump-1", 1, kind="logical"), server_version="10.6.18")

    check_match(meta, for_name("mariadb", "10.11.6-MariaDB"))


def test_a_physical_backups_own_option_file_replaces_no_defaults(tmp_path: Path):
    server = _server(tmp_path)
    server.create()
    (server.datadir / "backup-my.cnf").write_text("[mysqld]\ninnodb_page_size=32768\n")

    argv = server.server_args()

    assert argv[1] == f"--defaults-file={server.datadir / 'backup-my.cnf'}"
    assert "--no-defaults" not in argv


def test_an_existing_scratch_root_keeps_its_mode_and_a_new_one_is_passable(tmp_path: Path):
    existing, datadir = tmp_path / "srv", tmp_path / "mysql"
    existing.mkdir(mode=0o750)
    datadir.mkdir()

    with ScratchRoot(existing, datadir):
        pass
    with ScratchRoot(tmp_path / "new", datadir):
        pass

    assert existing.stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o711


@pytest.fixture
def passable_tmp() -> Iterator[Path]:
    """A directory everyone may pass, under /tmp (pytest's own base is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="drill-passable-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_scratch_root_the_servers_user_cannot_reach_is_refused(passable_tmp: Path):
    closed = passable_tmp / "closed"
    closed.mkdir(mode=0o700)
    (closed / "drills").mkdir(mode=0o711)
    nobody = (65534, 65534)

    with pytest.raises(DrillRefusedError, match=r"uid 65534\) cannot reach .*closed is mode 0700"):
        check_passable(closed / "drills", nobody)
    closed.chmod(0o711)
    check_passable(closed / "drills", nobody)
    check_passable(closed / "drills", (os.getuid(), os.getgid()))  # ourselves: always
