"""Replaying binlogs through the server's own replication applier (MariaDB), in parallel.

The way myhoard applies binlogs: the files become the relay log of a named replication
connection whose IO thread never starts, and the SQL thread applies them with parallel
workers (`slave_parallel_threads`, the connection's optimistic parallel mode).

1. `prepare` checks the route can be used (MariaDB; `log_slave_updates` ON when the binary
   log is on, so the replayed transactions are logged as the client pipe logs them; no
   other replication connection running; the data directory here) and finds where the
   connection's relay logs go (a throwaway `CHANGE MASTER`, then `RESET SLAVE ... ALL`).
   Nothing is changed when it refuses: the client pipe runs instead.
2. A helper thread fetches each file (a download, verification and decoding when a
   callable is given), finds where the replay stops in it (`stop_point`: the first
   transaction at or after the stop moment), and stages it beside the relay logs (a hard
   link, or a copy cut at the stop), one file after another while the server applies.
3. The files staged so far form a batch: renamed to relay log names, listed in the relay
   log index, `CHANGE MASTER ... RELAY_LOG_FILE/RELAY_LOG_POS`, `START SLAVE SQL_THREAD`,
   then `MASTER_GTID_WAIT` for the batch's last GTIDs, watching `Last_SQL_Error`; then
   `RESET SLAVE ... ALL` (which deletes the relay files) and the next batch.
4. Always at the end, also after an error or SIGTERM: the connection stopped and removed,
   `server_id` (changed meanwhile when the binlogs carry the server's own id, whose events
   the applier would skip), `slave_parallel_threads` and `gtid_slave_pos` put back, and
   any staged file removed. The server is left a plain primary. A process killed meanwhile
   leaves the connection behind; the recovery's roll-back restarts the server on the
   previous data directory, which has none of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..connection import ConnectionSpec, QueryError, run_query
from ..errors import EngineError
from ..flavour import Flavour
from .stop_point import StopPoint, find_stop

logger = logging.getLogger(__name__)

#: the named replication connection the replay uses (no user connection is touched)
CONNECTION = "database_backup_replay"
#: the connection's master is never contacted: its IO thread is never started
_DUMMY_HOST = "replay.invalid"
#: parallel workers of the applier (optimistic mode: conflicts are retried in order)
PARALLEL_THREADS = 4
#: SHOW SLAVE STATUS columns (MariaDB 10.x)
_RELAY_LOG_FILE, _SQL_RUNNING, _LAST_SQL_ERROR, _EXEC_LOG_FILE = 7, 11, 37, 9
_WAIT_SECONDS = 0.5
_CHUNK = 1 << 20
_HIGHEST_SERVER_ID = 4294967295
#: the largest event the applier reads (a row of a large BLOB is one event): the most the
#: server allows; a limit set lower than the source wrote under stops it mid-replay
MAX_EVENT = 1 << 30


class ApplierUnavailable(EngineError):  # noqa: N818 - a reason, not a failure
    """The replication applier cannot be used here; the message says why."""


class ApplierError(EngineError):
    """The applier stopped on an error (the message has the server's `Last_SQL_Error`)."""


@dataclass(frozen=True)
class RelayPlace:
    """Where the replay connection's relay logs live and how the server names them.

    Attributes:
        directory: the directory of the relay log files.
        stem: file names without the number (e.g. `mysqld-relay-bin-database_backup_replay`).
        prefix: what the server writes before a file name in the index (e.g. `./`).
        owner: uid and gid the server's files have (staged files are given them).
    """

    directory: Path
    stem: str
    prefix: str
    owner: tuple[int, int]

    def relay(self, number: int) -> Path:
        """The relay log file with this number."""
        return self.directory / f"{self.stem}.{number:06d}"

    def staged(self, number: int) -> Path:
        """Where the n-th replayed file waits for its batch."""
        return self.directory / f"{self.stem}.staged-{number:06d}"

    @property
    def index(self) -> Path:
        """The relay log index file."""
        return self.directory / f"{self.stem}.index"


@dataclass(frozen=True)
class ServerSettings:
    """The server settings the replay changes, as they were."""

    server_id: int
    parallel_threads: int
    gtid_slave_pos: str
    max_event: int


@dataclass
class _Staged:
    name: str  # the binlog's own name (the connection's "master log" name)
    path: Path
    start: int
    point: StopPoint


@dataclass
class ApplyStats:
    """What the applier route did."""

    files: int = 0
    binlog_bytes: int = 0
    batches: int = 0
    transactions: int = 0
    gtids: dict[int, str] = field(default_factory=dict[int, str])


class _Session:
    def __init__(self, conn: ConnectionSpec, flavour: Flavour, workdir: Path) -> None:
        self.conn, self.flavour, self.workdir = conn, flavour, workdir

    def query(self, sql: str, *, timeout: float = 300) -> list[tuple[str, ...]]:
        try:
            return run_query(
                self.conn, sql, client=self.flavour.client_tool, workdir=self.workdir,
                timeout=timeout,
            )  # fmt: skip
        except QueryError as exc:
            raise ApplierError(str(exc)) from exc


def prepare(
    conn: ConnectionSpec, flavour: Flavour, workdir: Path
) -> tuple[RelayPlace, ServerSettings]:
    """Check the applier route can run here and find the relay log place.

    A connection of this name left by a killed replay is removed first.

    Raises:
        ApplierUnavailable: it cannot (nothing else was changed); the message says why.
    """
    if flavour.name != "mariadb":
        raise ApplierUnavailable(f"the server is {flavour.name}: only MariaDB's applier is used")
    session = _Session(conn, flavour, workdir)
    try:
        row = session.query(
            "SELECT @@log_bin, @@log_slave_updates, @@datadir, @@server_id, "
            "@@slave_parallel_threads, @@gtid_slave_pos, @@slave_max_allowed_packet"
        )[0]
        log_bin, slave_updates, datadir, server_id, threads, slave_pos, max_event = row
        if log_bin == "1" and slave_updates != "1":
            raise ApplierUnavailable(
                "log_slave_updates is OFF: the applier's transactions would be missing from "
                "the binary log"
            )
        for other in session.query("SHOW ALL SLAVES STATUS"):
            name = other[0]
            if name == CONNECTION:
                session.query(f"STOP SLAVE '{CONNECTION}'; RESET SLAVE '{CONNECTION}' ALL")
            elif "Yes" in (other[12], other[13]):
                raise ApplierUnavailable(f"replication connection '{name}' is running")
        data = Path(datadir)
        if not data.is_dir() or not os.access(data, os.W_OK):
            raise ApplierUnavailable(f"the server's data directory {data} is not writable here")
        place = _probe(session, data)
    except ApplierError as exc:
        raise ApplierUnavailable(f"the replication applier cannot be set up: {exc}") from exc
    settings = ServerSettings(
        server_id=int(server_id),
        parallel_threads=int(threads),
        gtid_slave_pos="" if slave_pos == "NULL" else slave_pos,
        max_event=int(max_event),
    )
    return place, settings


def _probe(session: _Session, datadir: Path) -> RelayPlace:
    """A throwaway connection shows the relay log names the server uses (then removed)."""
    session.query(f"CHANGE MASTER '{CONNECTION}' TO MASTER_HOST='{_DUMMY_HOST}'")
    try:
        status = session.query(f"SHOW SLAVE '{CONNECTION}' STATUS")[0]
        relay = datadir / status[_RELAY_LOG_FILE]  # an absolute name stays absolute
        index = relay.parent / (relay.name.rsplit(".", 1)[0] + ".index")
        first = index.read_text(encoding="utf-8").splitlines()[0] if index.exists() else ""
    finally:
        session.query(f"RESET SLAVE '{CONNECTION}' ALL")
    if not first.endswith(relay.name):
        raise ApplierUnavailable(f"the relay log index {index} is not where it was expected")
    stat = relay.parent.stat()
    return RelayPlace(
        directory=relay.parent,
        stem=relay.name.rsplit(".", 1)[0],
        prefix=first[: -len(relay.name)],
        owner=(stat.st_uid, stat.st_gid),
    )


def apply(
    conn: ConnectionSpec,
    flavour: Flavour,
    files: Sequence[Path | Callable[[], Path]],
    *,
    workdir: Path,
    place: RelayPlace,
    settings: ServerSettings,
    start_position: int | None = None,
    stop_datetime: datetime | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> ApplyStats:
    """Apply the files through the applier (after `prepare`); always clean up.

    Raises:
        ApplierError: the applier stopped on an error, or a statement failed; the
            transactions before it stay applied.
    """
    session = _Session(conn, flavour, workdir)
    stop_epoch = int(stop_datetime.timestamp()) if stop_datetime is not None else None
    stager = _Stager(place, files, start_position or 4, stop_epoch)
    stats = ApplyStats()
    try:
        session.query(
            f"SET GLOBAL slave_parallel_threads = {PARALLEL_THREADS};"
            f"SET GLOBAL slave_max_allowed_packet = {max(MAX_EVENT, settings.max_event)}"
        )
        while batch := stager.next_batch():
            _run_batch(session, place, settings, batch, stats)
            if on_file is not None:
                on_file(stats.files, len(files))
            if batch[-1].point.reached:
                break
    finally:
        stager.close()
        _teardown(session, place, settings)
        stager.join()
    return stats


def _run_batch(
    session: _Session,
    place: RelayPlace,
    settings: ServerSettings,
    batch: list[_Staged],
    stats: ApplyStats,
) -> None:
    gtids: dict[int, str] = {}
    ids: set[int] = set()
    for item in batch:
        gtids.update(item.point.last_gtids)
        ids |= item.point.server_ids
    stats.files += len(batch)
    stats.binlog_bytes += sum(item.point.end - item.start for item in batch)
    if not gtids:  # no transaction in these files
        for item in batch:
            item.path.unlink(missing_ok=True)
        return
    names: list[str] = []
    for number, item in enumerate(batch, start=1):
        item.path.rename(place.relay(number))
        names.append(place.prefix + place.relay(number).name)
    place.index.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    _give(place, place.index)
    server_id = settings.server_id
    if server_id in ids:  # the applier skips events of its own server id
        server_id = next(n for n in range(_HIGHEST_SERVER_ID, 0, -1) if n not in ids)
    first = batch[0]
    # MASTER_LOG_FILE is required: a shipped binlog has no leading rotate event naming it,
    # and MariaDB 10.11's parallel applier crashes the server (SIGSEGV in
    # compare_log_name) on a relay log whose master log name is empty. MASTER_GTID_WAIT
    # compares with gtid_slave_pos, so that starts at the binary log's state (strict mode
    # refuses one behind it).
    session.query(
        f"SET GLOBAL server_id = {server_id}; SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos;"
        f"CHANGE MASTER '{CONNECTION}' TO MASTER_HOST='{_DUMMY_HOST}', MASTER_USE_GTID=no, "
        f"MASTER_LOG_FILE='{_sql_name(first.name)}', MASTER_LOG_POS={first.start}, "
        f"RELAY_LOG_FILE='{place.relay(1).name}', RELAY_LOG_POS={first.start};"
        f"SET GLOBAL {CONNECTION}.slave_parallel_mode = 'optimistic';"
        f"START SLAVE '{CONNECTION}' SQL_THREAD"
    )
    _wait(session, ",".join(gtids[domain] for domain in sorted(gtids)))
    session.query(f"STOP SLAVE '{CONNECTION}'; RESET SLAVE '{CONNECTION}' ALL")
    stats.batches += 1
    stats.transactions += sum(item.point.transactions for item in batch)
    stats.gtids.update(gtids)


def _wait(session: _Session, expected: str) -> None:
    """Until the applier has committed `expected` (GTIDs); ApplierError if it stops first."""
    while True:
        rows = session.query(
            f"SELECT MASTER_GTID_WAIT('{expected}', {_WAIT_SECONDS}); "
            f"SHOW SLAVE '{CONNECTION}' STATUS"
        )
        if rows and rows[0][0] == "0":
            return
        status = list(rows[-1]) if len(rows) > 1 else []
        if len(status) > _LAST_SQL_ERROR and status[_SQL_RUNNING] != "Yes":
            error = status[_LAST_SQL_ERROR] or "the SQL thread stopped"
            raise ApplierError(
                f"the replication applier stopped in {status[_EXEC_LOG_FILE]}: {error}"
            )


def _teardown(session: _Session, place: RelayPlace, settings: ServerSettings) -> None:
    """The connection gone, the settings back, no relay or staged file left."""
    steps = (
        f"STOP SLAVE '{CONNECTION}'",
        f"RESET SLAVE '{CONNECTION}' ALL",
        f"SET GLOBAL server_id = {settings.server_id}",
        f"SET GLOBAL slave_parallel_threads = {settings.parallel_threads}",
        f"SET GLOBAL slave_max_allowed_packet = {settings.max_event}",
        f"SET GLOBAL gtid_slave_pos = '{_sql_name(settings.gtid_slave_pos)}'",
    )
    for sql in steps:
        try:
            session.query(sql, timeout=120)
        except ApplierError as exc:  # e.g. no such connection any more
            logger.debug("replay clean-up: %s", exc)
            if "gtid_slave_pos" in sql:  # strict mode: not behind the binlog (as a replica
                # of its own history would start); the replay's own value would be stale
                with contextlib.suppress(ApplierError):
                    session.query("SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos")
    for leftover in place.directory.glob(f"{place.stem}.*"):
        leftover.unlink(missing_ok=True)


def _sql_name(text: str) -> str:
    return text.replace("\\", "").replace("'", "")


def _give(place: RelayPlace, path: Path) -> None:
    """Make the file the server's (it reads relay logs as its own user)."""
    if os.geteuid() == 0 and path.stat().st_uid != place.owner[0]:
        os.chown(path, *place.owner)


class _Stager:
    """Fetches, cuts and stages the files one after another in a helper thread."""

    def __init__(
        self,
        place: RelayPlace,
        files: Sequence[Path | Callable[[], Path]],
        start: int,
        stop_epoch: int | None,
    ) -> None:
        self._place, self._files, self._start, self._stop = place, files, start, stop_epoch
        self._queue: queue.Queue[_Staged | BaseException | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="binlog-stage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for number, item in enumerate(self._files, start=1):
                staged = self._stage(number, item)
                if staged is None:
                    return
                self._queue.put(staged)
                if staged.point.reached:
                    break
        except BaseException as exc:  # handed to the applying thread
            self._queue.put(exc)
        self._queue.put(None)

    def _stage(self, number: int, item: Path | Callable[[], Path]) -> _Staged | None:
        path = item if isinstance(item, Path) else item()
        start = self._start if number == 1 else 4
        point = find_stop(path, start=start, stop_epoch=self._stop)
        target = self._place.staged(number)
        with self._lock:
            if self._closed:
                return None
            if point.end >= path.stat().st_size:
                _link_or_copy(path, target)
            else:
                _copy_head(path, target, point.end)
            _give(self._place, target)
        return _Staged(name=path.name, path=target, start=start, point=point)

    def next_batch(self) -> list[_Staged]:
        """The files staged so far (waits for one); empty when all were applied."""
        if self._ended:
            return []
        first = self._get(block=True)
        batch: list[_Staged] = []
        while first is not None:
            batch.append(first)
            first = self._get(block=False)
        return batch

    def _get(self, *, block: bool) -> _Staged | None:
        while True:
            try:
                got = self._queue.get(timeout=_WAIT_SECONDS) if block else self._queue.get_nowait()
            except queue.Empty:
                if block:
                    continue
                return None
            if isinstance(got, BaseException):
                self._ended = True
                raise got
            if got is None:
                self._ended = True
            return got

    def close(self) -> None:
        """Stage nothing more (a file being fetched is dropped when it arrives)."""
        with self._lock:
            self._closed = True

    def join(self) -> None:
        """Wait for the helper thread (a fetch in progress finishes first)."""
        self._thread.join()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _copy_head(source: Path, target: Path, size: int) -> None:
    """The first `size` bytes of `source` (the file cut at the stop point)."""
    with source.open("rb") as reader, target.open("wb") as writer:
        left = size
        while left > 0 and (chunk := reader.read(min(_CHUNK, left))):
            writer.write(chunk)
            left -= len(chunk)


__all__ = [
    "CONNECTION",
    "ApplierError",
    "ApplierUnavailable",
    "ApplyStats",
    "RelayPlace",
    "ServerSettings",
    "apply",
    "prepare",
]
