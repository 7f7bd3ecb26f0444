"""Throwaway MariaDB servers for the workload tests, the benchmarks and the demo.

Each server lives in its own directory (`data/`, `binlog/` outside the data directory,
socket, pid, error log, a 0600 client defaults file) and listens on its own loopback port;
a cold start takes under a second. The server runs in the foreground as a child process
whose PID we keep.

`root` has a password (`MariaDBServer.password`, the same default for every test server so
a backup taken on one server restores onto another) and can log in over TCP from
127.0.0.1 as well as over the socket. The password only ever travels in the 0600
`defaults_file`, never on a command line.

`MariaDBServer` satisfies the engine's `ServerControl` protocol structurally (`datadir`,
`start()`, `stop()`, `is_running()`), so a restore test hands it to the engine as is.

Usage::

    server = MariaDBServer(Path("/tmp/db1"), free_port())
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

from tests.infra.net import free_port

__all__ = ["TEST_ROOT_PASSWORD", "MariaDBError", "MariaDBServer", "free_port"]

logger = logging.getLogger(__name__)

TEST_ROOT_PASSWORD = "root-test-password"  # a throwaway server on loopback


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path is None and Path(f"/usr/sbin/{name}").exists():
            path = f"/usr/sbin/{name}"
        if path:
            return path
    raise FileNotFoundError(f"none of {names} is installed (run `make deps`)")


class MariaDBError(RuntimeError):
    """A statement run through the `mariadb` client failed."""


@dataclass
class MariaDBServer:
    """One MariaDB server under `base_dir`, listening on 127.0.0.1:`port`.

    Attributes:
        base_dir: root of everything this server writes.
        port: TCP port on 127.0.0.1.
        password: root's password (set when the data directory is initialized).
        server_id: the replication server id (binlogs on, ROW format, GTID strict mode).
        extra_args: more `mariadbd` options.
    """

    base_dir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default=TEST_ROOT_PASSWORD, repr=False)
    server_id: int = 1
    extra_args: tuple[str, ...] = ()
    user: str = field(default="root", init=False)
    host: str = field(default="127.0.0.1", init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    # -- paths -----------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.base_dir / "data"

    @property
    def binlog_dir(self) -> Path:
        """Directory of the binary logs (basename `bin`), outside the data directory."""
        return self.base_dir / "binlog"

    @property
    def socket(self) -> Path:
        """The server's Unix socket."""
        return self.base_dir / "mysqld.sock"

    @property
    def error_log(self) -> Path:
        """The server's error log."""
        return self.base_dir / "error.log"

    @property
    def pid_file(self) -> Path:
        """The server's pid file."""
        return self.base_dir / "mysqld.pid"

    @property
    def defaults_file(self) -> Path:
        """A 0600 `[client]` option file: root, its password, 127.0.0.1 and the port."""
        path = self.base_dir / "client.cnf"
        if not path.exists():
            self.base_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(
                "[client]\n"
                f"user={self.user}\n"
                f"password={self.password}\n"
                f"host={self.host}\n"
                f"port={self.port}\n"
                f"socket={self.socket}\n"
            )
        return path

    @property
    def pid(self) -> int | None:
        """PID of the server process, when it runs."""
        return self._proc.pid if self._proc is not None and self.is_running() else None

    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def server_args(self) -> list[str]:
        """The `mariadbd` command line."""
        return [
            _binary("mariadbd", "mysqld"),
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--log-bin={self.binlog_dir}/bin",
            f"--server-id={self.server_id}",
            "--binlog-format=ROW",
            "--gtid-strict-mode=ON",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=48M",
            "--skip-name-resolve",
            *self.extra_args,
        ]

    def client_args(self, database: str | None = None) -> list[str]:
        """A `mariadb` client command line for root over TCP (password in the 0600 file)."""
        argv = [_binary("mariadb", "mysql"), f"--defaults-file={self.defaults_file}"]
        if database:
            argv.append(f"--database={database}")
        return argv

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until root can log in over TCP.

        Initializes the data directory the first time; does nothing when already running.
        """
        if self.is_running():
            return
        started = time.monotonic()
        fresh = not (self.datadir / "mysql").exists()
        if fresh:
            self._initialize()
        self.binlog_dir.mkdir(parents=True, exist_ok=True)
        self._spawn()
        self._wait_ready(timeout)
        if fresh:
            self._set_root_password()
        self._wait_tcp_login(timeout)
        logger.info("mariadb up in %.1f s on port %d", time.monotonic() - started, self.port)

    def stop(self, timeout: float = 60) -> None:
        """Shut the server down cleanly (SIGTERM, wait); SIGKILL if it hangs."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("mariadbd on port %d ignored SIGTERM; killing it", self.port)
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
        self.start()

    def wipe(self) -> None:
        """Stop the server, delete its data and binlogs (`start()` re-initializes)."""
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.rmtree(self.binlog_dir, ignore_errors=True)

    # -- SQL -------------------------------------------------------------------------

    def query(self, sql: str, database: str | None = None) -> list[tuple[str, ...]]:
        """Run SQL (one or more statements) as root; return the rows of the output.

        Values are strings as the client prints them in batch mode (SQL NULL is "NULL").

        Raises:
            MariaDBError: the client reported an error.
        """
        proc = subprocess.run(
            [*self.client_args(database), "--batch", "--skip-column-names"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            raise MariaDBError(proc.stderr.strip())
        return [tuple(line.split("\t")) for line in proc.stdout.splitlines()]

    def execute(self, sql: str, database: str | None = None) -> list[tuple[str, ...]]:
        """Alias of `query` for statements run for their effect."""
        return self.query(sql, database)

    def scalar(self, sql: str, database: str | None = None) -> str:
        """Run a query returning exactly one value; return it."""
        rows = self.query(sql, database)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise MariaDBError(f"expected one value, got {rows!r}")
        return rows[0][0]

    def checksum_tables(self, database: str) -> dict[str, str]:
        """`CHECKSUM TABLE` of every base table of `database`: {table name: checksum}."""
        tables = self.query(
            "SELECT table_name FROM information_schema.tables "  # noqa: S608 - test helper
            f"WHERE table_schema = '{database}' AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        )
        if not tables:
            return {}
        names = ", ".join(f"`{database}`.`{name}`" for (name,) in tables)
        return {row[0].split(".", 1)[1]: row[1] for row in self.query(f"CHECKSUM TABLE {names}")}

    # -- internals -------------------------------------------------------------------

    @property
    def tmpdir(self) -> Path:
        """The server's own temporary directory (a shared /tmp made bootstrap flaky)."""
        return self.base_dir / "tmp"

    def _initialize(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(exist_ok=True)
        proc = subprocess.run(
            [
                _binary("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--tmpdir={self.tmpdir}",
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

    def _spawn(self) -> None:
        out = (self.base_dir / "mariadbd.out").open("ab")
        self._proc = subprocess.Popen(
            self.server_args(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        out.close()

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the server answers on its socket (any answer, even access denied)."""
        admin = _binary("mariadb-admin", "mysqladmin")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(f"mariadbd exited with {code}:\n{self._tail_error_log()}")
            ping = subprocess.run(
                [admin, "--no-defaults", f"--socket={self.socket}", "--user=ping",
                 "--connect-timeout=1", "ping"],
                capture_output=True,
                check=False,
            )  # fmt: skip
            if ping.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd not ready after {timeout} s:\n{self._tail_error_log()}")

    def _set_root_password(self) -> None:
        # Freshly initialized: root@localhost has no password yet, reachable on the socket.
        sql = (
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';"
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{self.password}';"
            f"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{self.password}';"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
            "FLUSH PRIVILEGES;"
        )
        proc = subprocess.run(
            [_binary("mariadb", "mysql"), "--no-defaults", f"--socket={self.socket}", "-uroot"],
            input=sql,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"could not set root's password: {proc.stderr.strip()}")

    def _wait_tcp_login(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.query("SELECT 1")
                return
            except MariaDBError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _tail_error_log(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.error_log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no error log)"
