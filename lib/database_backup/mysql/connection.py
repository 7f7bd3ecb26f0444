"""How the engine connects to the database server, and the 0600 client defaults file.

Secrets never travel on a command line: every tool gets `--defaults-extra-file=<file>`
pointing at a file created with mode 0600 and removed when the caller is done with it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EngineError

# Option groups written to the defaults file: `client` is read by the mysql/mariadb client,
# the dump and binlog tools and mariabackup; `xtrabackup` is the group Percona XtraBackup
# reads its connection options from (mariabackup reads it too, so the values agree).
_GROUPS = ("client", "xtrabackup")


class QueryError(EngineError):
    """A query through the command-line client failed (message without secrets)."""


@dataclass(frozen=True, kw_only=True)
class ConnectionSpec:
    """Where and as whom to connect to the MySQL/MariaDB server.

    Attributes:
        user: account name (needs the backup privileges: RELOAD, PROCESS, LOCK TABLES,
            BINLOG MONITOR / REPLICATION CLIENT, and BACKUP_ADMIN on MySQL 8).
        password: the account's password; never shown in reprs or logs.
        host: TCP host, ignored when `socket` is set.
        port: TCP port.
        socket: path of the server's Unix socket, preferred over TCP when set.
    """

    user: str = "root"
    password: str = field(default="", repr=False)
    host: str = "127.0.0.1"
    port: int = 3306
    socket: str | None = None

    def defaults_text(self) -> str:
        """Return the option-file text with the connection options (contains the password)."""
        lines: list[str] = []
        for group in _GROUPS:
            lines.append(f"[{group}]")
            lines.append(f"user={_quote(self.user)}")
            if self.password:
                lines.append(f"password={_quote(self.password)}")
            if self.socket:
                lines.append("host=localhost")
                lines.append(f"socket={_quote(self.socket)}")
            else:
                lines.append(f"host={_quote(self.host)}")
                lines.append(f"port={int(self.port)}")
            lines.append("")
        return "\n".join(lines)

    @contextlib.contextmanager
    def defaults_file(
        self, directory: str | os.PathLike[str] | None = None
    ) -> Generator[Path, None, None]:
        """Write a 0600 defaults file in `directory` and remove it afterwards.

        Args:
            directory: where to create the file (a private work directory); the system
                temporary directory when None.

        Yields:
            The path to pass as `--defaults-extra-file=<path>` (always the first option).
        """
        fd, name = tempfile.mkstemp(prefix=".client-", suffix=".cnf", dir=directory)
        path = Path(name)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.defaults_text())
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _quote(value: str) -> str:
    """Quote a value for a MySQL option file (double quotes, backslash escapes)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def run_query(
    conn: ConnectionSpec,
    sql: str,
    *,
    client: str,
    workdir: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
) -> list[tuple[str, ...]]:
    """Run `sql` with the command-line client and return the rows as tuples of strings.

    Args:
        conn: where to connect.
        sql: the statement(s); never put secrets in it (it is passed on stdin, not argv).
        client: the client program (`mariadb` or `mysql`).
        workdir: where the temporary defaults file goes.
        timeout: seconds before giving up.

    Raises:
        QueryError: the client failed; the message carries the client's error text.
    """
    with conn.defaults_file(workdir) as defaults:
        argv: Sequence[str] = [
            client,
            f"--defaults-extra-file={defaults}",
            "--batch",
            "--skip-column-names",
            "--raw",
            "--connect-timeout=10",
        ]
        try:
            proc = subprocess.run(
                argv,
                input=sql,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise QueryError(f"the database client {client!r} is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise QueryError(f"the query did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"exit code {proc.returncode}"
        raise QueryError(f"query failed: {message}")
    return [tuple(line.split("\t")) for line in proc.stdout.splitlines()]
