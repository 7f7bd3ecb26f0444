"""Can the installed backup tool back up the installed server? Decided from `--version` output.

Pure functions, no `ops`, no processes: the workload module runs the tools and hands their
output here. The rules, from the vendors' documentation:

- Percona XtraBackup's series must match MySQL's: 2.4 for MySQL 5.7, 8.0 for 8.0, 8.4 for
  8.4 (and each innovation release for its own series).
- Within 8.0, XtraBackup before 8.0.34 refuses a server newer than itself; 8.0.34 and later
  back up any 8.0 server from 8.0.34 on, and refuse older ones without an override.
- Mariabackup ships with the MariaDB server and must be the same version as the server.
"""

from __future__ import annotations

import dataclasses
import re

_XTRABACKUP = re.compile(r"\bxtrabackup version (\d+)\.(\d+)\.(\d+)")
_MARIABACKUP = re.compile(r"\bbased on MariaDB server (\d+)\.(\d+)\.(\d+)")
_SERVER = re.compile(r"\bVer (\d+)\.(\d+)\.(\d+)(\S*)")

#: which binaries each flavour uses (named in messages)
TOOLS = {"mysql": ("xtrabackup", "mysqld"), "mariadb": ("mariabackup", "mariadbd")}
_PERCONA_MIN_ANY_NEWER = 34  # XtraBackup 8.0.34+: backs up any later 8.0 server
_MARIADB_FIX = "install the mariadb-backup package of the server's version"


@dataclasses.dataclass(frozen=True)
class ToolVersion:
    """A backup tool and its version (major, minor, patch)."""

    kind: str  # "xtrabackup" or "mariabackup"
    numbers: tuple[int, int, int]

    @property
    def text(self) -> str:
        """The version as people write it."""
        return ".".join(str(n) for n in self.numbers)


@dataclasses.dataclass(frozen=True)
class ServerVersion:
    """A server's version (major, minor, patch) and whether it is MariaDB."""

    numbers: tuple[int, int, int]
    mariadb: bool

    @property
    def text(self) -> str:
        """The version as people write it."""
        return ".".join(str(n) for n in self.numbers)

    @property
    def product(self) -> str:
        """MariaDB or MySQL."""
        return "MariaDB" if self.mariadb else "MySQL"


def parse_tool(output: str) -> ToolVersion | None:
    """The backup tool named in `xtrabackup --version` / `mariabackup --version` output."""
    found = _XTRABACKUP.search(output)
    if found:
        return ToolVersion("xtrabackup", _numbers(found))
    found = _MARIABACKUP.search(output)
    if found:
        return ToolVersion("mariabackup", _numbers(found))
    return None


def parse_server(output: str) -> ServerVersion | None:
    """The server version in `mysqld --version` / `mariadbd --version` output."""
    found = _SERVER.search(output)
    if not found:
        return None
    return ServerVersion(_numbers(found), mariadb="mariadb" in found.group(4).lower())


def check_pair(flavour: str, tool_output: str, server_output: str) -> str:
    """Why the tool cannot back up the server, with what to do; "" when it can."""
    tool_name, server_name = TOOLS[flavour]
    server = parse_server(server_output)
    if server is None:
        return (
            f"the server did not report its version ({server_name} --version); see juju debug-log"
        )
    if server.mariadb != (flavour == "mariadb"):
        other = "mariadb" if server.mariadb else "mysql"
        return (
            f"the installed server is {server.product} {server.text}, not "
            f"{'MariaDB' if flavour == 'mariadb' else 'MySQL'}; deploy mysql-server with "
            f"flavour={other}"
        )
    fix = (
        _MARIADB_FIX
        if server.mariadb
        else f"install {_percona_package(server)} from Percona's repository"
    )
    tool = parse_tool(tool_output)
    if tool is None:
        return f"no backup tool answered ({tool_name} --version); {fix}"
    if tool.kind != tool_name:
        return (
            f"flavour={flavour} backs up with {tool_name}, but the backup tool found is "
            f"{tool.kind} {tool.text}; {fix}"
        )
    if server.mariadb:
        return _check_mariadb(tool, server)
    return _check_mysql(tool, server, fix)


def _check_mariadb(tool: ToolVersion, server: ServerVersion) -> str:
    if tool.numbers == server.numbers:
        return ""
    return (
        f"mariabackup {tool.text} cannot back up MariaDB {server.text} (they must be the same "
        f"version); {_MARIADB_FIX}"
    )


def _check_mysql(tool: ToolVersion, server: ServerVersion, fix: str) -> str:
    tool_series, server_series = tool.numbers[:2], server.numbers[:2]
    if _expected_series(server) != tool_series:
        return (
            f"percona-xtrabackup {_series(tool_series)} cannot back up MySQL "
            f"{_series(server_series)}; {fix}, or deploy mysql-server with flavour=mariadb"
        )
    if server_series != (8, 0):
        return ""
    tool_patch, server_patch = tool.numbers[2], server.numbers[2]
    if tool_patch < _PERCONA_MIN_ANY_NEWER and server_patch > tool_patch:
        return (
            f"percona-xtrabackup {tool.text} cannot back up MySQL {server.text} (a newer "
            f"server); install percona-xtrabackup-80 8.0.{_PERCONA_MIN_ANY_NEWER} or later from "
            "Percona's repository"
        )
    if tool_patch >= _PERCONA_MIN_ANY_NEWER and server_patch < _PERCONA_MIN_ANY_NEWER:
        return (
            f"percona-xtrabackup {tool.text} backs up MySQL 8.0.{_PERCONA_MIN_ANY_NEWER} and "
            f"later, not {server.text}; upgrade MySQL, or install percona-xtrabackup-80 "
            f"{server.text} from Percona's repository"
        )
    return ""


def _expected_series(server: ServerVersion) -> tuple[int, int]:
    """The XtraBackup series for a MySQL server: 2.4 for 5.x, else the server's own."""
    if server.numbers[0] == 5:
        return (2, 4)
    return (server.numbers[0], server.numbers[1])


def _percona_package(server: ServerVersion) -> str:
    major, minor = _expected_series(server)
    return f"percona-xtrabackup-{major}{minor}"


def _series(numbers: tuple[int, int]) -> str:
    return f"{numbers[0]}.{numbers[1]}"


def _numbers(found: re.Match[str]) -> tuple[int, int, int]:
    return (int(found.group(1)), int(found.group(2)), int(found.group(3)))
