"""Can the installed backup tool back up the installed server? (pure version logic)."""

from __future__ import annotations

import pytest
from mysql_provider.versions import check_pair, parse_server, parse_tool

# What the tools print (`--version`), as seen on real systems and in vendors' docs.
XB_24 = (
    "xtrabackup: recognized server arguments: --datadir=/var/lib/mysql\n"
    "xtrabackup version 2.4.29 based on MySQL server 5.7.44 Linux (x86_64) (revision id: 2e6c0951)"
)
XB_8028 = (
    "xtrabackup version 8.0.28-21 based on MySQL server 8.0.28 Linux (x86_64) (revision id: a)"
)
XB_8035 = (
    "xtrabackup version 8.0.35-30 based on MySQL server 8.0.35 Linux (x86_64) (revision id: b)"
)
XB_840 = "xtrabackup version 8.4.0-1 based on MySQL server 8.4.0 Linux (x86_64) (revision id: c)"
MARIABACKUP_1011 = "mariabackup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)"
MARIABACKUP_106 = "mariabackup based on MariaDB server 10.6.16-MariaDB debian-linux-gnu (x86_64)"
MARIADB_BACKUP_114 = "mariadb-backup based on MariaDB server 11.4.2-MariaDB Linux (x86_64)"
MYSQL_8040 = "mysqld  Ver 8.0.40-0ubuntu0.22.04.1 for Linux on x86_64 ((Ubuntu))"
MYSQL_8028 = "/usr/sbin/mysqld  Ver 8.0.28-0ubuntu0.20.04.3 for Linux on x86_64 ((Ubuntu))"
MYSQL_843 = "/usr/sbin/mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)"
MYSQL_5744 = "mysqld  Ver 5.7.44 for Linux on x86_64 (MySQL Community Server (GPL))"
PERCONA_8036 = "mysqld  Ver 8.0.36-28 for Linux on x86_64 (Percona Server (GPL), Release 28)"
MARIADBD_1011 = (
    "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
)
MYSQLD_MARIADB_106 = (
    "mysqld  Ver 10.6.16-MariaDB-0ubuntu0.22.04.1 for debian-linux-gnu on x86_64 (Ubuntu 22.04)"
)


@pytest.mark.parametrize(
    ("output", "kind", "version"),
    [
        (XB_24, "xtrabackup", (2, 4, 29)),
        (XB_8028, "xtrabackup", (8, 0, 28)),
        (XB_8035, "xtrabackup", (8, 0, 35)),
        (XB_840, "xtrabackup", (8, 4, 0)),
        (MARIABACKUP_1011, "mariabackup", (10, 11, 19)),
        (MARIABACKUP_106, "mariabackup", (10, 6, 16)),
        (MARIADB_BACKUP_114, "mariabackup", (11, 4, 2)),
    ],
)
def test_tool_versions_are_read(output: str, kind: str, version: tuple[int, int, int]) -> None:
    parsed = parse_tool(output)
    assert parsed is not None
    assert (parsed.kind, parsed.numbers) == (kind, version)


@pytest.mark.parametrize(
    ("output", "mariadb", "version"),
    [
        (MYSQL_8040, False, (8, 0, 40)),
        (MYSQL_8028, False, (8, 0, 28)),
        (MYSQL_843, False, (8, 4, 3)),
        (MYSQL_5744, False, (5, 7, 44)),
        (PERCONA_8036, False, (8, 0, 36)),
        (MARIADBD_1011, True, (10, 11, 19)),
        (MYSQLD_MARIADB_106, True, (10, 6, 16)),
    ],
)
def test_server_versions_are_read(output: str, mariadb: bool, version: tuple[int, ...]) -> None:
    parsed = parse_server(output)
    assert parsed is not None
    assert (parsed.mariadb, parsed.numbers) == (mariadb, version)


@pytest.mark.parametrize("output", ["", "command not found", "xtrabackup version", "Ver x.y"])
def test_garbage_is_not_a_version(output: str) -> None:
    assert parse_tool(output) is None
    assert parse_server(output) is None


