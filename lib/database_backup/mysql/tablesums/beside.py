"""Table sums measured beside the backup stream, then checked against its consistent point.

Measured after the stream (`record_for_backup` alone), the sums add one more read of
every table to every backup. `Beside` starts as the backup tool starts:

1. **early**, in a thread and a session of its own: a consistent snapshot (binlog
   position S), the tables listed and measured in it until the budget runs out;
2. **checked** once the backup's consistent point P is known (`finish`): an InnoDB
   table measured early holds the backup's data unless the binlog between S and P (in
   either order: a logical dump's point is where it starts) has an event for it, or has
   DDL naming it from there until now; a MyISAM/Aria table (read as it is, not in the
   snapshot) holds it unless any event names it from the first of S and P until now;
3. **after** the stream, what did not hold, what was not reached, and the tables the
   early listing could not see (DDL in the windows) are measured as `record_for_backup`
   does: in a fresh snapshot, checked the same way, under a budget of their own.

On a quiet server step 3 has nothing to do: the sums cost the backup step 2 (a few
binlog pages). Each of steps 1 and 3 is bounded by the budget; 1 overlaps the stream.
Never raises, like `record_for_backup`; leaving the ``with`` block ends the early
session at once (its running statement too).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from database_backup.catalog import BackupMetadata

from ..connection import ConnectionSpec
from ..flavour import MARIADB, Flavour
from . import replication
from .measure import (
    NON_TRANSACTIONAL,
    Limits,
    Table,
    list_tables,
    measure_tables,
    record_for_backup,
    start_snapshot,
)
from .model import TableSum, TableSums
from .session import ClientSession, open_session
from .window import Changes, Position, read_changes

logger = logging.getLogger(__name__)

#: seconds step 3 gets at least, even when step 1 ran on past the stream by the budget
_MIN_AFTER = 5.0


@dataclass
class _Early:
    """What step 1 measured: the tables it listed, and the sums of those it reached."""

    snapshot: Position
    #: what replication had applied, unseen by the binlog, before the snapshot (`replication`)
    mark: str | None
    listed: list[Table] = field(default_factory=list[Table])
    sums: TableSums = field(default_factory=TableSums)
    complete: bool = False


class Beside:
    """The table sums of one backup, measured beside its stream (see the module docstring).

    Usage::

        with Beside(conn, flavour, workdir=work, limits=limits) as sums:
            ...stream the backup...
            sums.attach(meta, note=log.note)  # meta: the backup's point is in it
    """

    def __init__(
        self,
        conn: ConnectionSpec,
        flavour: Flavour,
        *,
        workdir: str | os.PathLike[str],
        limits: Limits | None = None,
        databases: Collection[str] | None = None,
        tables: Collection[str] | None = None,
        point_at_start: bool = False,
    ) -> None:
        """Measure the user tables (or the ``databases``, or the ``db.table`` ``tables``).

        The selection must be the one the backup's metadata will record (its
        ``databases``/``tables``): the tables measured after the stream are chosen by it.
        ``point_at_start``: the backup's consistent point is taken as its tool starts (a
        logical dump), so what replication applied (`replication`) is read before the
        ``with`` block's body runs, not in step 1's session, which may open after it.
        """
        self._conn = conn
        self._flavour = flavour
        self._workdir = Path(workdir)
        self._limits = limits or Limits()
        self._databases = list(databases) if databases is not None else None
        self._tables = set(tables) if tables else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._session: ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._early: _Early | None = None
        self._point_at_start = point_at_start
        #: the replication mark read on entry (``point_at_start``), else `NOT_READ`
        self._entry_mark: str | None = replication.NOT_READ
        self._started = time.monotonic()
        #: how many were measured beside the stream, for the job log (set by `finish`)
        self.how: str | None = None

    def __enter__(self) -> Beside:
        self._started = time.monotonic()
        if self._point_at_start and self._limits.budget_seconds > 0:
            self._entry_mark = self._read_mark()
        # MySQL's tools take a global read lock that waits for running statements (and
        # blocks writes meanwhile): there the sums are only measured after the stream
        if self._limits.budget_seconds > 0 and self._flavour.name == MARIADB:
            self._thread = threading.Thread(
                target=self._run_early, name="table-sums-early", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cancel()

    def _session_until(self, deadline: float) -> AbstractContextManager[ClientSession]:
        """A new client session to the server, its statements bounded by ``deadline``."""
        return open_session(
            self._conn, client=self._flavour.client_tool, workdir=self._workdir, deadline=deadline
        )

    def _read_mark(self) -> str | None:
        """The replication mark now, in a session of its own (`NOT_READ` if it fails)."""
        deadline = time.monotonic() + min(self._limits.budget_seconds, _MIN_AFTER)
        try:
            with self._session_until(deadline) as session:
                return replication.mark(session, self._flavour.name, deadline)
        except Exception as exc:  # then only a server that never replicated is measured
            logger.info("table sums: what replication applied could not be read: %s", exc)
            return replication.NOT_READ

    def cancel(self) -> None:
        """End step 1 now (its running statement too) and wait for its thread."""
        self._stop.set()
        with self._lock:
            if self._session is not None:
                self._session.abort()
        self._join()

    def attach(self, meta: BackupMetadata, *, note: Callable[[str], None] | None = None) -> None:
        """Put the sums of the backup ``meta`` into it (``note``: a summary for the job log)."""
        sums = self.finish(meta)
        meta.table_sums = sums.to_dict()
        if note is not None:
            note(sums.summary())
            if self.how is not None:
                note(f"table sums: {self.how}")

    def finish(self, meta: BackupMetadata) -> TableSums:
        """Steps 2 and 3 for the backup ``meta`` (its consistent point is known now).

        Together they add the budget to the backup at most (``_MIN_AFTER`` more when step 1
        overruns): step 1 may still run until its own deadline, then steps 2 and 3 get
        what is left of the budget from the end of the stream.
        """
        stream_end = time.monotonic()
        self._join()
        budget = self._limits.budget_seconds
        deadline = max(stream_end + budget, time.monotonic() + min(budget, _MIN_AFTER))
        early = self._early
        if early is None or meta.binlog_file is None or meta.binlog_position is None:
            since = self._entry_mark if early is None else early.mark
            return self._after(meta, {}, deadline, since)
        point = Position(meta.binlog_file, meta.binlog_position)
        try:
            kept, unsure = self._check(early, point, deadline)
        except Exception as exc:  # the binlog could not be read: measure again after
            logger.warning("backup %s: the early table sums are not used: %s", meta.backup_id, exc)
            return self._after(meta, {}, deadline, early.mark)
        if not unsure:
            early.sums.server_version = self._flavour.version
            self.how = f"{len(early.sums.tables)} measured beside the stream"
            return early.sums
        sums = self._after(meta, kept, deadline, early.mark)
        if sums.error is None:  # else nothing holds, and the summary says why
            self.how = (
                f"{len(kept)} measured beside the stream, the others after it (the binlog "
                "shows changes during the backup, or the budget ran out beside it)"
            )
        return sums

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run_early(self) -> None:
        deadline = self._started + self._limits.budget_seconds
        try:
            with self._session_until(deadline) as session:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._session = session
                mark = (
                    self._entry_mark
                    if self._point_at_start
                    else replication.mark(session, self._flavour.name, deadline)
                )
                snapshot = start_snapshot(session, deadline)
                if snapshot is None:
                    return
                early = _Early(snapshot, mark)
                early.listed = list_tables(
                    session,
                    early.sums,
                    self._limits,
                    deadline,
                    wanted=self._tables,
                    databases=self._databases,
                )
                early.complete = measure_tables(
                    session, early.listed, early.sums, deadline, self._stop, count_by_scan=True
                )
                self._early = early
        except Exception as exc:  # the sums are measured after the stream instead
            if not self._stop.is_set():
                logger.info("table sums beside the stream stopped: %s", exc)
        finally:
            with self._lock:
                self._session = None

    def _check(
        self, early: _Early, point: Position, deadline: float
    ) -> tuple[dict[str, TableSum], bool]:
        """Step 2: the early measures that hold, and whether step 3 has anything to do."""
        first, last = sorted((early.snapshot, point), key=binlog_order)
        with self._session_until(deadline) as session:
            reply = session.run("SHOW MASTER STATUS;", deadline=deadline)
            if reply.errors or not reply.rows or len(reply.rows[0]) < 2:
                raise RuntimeError("cannot read where the binlog ends")
            end = Position(reply.rows[0][0], int(reply.rows[0][1]))
            now = replication.mark(session, self._flavour.name, deadline)
            if replication.hidden_changes(early.mark, now):
                return {}, True  # step 3's own check then skips every table, saying why
            between = read_changes(session, first, last, deadline=deadline)
            since = read_changes(session, last, end, deadline=deadline)
        kept = {
            table.name: early.sums.tables[table.name]
            for table in early.listed
            if table.name in early.sums.tables and early_sum_holds(table, between, since)
        }
        unsure = (
            not early.complete
            or len(kept) < len(early.sums.tables)
            or between.has_statements
            or since.has_statements
            or between.everything is not None
        )
        return kept, unsure

    def _after(
        self, meta: BackupMetadata, kept: dict[str, TableSum], deadline: float, since: str | None
    ) -> TableSums:
        """Step 3: measure what ``kept`` lacks by ``deadline``, and add ``kept`` to it.

        ``since``: the replication mark read before the backup's point (`replication`).
        """
        limits = self._limits
        if limits.budget_seconds > 0:
            limits = dataclasses.replace(
                limits,
                budget_seconds=max(deadline - time.monotonic(), min(limits.budget_seconds, 1.0)),
                max_tables=max(1, limits.max_tables - len(kept)),
            )
        sums = record_for_backup(
            self._conn,
            self._flavour,
            meta,
            workdir=self._workdir,
            limits=limits,
            exclude=kept.keys(),
            since=since,
        )
        if sums.error is None:
            sums.tables.update(kept)
        else:  # nothing recorded holds (see TableSums.error): kept ones are skipped too
            for name in kept:
                sums.skipped[name] = sums.error
        return sums


def early_sum_holds(table: Table, between: Changes, since: Changes) -> bool:
    """Whether ``table``'s early measure is the backup's (see the module docstring)."""
    if table.engine in NON_TRANSACTIONAL:
        return between.reason(table.name) is None and since.reason(table.name) is None
    return between.reason(table.name) is None and since.definition_reason(table.name) is None


def binlog_order(position: Position) -> tuple[int, str, int]:
    """Sort key of binlog positions: by the file's number (``bin.000012``), then offset."""
    _, _, number = position.file.rpartition(".")
    return (int(number) if number.isdigit() else -1, position.file, position.position)
