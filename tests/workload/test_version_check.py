"""The backup-tool/server version check on the real MariaDB installed here (Debian 12).

The charm's `Server` runs the real `mariabackup --version` and `mariadbd --version`; the
versions it reads must be the running server's own (`SELECT VERSION()`), and the pair must
pass. The same machine under `flavour=mysql` must be refused: its `mysqld` is MariaDB.
"""

from __future__ import annotations

from pathlib import Path

from mysql_provider.versions import parse_server, parse_tool
from mysql_provider.workload import Server

from tests.infra.mariadb import MariaDBServer


def test_the_installed_mariadb_and_mariabackup_pass_the_check(
    mariadb: MariaDBServer, tmp_path: Path
) -> None:
    server = Server("mariadb", root=tmp_path)
    tool_output, server_output = server.tool_versions()

    tool, found = parse_tool(tool_output), parse_server(server_output)
    assert tool is not None, tool_output
    assert found is not None, server_output
    assert tool.kind == "mariabackup"
    assert found.mariadb is True
    ((running,),) = mariadb.query("SELECT VERSION()")
    assert running.startswith(f"{found.text}-MariaDB")  # the server's own version
    assert tool.numbers == found.numbers
    assert server.check_tools() == ""


def test_the_mysql_flavour_is_refused_on_this_mariadb_machine(tmp_path: Path) -> None:
    message = Server("mysql", root=tmp_path).check_tools()

    assert message.startswith("the installed server is MariaDB 10."), message
    assert message.endswith("not MySQL; deploy mysql-server with flavour=mariadb")
