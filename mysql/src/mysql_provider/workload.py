"""The database server on the unit: packages, configuration, service, backup user (no ops).

`Server` is what the charm talks to; tests swap it for one that points at a throwaway
server. MariaDB (`mariadb-server`, Mariabackup) is the default flavour; MySQL
(`mysql-server`, Percona XtraBackup) is selectable, and refused when the installed
XtraBackup cannot back up the installed MySQL (`versions`). Packages are installed through
charmlibs-apt (`packages`). Binary logs are always on, in row format with GTIDs, in a
directory outside the data directory so a restore that swaps the data directory keeps them.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from database_backup import joblog
from database_backup.jobs import hook_python_path

from . import packages, versions
from .shipping import Shipper

logger = logging.getLogger(__name__)

BACKUP_USER = "charm-backup"
STATE_DIR = Path("/var/lib/mysql-server-charm")
DATADIR = Path("/var/lib/mysql")
BINLOG_DIR = Path("/var/lib/mysql-binlog")
SOCKET = "/run/mysqld/mysqld.sock"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class WorkloadError(Exception):
    """Installing, configuring or talking to the server failed; the message says what."""


@dataclasses.dataclass(frozen=True)
class Flavour:
    """How one server flavour is packaged and configured."""

    name: str
    packages: tuple[str, ...]
    service: str
    config_file: str
    section: str
    client: str
    server_binary: str
    backup_tools: tuple[str, ...]  # the first one found is the one the engine uses


FLAVOURS = {
    "mysql": Flavour(
        name="mysql",
        packages=("mysql-server", "mysql-client", "percona-xtrabackup", "zstd"),
        service="mysql",
        config_file="/etc/mysql/mysql.conf.d/zz-mysql-server-charm.cnf",
        section="mysqld",
        client="mysql",
        server_binary="mysqld",
        backup_tools=("xtrabackup",),
    ),
    "mariadb": Flavour(
        name="mariadb",
        packages=("mariadb-server", "mariadb-client", "mariadb-backup", "zstd"),
        service="mariadb",
        config_file="/etc/mysql/mariadb.conf.d/99-mysql-server-charm.cnf",
        section="mariadb",
        client="mariadb",
        server_binary="mariadbd",
        backup_tools=("mariabackup", "mariadb-backup"),
    ),
}


def render_config(flavour: Flavour, *, server_id: int, binlog_days: int) -> str:
    """The server's option file: binlogs on (ROW, GTIDs), outside the data directory."""
    lines = [
        "# Written by the mysql-server charm; changes are overwritten.",
        f"[{flavour.section}]",
        f"server_id = {server_id}",
        f"log_bin = {BINLOG_DIR}/bin",
        "binlog_format = ROW",
        "log_slave_updates = ON",
        f"binlog_expire_logs_seconds = {binlog_days * 86400}",
    ]
    if flavour.name == "mysql":
        lines += ["gtid_mode = ON", "enforce_gtid_consistency = ON"]
    else:
        lines += ["gtid_strict_mode = ON"]
    return "\n".join(lines) + "\n"


def backup_grants(flavour: str) -> str:
    """The privileges of the backup user: read and copy, never write data."""
    common = "PROCESS, RELOAD, LOCK TABLES, SELECT, SHOW VIEW, TRIGGER, EVENT, REPLICATION SLAVE"
    if flavour == "mysql":
        return f"BACKUP_ADMIN, REPLICATION CLIENT, SHOW_ROUTINE, {common}"
    return f"BINLOG MONITOR, {common}"