@pytest.mark.parametrize(
    ("flavour", "tool", "server"),
    [
        ("mysql", XB_8035, MYSQL_8040),  # 8.0.34+ backs up any later 8.0 server
        ("mysql", XB_8035, PERCONA_8036),
        ("mysql", XB_8028, MYSQL_8028),
        ("mysql", XB_840, MYSQL_843),
        ("mysql", XB_24, MYSQL_5744),
        ("mariadb", MARIABACKUP_1011, MARIADBD_1011),
        ("mariadb", MARIABACKUP_106, MYSQLD_MARIADB_106),
    ],
)
def test_usable_pairs_pass(flavour: str, tool: str, server: str) -> None:
    assert check_pair(flavour, tool, server) == ""


@pytest.mark.parametrize(
    ("flavour", "tool", "server", "message"),
    [
        (
            "mysql", XB_24, MYSQL_8040,
            "percona-xtrabackup 2.4 cannot back up MySQL 8.0; install percona-xtrabackup-80 "
            "from Percona's repository, or deploy mysql-server with flavour=mariadb",
        ),
        (
            "mysql", XB_8035, MYSQL_843,
            "percona-xtrabackup 8.0 cannot back up MySQL 8.4; install percona-xtrabackup-84 "
            "from Percona's repository, or deploy mysql-server with flavour=mariadb",
        ),
        (
            "mysql", XB_840, MYSQL_8040,
            "percona-xtrabackup 8.4 cannot back up MySQL 8.0; install percona-xtrabackup-80 "
            "from Percona's repository, or deploy mysql-server with flavour=mariadb",
        ),
        (
            "mysql", XB_8035, MYSQL_5744,
            "percona-xtrabackup 8.0 cannot back up MySQL 5.7; install percona-xtrabackup-24 "
            "from Percona's repository, or deploy mysql-server with flavour=mariadb",
        ),
        (
            "mysql", XB_8028, MYSQL_8040,
            "percona-xtrabackup 8.0.28 cannot back up MySQL 8.0.40 (a newer server); install "
            "percona-xtrabackup-80 8.0.34 or later from Percona's repository",
        ),
        (
            "mysql", XB_8035, MYSQL_8028,
            "percona-xtrabackup 8.0.35 backs up MySQL 8.0.34 and later, not 8.0.28; upgrade "
            "MySQL, or install percona-xtrabackup-80 8.0.28 from Percona's repository",
        ),
        (
            "mariadb", MARIABACKUP_106, MARIADBD_1011,
            "mariabackup 10.6.16 cannot back up MariaDB 10.11.19 (they must be the same "
            "version); install the mariadb-backup package of the server's version",
        ),
        (
            "mysql", XB_8035, MARIADBD_1011,
            "the installed server is MariaDB 10.11.19, not MySQL; deploy mysql-server with "
            "flavour=mariadb",
        ),
        (
            "mariadb", MARIABACKUP_1011, MYSQL_8040,
            "the installed server is MySQL 8.0.40, not MariaDB; deploy mysql-server with "
            "flavour=mysql",
        ),
        (
            "mysql", MARIABACKUP_1011, MYSQL_8040,
            "flavour=mysql backs up with xtrabackup, but the backup tool found is mariabackup "
            "10.11.19; install percona-xtrabackup-80 from Percona's repository",
        ),
        (
            "mysql", "", MYSQL_8040,
            "no backup tool answered (xtrabackup --version); install percona-xtrabackup-80 "
            "from Percona's repository",
        ),
        (
            "mariadb", "", MARIADBD_1011,
            "no backup tool answered (mariabackup --version); install the mariadb-backup "
            "package of the server's version",
        ),
        (
            "mysql", XB_8035, "",
            "the server did not report its version (mysqld --version); see juju debug-log",
        ),
    ],
)  # fmt: skip
def test_unusable_pairs_say_what_to_do(flavour: str, tool: str, server: str, message: str) -> None:
    assert check_pair(flavour, tool, server) == message
