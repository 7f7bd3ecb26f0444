"""Throwaway MariaDB servers for the workload tests.

Each server lives in its own directory (data, socket, binlogs, pid, error log) and listens
on its own loopback port; start takes about 3 s. The server runs in the foreground as a
child process whose PID we keep.

Accounts: `root` (socket, no password) for administration, and a TCP account
`MariaDBServer.user`/`MariaDBServer.password` with all privileges, for code that connects
like a charm would (host 127.0.0.1, port, user, password).

Usage::

    server = MariaDBServer(Path("/tmp/db1"))
    server.start()
    server.execute("CREATE DATABASE shop")
    assert server.query("SELECT 1 + 1") == [("2",)]
    server.stop()
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.infra.ceph import free_port

logger = logging.getLogger(__name__)


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if path:
            return path
    raise FileNotFoundError(f"none of {names} is installed (run `make deps`)")


class MariaDBError(RuntimeError):
    """A statement run through the `mariadb` client failed."""


@dataclass
class MariaDBServer:
    """One MariaDB server under `basedir`, listening on 127.0.0.1:`port`.

    Attributes:
        basedir: root of everything this server writes.
        port: TCP port on 127.0.0.1.
        user: an account with all privileges, reachable over TCP with `password`.
        password: its password.
        server_id: the replication server id (binlogs are on, ROW format).
    """

    basedir: Path
    port: int = field(default_factory=free_port)
    user: str = "backup"
    password: str = "backup-pass"
    server_id: int = 1
    extra_args: tuple[str, ...] = ()
    _proc: subprocess.Popen[bytes] | None = None

    # -- paths -----------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.basedir / "data"

    @property
    def socket(self) -> Path:
        """The server's Unix socket."""
        return self.basedir / "mysqld.sock"

    @property
    def binlog_dir(self) -> Path:
        """Directory of the binary logs (basename `bin`)."""
        return self.basedir / "binlog"

    @property
    def error_log(self) -> Path:
        """The server's error log."""
        return self.basedir / "error.log"

    @property
    def pid_file(self) -> Path:
        """The server's pid file."""
        return self.basedir / "mysqld.pid"

    @property
    def host(self) -> str:
        """Host to connect to over TCP."""
        return "127.0.0.1"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the server process, when it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    def server_args(self) -> list[str]:
        """The `mariadbd` command line (also what a restore test restarts with)."""
        return [
            _binary("mariadbd", "mysqld"),
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--log-bin={self.binlog_dir}/bin",
            f"--server-id={self.server_id}",
            "--binlog-format=ROW",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=48M",
            "--skip-name-resolve",
            *self.extra_args,
        ]

    def client_args(self, *, tcp: bool = False, database: str | None = None) -> list[str]:
        """A `mariadb` client command line: root over the socket, or the TCP account."""
        argv = [_binary("mariadb", "mysql"), "--no-defaults"]
        if tcp:
            argv += [
                "--protocol=TCP",
                f"--host={self.host}",
                f"--port={self.port}",
                f"--user={self.user}",
                f"--password={self.password}",
            ]
        else:
            argv += [f"--socket={self.socket}", "--user=root"]
        if database:
            argv.append(f"--database={database}")
        return argv

    # -- lifecycle -------------------------------------------------------------------

    def initialize(self) -> None:
        """Create an empty data directory (`mariadb-install-db`)."""
        self.basedir.mkdir(parents=True, exist_ok=True)
        self.binlog_dir.mkdir(exist_ok=True)
        proc = subprocess.run(
            [
                _binary("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--user=root",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {proc.stderr or proc.stdout}")

    def start(self, timeout: float = 60) -> None:
        """Initialize (first time only), start the server and wait until it answers."""
        started = time.monotonic()
        first = not self.datadir.exists()
        if first:
            self.initialize()
        self.binlog_dir.mkdir(parents=True, exist_ok=True)
        self.start_server(timeout)
        if first:
            self.execute(
                f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{self.password}';"
                f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'%' WITH GRANT OPTION;"
            )
        logger.info("mariadb up in %.1f s on port %d", time.monotonic() - started, self.port)

    def start_server(self, timeout: float = 60) -> None:
        """Start `mariadbd` on the existing data directory and wait until it answers."""
        if self.running:
            return
        out = (self.basedir / "mariadbd.out").open("ab")
        self._proc = subprocess.Popen(
            self.server_args(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"mariadbd exited with {self._proc.returncode}:\n{self._tail_error_log()}"
                )
            ping = subprocess.run(
                [*self.client_args(), "--connect-timeout=1", "-e", "SELECT 1"],
                capture_output=True,
                check=False,
            )
            if ping.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd not ready after {timeout} s:\n{self._tail_error_log()}")

    def stop(self, timeout: float = 60) -> None:
        """Shut the server down cleanly (SIGTERM), SIGKILL if it hangs."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server (a crash)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None

    def restart(self) -> None:
        """Stop and start again on the same data directory."""
        self.stop()
        self.start_server()

    def wipe(self) -> None:
        """Stop the server, delete its data and binlogs (`start()` re-initializes)."""
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.rmtree(self.binlog_dir, ignore_errors=True)

    # -- SQL -------------------------------------------------------------------------

    def execute(self, sql: str, *, database: str | None = None) -> str:
        """Run SQL (one or more statements) as root; return the raw tab-separated output.

        Raises:
            MariaDBError: the client reported an error.
        """
        proc = subprocess.run(
            [*self.client_args(database=database), "--batch", "--skip-column-names"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise MariaDBError(proc.stderr.strip())
        return proc.stdout

    def query(self, sql: str, *, database: str | None = None) -> list[tuple[str | None, ...]]:
        """Run one query as root; return rows of strings (SQL NULL as None)."""
        out = self.execute(sql, database=database)
        rows = []
        for line in out.splitlines():
            rows.append(tuple(None if v == "NULL" else v for v in line.split("\t")))
        return rows

    def scalar(self, sql: str, *, database: str | None = None) -> str | None:
        """Run a query returning one value; return it."""
        rows = self.query(sql, database=database)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise MariaDBError(f"expected one value, got {rows!r}")
        return rows[0][0]

    def checksum(self, table: str) -> str | None:
        """`CHECKSUM TABLE db.table` (compare data before a backup and after a restore)."""
        rows = self.query(f"CHECKSUM TABLE {table}")
        return rows[0][1]

    def _tail_error_log(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.error_log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no error log)"