def sql_string(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def backup_user_sql(flavour: str, password: str, host: str = "localhost") -> str:
    """Statements that create or update the backup user (idempotent)."""
    account = f"{sql_string(BACKUP_USER)}@{sql_string(host)}"
    secret = sql_string(password)
    return (
        f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {secret};\n"
        f"ALTER USER {account} IDENTIFIED BY {secret};\n"
        f"GRANT {backup_grants(flavour)} ON *.* TO {account};\n"
    )


class Server:
    """The server installed from the distribution's packages and run by systemd.

    Args:
        flavour: "mysql" or "mariadb".
        run: runs a command (tests inject a recorder).
        root: prefix for the files the charm writes (tests use a temporary directory).
    """

    def __init__(
        self, flavour: str, *, run: Runner = subprocess.run, root: Path = Path("/")
    ) -> None:
        if flavour not in FLAVOURS:
            raise WorkloadError(f"unknown flavour {flavour!r}: use mysql or mariadb")
        self.flavour = FLAVOURS[flavour]
        self._run = run
        self._root = root

    # -- paths and descriptions for the engine ---------------------------------------

    @property
    def state_dir(self) -> Path:
        """The charm's own directory on the unit (jobs, shipping)."""
        return self._path(STATE_DIR)

    @property
    def job_log(self) -> Path:
        """The file the job workers append their start and end lines to (for Loki)."""
        return self._path(joblog.DEFAULT_PATH)

    @property
    def binlog_dir(self) -> Path:
        """Where the server writes its binary logs."""
        return BINLOG_DIR

    def backup_connection(self, password: str) -> dict[str, Any]:
        """The engine's `connection` for backups: the backup user over the socket."""
        return {"user": BACKUP_USER, "password": password, "socket": SOCKET}

    def admin_connection(self) -> dict[str, Any]:
        """The engine's `connection` for restores: root over the socket (socket auth)."""
        return {"user": "root", "password": "", "socket": SOCKET}

    def server_section(self) -> dict[str, Any]:
        """The engine's `server`: how to stop and start the server, and its datadir."""
        return {"type": "systemd", "unit": self.flavour.service, "datadir": str(DATADIR)}

    def shipper(self) -> Shipper:
        """The binlog shipping timer of this unit."""
        return Shipper(
            self.state_dir / "shipping",
            systemd_dir=self._path(Path("/etc/systemd/system")),
            run=self._run,
            python_path=hook_python_path(),
            binlog_dir=self.binlog_dir,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def install(self) -> None:
        """Install the flavour's packages (server, client, backup tool, zstd) with apt.

        Raises:
            WorkloadError: apt failed (e.g. a held dpkg lock); calling again retries.
        """
        try:
            packages.install(self.flavour.packages)
        except packages.PackageInstallError as exc:
            raise WorkloadError(
                f"could not install {', '.join(self.flavour.packages)}: {exc}"
            ) from exc

    def is_installed(self) -> bool:
        """Whether the server binary is there."""
        return any(
            self._path(Path(directory) / self.flavour.server_binary).exists()
            for directory in ("/usr/sbin", "/usr/bin")
        )

    def configure(self, *, server_id: int, binlog_days: int) -> bool:
        """Write the option file; return True when it changed (the server needs a restart)."""
        path = self._path(Path(self.flavour.config_file))
        content = render_config(self.flavour, server_id=server_id, binlog_days=binlog_days)
        binlogs = self._path(BINLOG_DIR)
        binlogs.mkdir(parents=True, exist_ok=True)
        if self._root == Path("/"):
            self._check(["chown", "mysql:mysql", str(binlogs)], "give the binlog dir to mysql")
        if path.exists() and path.read_text() == content:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return True

    def restart(self) -> None:
        """Restart the server (systemd waits until it is up)."""
        self._check(["systemctl", "restart", self.flavour.service], "restart the server")

    def start(self) -> None:
        """Start the server unless it runs."""
        self._check(["systemctl", "start", self.flavour.service], "start the server")

    def is_running(self) -> bool:
        """Whether systemd says the server is active."""
        try:
            result = self._run(
                ["systemctl", "is-active", "--quiet", self.flavour.service],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0

    def version(self) -> str:
        """The server's version line (`mysqld --version`), or "" when unknown."""
        return self._version_output(self.flavour.server_binary)

    def tool_versions(self) -> tuple[str, str]:
        """What the backup tool and the server print for `--version` ("" when absent)."""
        outputs = (self._version_output(binary) for binary in self.flavour.backup_tools)
        tool = next((output for output in outputs if output), "")
        return tool, self.version()

    def check_tools(self) -> str:
        """Why the installed backup tool cannot back up the installed server ("" if it can)."""
        return versions.check_pair(self.flavour.name, *self.tool_versions())

    def ensure_backup_user(self, password: str) -> None:
        """Create or update the backup user (as root over the socket; SQL on stdin)."""
        self.admin_sql(backup_user_sql(self.flavour.name, password))

    def admin_sql(self, sql: str) -> str:
        """Run SQL as the administrator; the statements travel on stdin, never in argv."""
        return self._check(
            [self.flavour.client, "--protocol=socket", f"--socket={SOCKET}", "-u", "root"],
            "run SQL as root",
            input=sql,
        )

    # -- helpers -----------------------------------------------------------------------

    def _path(self, path: Path) -> Path:
        return self._root / path.relative_to("/")

    def _version_output(self, binary: str) -> str:
        """`binary --version` (stdout and stderr: the backup tools print to stderr)."""
        for candidate in (binary, f"/usr/sbin/{binary}"):
            try:
                result = self._run(
                    [candidate, "--version"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
            except FileNotFoundError:
                continue
            except (OSError, subprocess.TimeoutExpired):
                return ""
            if result.returncode == 0:
                return f"{result.stdout}\n{result.stderr}".strip()
            return ""
        return ""

    def _check(self, argv: list[str], what: str, **kwargs: Any) -> str:
        try:
            result = self._run(
                argv, capture_output=True, text=True, timeout=1800, check=False, **kwargs
            )
        except FileNotFoundError as exc:
            raise WorkloadError(f"cannot {what}: {argv[0]} is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise WorkloadError(f"cannot {what}: no answer in {exc.timeout:.0f} s") from exc
        if result.returncode != 0:
            lines = (result.stderr or result.stdout or "").strip().splitlines()
            raise WorkloadError(f"cannot {what}: {lines[-1] if lines else result.returncode}")
        return result.stdout
