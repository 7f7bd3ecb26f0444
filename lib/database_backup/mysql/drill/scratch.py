"""The scratch server a drill restores into: its own directory, socket and account.

Everything lives in `<scratch root>/drill-<tag>/` (`data/`, `tmp/`, the socket, pid file
and error log), never in or beside the live datadir. The server is the live server's own
binary, started with `--no-defaults` (the live server's option files, port and socket are
never read; a physical backup's own `backup-my.cnf`, its InnoDB page size and data files,
is read instead when present) and:

- `--skip-networking` (no TCP at all: the socket only), no binary log, a server id of its
  own, replication threads and the event scheduler off (nothing changes the data after
  the restore), a small buffer pool;
- an `--init-file` that creates a throwaway account with a random password (the file is
  0600 and deleted once the server answers), so the checks need none of the live
  server's credentials.

`ScratchRoot` holds the root's lock for the whole drill (one drill at a time per root) and
removes what a killed drill left: a directory with the marker file, and the server still
running from it (found through the pid file we wrote, and only when its command line
names that directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from database_backup import stopping

from ..connection import ConnectionSpec, QueryError, run_query
from ..flavour import MYSQL, Flavour
from .errors import DrillFailedError, DrillRefusedError

logger = logging.getLogger(__name__)

PREFIX = "drill-"
MARKER = ".drill-scratch"
LOCK_NAME = "drill.lock"
PID_NAME = "scratch.pid"
SOCKET_NAME = "mysqld.sock"
#: the InnoDB settings a physical backup was taken with (mariabackup/xtrabackup write it)
BACKUP_OPTIONS = "backup-my.cnf"
#: the throwaway account the init file creates in the scratch server
DRILL_USER = "database-backup-drill"
#: Unix socket paths are limited to 107 bytes
_MAX_SOCKET = 107


def is_inside(path: Path, directory: Path) -> bool:
    """Whether `path` is `directory` or below it (both resolved)."""
    real, base = os.path.realpath(path), os.path.realpath(directory)
    return real == base or real.startswith(base.rstrip("/") + "/")


class ScratchRoot:
    """The directory drills work in: locked for one drill, cleared of stale scratch dirs.

    Use as a context manager; `new_directory()` gives the drill's own directory.
    """

    def __init__(self, root: Path, live_datadir: Path) -> None:
        if is_inside(root, live_datadir):
            raise DrillRefusedError(
                f"the drill directory {root} is inside the live datadir {live_datadir}: "
                "choose a --scratch-root outside it"
            )
        self.root = Path(os.path.realpath(root))
        if len(str(self.root / f"{PREFIX}00000000" / SOCKET_NAME)) > _MAX_SOCKET:
            raise DrillRefusedError(
                f"the drill directory {root} is too deep for a Unix socket "
                f"(at most {_MAX_SOCKET} bytes): choose a shorter --scratch-root"
            )
        self._fd: int | None = None
        self.removed: list[str] = []

    def __enter__(self) -> ScratchRoot:
        try:
            if not self.root.is_dir():  # an existing directory (the admin's) keeps its mode
                self.root.mkdir(parents=True)
                self.root.chmod(0o711)  # the server's user may pass, not list
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise DrillRefusedError(f"cannot use the drill directory {self.root}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DrillRefusedError(
                f"another drill is running in {self.root}; wait for it to finish"
            ) from None
        self._fd = fd
        self.removed = self.remove_stale()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove_stale(self) -> list[str]:
        """Remove the scratch directories (and servers) of drills that were killed."""
        removed: list[str] = []
        for path in sorted(self.root.glob(f"{PREFIX}*")):
            if path.is_dir() and (path / MARKER).exists():
                _kill_leftover(path)
                shutil.rmtree(path, ignore_errors=True)
                logger.warning("removed the scratch directory of an interrupted drill: %s", path)
                removed.append(path.name)
        return removed

    def new_directory(self) -> Path:
        """A fresh, marked directory for this drill."""
        path = self.root / f"{PREFIX}{secrets.token_hex(4)}"
        path.mkdir(mode=0o700)
        (path / MARKER).write_text("a restore drill's scratch server; removed after it\n")
        return path


def check_passable(directory: Path, owner: tuple[int, int]) -> None:
    """Refuse a scratch root the server's user could not reach (it would fail to start).

    Every directory from `/` down to `directory` must be passable (`x`) by the owner's uid,
    its groups, or everyone. ACLs are not read.

    Raises:
        DrillRefusedError: naming the first directory in the way and what to do.
    """
    uid, gid = owner
    if uid == os.getuid() or uid == 0:
        return
    groups = _groups_of(uid, gid)
    for path in [*reversed(directory.parents), directory]:
        info = path.stat()
        mode = info.st_mode
        if info.st_uid == uid:
            passable = bool(mode & 0o100)
        elif info.st_gid in groups:
            passable = bool(mode & 0o010)
        else:
            passable = bool(mode & 0o001)
        if not passable:
            raise DrillRefusedError(
                f"the database server's user (uid {uid}) cannot reach the drill directory "
                f"{directory}: {path} is mode {mode & 0o777:04o}; make it passable "
                f"(chmod o+x {path}) or choose another --scratch-root"
            )


def _groups_of(uid: int, gid: int) -> set[int]:
    import pwd

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return {gid}
    return {gid, *os.getgrouplist(name, gid)}


def _kill_leftover(directory: Path) -> None:
    """SIGKILL the scratch server a killed drill left running from `directory`."""
    try:
        pid = int((directory / PID_NAME).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(directory).encode() not in cmdline:
        return  # the pid was reused by another process
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


class ScratchServer:
    """One scratch server in `directory`, run by `binary` as the datadir's owner.

    Args:
        directory: the drill's own directory (from `ScratchRoot.new_directory`).
        binary: the live server's `mariadbd`/`mysqld`.
        flavour: which server it is (a few options differ).
        owner: (uid, gid) the server runs as: the live datadir's owner.
    """

    def __init__(
        self, directory: Path, binary: str, flavour: Flavour, owner: tuple[int, int]
    ) -> None:
        self.directory = directory
        self.binary = binary
        self.flavour = flavour
        self.owner = owner
        self.server_id = 4_000_000_000 + secrets.randbelow(290_000_000)
        self.conn = ConnectionSpec(
            user=DRILL_USER, password=secrets.token_urlsafe(24), socket=str(self.socket)
        )
        self._proc: subprocess.Popen[bytes] | None = None
        if len(str(self.socket)) > _MAX_SOCKET:
            raise DrillRefusedError(
                f"the drill directory {directory} is too deep for a Unix socket "
                f"(at most {_MAX_SOCKET} bytes): choose a shorter --scratch-root"
            )

    @property
    def root_conn(self) -> ConnectionSpec:
        """A freshly initialised datadir's `root@localhost` (no password, the socket only).

        A dump's grants (`GRANT PROXY ...` among them) need root's privileges to be applied.
        """
        return ConnectionSpec(user="root", password="", socket=str(self.socket))

    # -- paths ---------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        """The scratch server's data directory."""
        return self.directory / "data"

    @property
    def socket(self) -> Path:
        """Its Unix socket (its only way in)."""
        return self.directory / SOCKET_NAME

    @property
    def work(self) -> Path:
        """A private directory for client defaults files, logs and downloads."""
        return self.directory / "work"

    @property
    def error_log(self) -> Path:
        """The server's error log."""
        return self.directory / "error.log"

    def _path(self, name: str) -> Path:
        return self.directory / name

    # -- set-up --------------------------------------------------------------------------

    def create(self) -> None:
        """Create the empty data, tmp and work directories."""
        for path in (self.datadir, self._path("tmp"), self.work):
            path.mkdir(mode=0o700, exist_ok=True)

    def give_to_owner(self) -> None:
        """Hand the directory (data included) to the server's user (the work dir stays ours)."""
        uid, gid = self.owner
        if (uid, gid) == (os.getuid(), os.getgid()):
            return
        for path in _walk(self.directory, skip=self.work):
            os.lchown(path, uid, gid)

    def initialise(self, timeout: float = 300.0) -> None:
        """Initialise an empty datadir (a logical drill loads its dump into it).

        Raises:
            DrillFailedError: the initialisation failed (the tool's output says why).
        """
        self.give_to_owner()
        if self.flavour.name == MYSQL:
            argv = [self.binary, "--no-defaults", "--initialize-insecure",
                    f"--datadir={self.datadir}", f"--user={self._user()}"]  # fmt: skip
        else:
            argv = [_install_db(self.binary), "--no-defaults", f"--datadir={self.datadir}",
                    f"--user={self._user()}", "--skip-test-db",
                    "--auth-root-authentication-method=normal"]  # fmt: skip
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DrillFailedError(f"could not initialise the scratch datadir: {exc}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise DrillFailedError(f"could not initialise the scratch datadir: {' '.join(tail)}")

    def _user(self) -> str:
        import pwd

        try:
            return pwd.getpwuid(self.owner[0]).pw_name
        except KeyError:
            return str(self.owner[0])

    def server_args(self) -> list[str]:
        """The scratch server's command line (no secret: the password is in the init file)."""
        tmp = self._path("tmp")
        argv = [
            self.binary,
            self._option_file(),
            f"--user={self._user()}",
            f"--datadir={self.datadir}",
            f"--tmpdir={tmp}",
            f"--socket={self.socket}",
            f"--pid-file={self._path('mysqld.pid')}",
            f"--log-error={self.error_log}",
            f"--init-file={self._path('init.sql')}",
            f"--secure-file-priv={tmp}",
            "--skip-networking",
            "--skip-log-bin",
            f"--server-id={self.server_id}",
            "--event-scheduler=DISABLED",
            "--innodb-buffer-pool-size=64M",
            "--skip-name-resolve",
        ]
        if self.flavour.name == MYSQL:
            argv += ["--skip-replica-start", "--mysqlx=OFF", "--persisted-globals-load=OFF"]
        else:
            argv += ["--skip-slave-start"]
        return argv

    def _option_file(self) -> str:
        """The backup's own `backup-my.cnf` when it has one, else no option file at all.

        A physical backup records there the InnoDB settings its files need (page size,
        data file path, undo tablespaces, checksums); it names no port, socket or path of
        the live server.
        """
        own = self.datadir / BACKUP_OPTIONS
        return f"--defaults-file={own}" if own.is_file() else "--no-defaults"

    # -- running -------------------------------------------------------------------------

    def start(self, timeout: float = 300.0) -> None:
        """Start the server and wait until the drill's account can log in.

        Raises:
            DrillFailedError: the server exited or did not answer in time (its error log's end).
        """
        self.give_to_owner()
        init = self._path("init.sql")
        _write_private(init, _init_sql(self.conn), self.owner)
        out = self._path("server.out").open("ab")
        try:
            self._proc = subprocess.Popen(
                self.server_args(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        except OSError as exc:
            init.unlink(missing_ok=True)
            raise DrillFailedError(
                f"could not start the scratch server {self.binary}: {exc}"
            ) from exc
        finally:
            out.close()
        self._path(PID_NAME).write_text(f"{self._proc.pid}\n")
        try:
            self._wait_answers(timeout)
        finally:
            init.unlink(missing_ok=True)

    def _wait_answers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise DrillFailedError(
                    f"the restored data did not start a server: {self.log_tail()}"
                )
            try:
                run_query(self.conn, "SELECT 1;", client=self.flavour.client_tool,
                          workdir=self.work, timeout=10)  # fmt: skip
                return
            except QueryError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise DrillFailedError(
            f"the scratch server did not answer within {timeout:.0f} s ({last}): {self.log_tail()}"
        )

    def log_tail(self, lines: int = 3) -> str:
        """The last error lines of the server's log (or what it printed)."""
        for path in (self.error_log, self._path("server.out")):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip().splitlines()
                errors = [line for line in text if "[ERROR]" in line] or text
                if errors:
                    return " | ".join(errors[-lines:])
        return "(no server log)"

    def is_running(self) -> bool:
        """Whether the scratch server runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 300.0) -> None:
        """Shut the server down (SIGTERM, then SIGKILL after `timeout` s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("the scratch server ignored SIGTERM; killing it")
                proc.kill()
                proc.wait(30)

    def remove(self) -> None:
        """Stop the server and delete the whole directory (a later SIGTERM waits for it)."""
        with stopping.holding():
            self.stop()
            shutil.rmtree(self.directory, ignore_errors=True)


def _walk(top: Path, *, skip: Path) -> Iterator[str]:
    yield str(top)
    for root, dirs, files in os.walk(top):
        dirs[:] = [name for name in dirs if Path(root, name) != skip]
        for name in [*dirs, *files]:
            yield os.path.join(root, name)


def _write_private(path: Path, text: str, owner: tuple[int, int]) -> None:
    """Write a 0600 file readable by the server's user only (it holds a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    if owner != (os.getuid(), os.getgid()):
        os.chown(path, *owner)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _init_sql(conn: ConnectionSpec) -> str:
    """The init file: the drill's account, one statement per line (MySQL reads it so)."""
    account = f"{_sql_string(conn.user)}@'localhost'"
    return (
        f"DROP USER IF EXISTS {account};\n"
        f"CREATE USER {account} IDENTIFIED BY {_sql_string(conn.password)};\n"
        f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;\n"
    )


def _install_db(binary: str) -> str:
    """`mariadb-install-db` beside the server's binary, else on PATH."""
    base = Path(binary).resolve().parent.parent
    for name in ("mariadb-install-db", "mysql_install_db"):
        for directory in (base / "bin", base / "scripts"):
            if (directory / name).exists():
                return str(directory / name)
        found = shutil.which(name)
        if found:
            return found
    return "mariadb-install-db"
