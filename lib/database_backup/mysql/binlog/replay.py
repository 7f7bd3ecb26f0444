"""Replaying binary logs into a running server: the server's applier, or a client pipe.

Two routes, the result says which ran (`ReplayStats.route`):

- `applier` (MariaDB, the default where it can run): the files become the relay log of a
  replication connection and the server's SQL thread applies them with parallel workers,
  fetched and staged one ahead (`applier`). Where it cannot run (MySQL,
  `log_slave_updates` OFF with the binary log on, another replication connection running,
  the data directory not here, no privilege) the reason is logged and kept
  (`ReplayStats.fallback`) and the client pipe runs instead.
- `client-pipe`: `mariadb-binlog | mariadb`, done carefully. One client process receives
  the output of one binlog-reader process per file, in order (the reader's stdout is the
  client's stdin, no copy through Python), so a transaction is never split and the client
  stops at the first error. Shipped files are fetched and decoded one ahead of the
  replay, into the work directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from ..connection import ConnectionSpec, QueryError, run_query
from ..errors import EngineError
from ..flavour import Flavour
from ..toolrun import ToolLog, tail
from . import applier

logger = logging.getLogger(__name__)

#: the largest packet the servers accept: one transaction's `BINLOG '...'` statement (its row
#: events base64-encoded) may exceed the 16 MiB default that the source wrote it under
MAX_PACKET = 1 << 30

APPLIER = "applier"
CLIENT_PIPE = "client-pipe"
AUTO = "auto"

#: `--stop-datetime` is read in the reader's local time zone: always run it in UTC
_UTC_ENV = {"TZ": "UTC"}


class ReplayError(EngineError):
    """The replay stopped: a reader or the client failed (the message has their output)."""


@dataclass(frozen=True)
class ReplayStats:
    """What a replay did."""

    files: int
    binlog_bytes: int
    seconds: float
    route: str = CLIENT_PIPE
    fallback: str = ""

    @property
    def rate(self) -> float:
        """Binlog bytes replayed per second."""
        return self.binlog_bytes / self.seconds if self.seconds > 0 else 0.0


def stop_datetime_arg(moment: datetime) -> str:
    """`--stop-datetime` value (UTC, second resolution) for a stop at `moment`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def reader_command(
    flavour: Flavour,
    path: Path,
    *,
    start_position: int | None = None,
    stop_datetime: datetime | None = None,
) -> list[str]:
    """The binlog reader's command line for one file (no connection options needed)."""
    argv = [flavour.binlog_tool]
    if start_position is not None and start_position > 4:
        argv.append(f"--start-position={int(start_position)}")
    if stop_datetime is not None:
        argv.append(f"--stop-datetime={stop_datetime_arg(stop_datetime)}")
    argv.append(str(path))
    return argv


def client_command(flavour: Flavour, defaults_file: Path) -> list[str]:
    """The client that applies the reader's output (stops at the first error)."""
    return [
        flavour.client_tool,
        f"--defaults-extra-file={defaults_file}",
        "--binary-mode",
        "--batch",
        "--connect-timeout=10",
        f"--max-allowed-packet={MAX_PACKET}",
    ]


@contextlib.contextmanager
def large_packets(
    conn: ConnectionSpec, flavour: Flavour, workdir: Path
) -> Generator[None, None, None]:
    """Raise the server's `max_allowed_packet` to MAX_PACKET meanwhile; put it back after.

    Sessions opened inside take the raised limit. Without the privilege to change it the
    replay goes on under the server's own limit (a larger transaction then fails, saying so).
    """
    sql = "SELECT @@GLOBAL.max_allowed_packet"
    before = int(query(conn, flavour, sql, workdir)[0][0])
    if before >= MAX_PACKET:
        yield
        return
    try:
        query(conn, flavour, f"SET GLOBAL max_allowed_packet = {MAX_PACKET}", workdir)
    except ReplayError as exc:
        logger.warning("replaying under max_allowed_packet=%d: %s", before, exc)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(ReplayError):
            query(conn, flavour, f"SET GLOBAL max_allowed_packet = {before}", workdir)


def replay(
    conn: ConnectionSpec,
    flavour: Flavour,
    files: Sequence[Path | Callable[[], Path]],
    *,
    workdir: Path,
    start_position: int | None = None,
    stop_datetime: datetime | None = None,
    on_file: Callable[[int, int], None] | None = None,
    route: str = AUTO,
) -> ReplayStats:
    """Apply binlog files in order: through the server's applier where it can, else a client.

    Args:
        conn: the server to apply them to.
        flavour: chooses the reader and client programs.
        files: local paths, or callables returning one (called one file ahead of the
            replay, in a helper thread: e.g. download and decode a shipped file).
        workdir: private directory (defaults file, log).
        start_position: offset in the first file to start at (the backup's position).
        stop_datetime: stop at the first event at or after this moment (UTC).
        on_file: called with (files done, files total) after each file (the applier:
            after each batch of files).
        route: `auto` (the applier where it can run, else the client pipe), `applier`
            (refused with ReplayError where it cannot run) or `client-pipe`.

    Raises:
        ReplayError: a reader, the client or the applier failed (or `applier` was asked
            for and cannot run); events before the failure stay applied.
    """
    if route not in (AUTO, APPLIER, CLIENT_PIPE):
        raise ReplayError(
            f"unknown replay route {route!r}: use {AUTO}, {APPLIER} or {CLIENT_PIPE}"
        )
    fallback = ""
    if route != CLIENT_PIPE:
        started = time.monotonic()
        try:
            place, settings = applier.prepare(conn, flavour, workdir)
        except applier.ApplierUnavailable as exc:
            if route == APPLIER:
                raise ReplayError(f"the replication applier cannot be used: {exc}") from exc
            fallback = str(exc)
            logger.info("replaying through the client pipe: %s", fallback)
        else:
            try:
                stats = applier.apply(
                    conn, flavour, files, workdir=workdir, place=place, settings=settings,
                    start_position=start_position, stop_datetime=stop_datetime, on_file=on_file,
                )  # fmt: skip
            except applier.ApplierError as exc:
                raise ReplayError(str(exc)) from exc
            return ReplayStats(
                files=stats.files, binlog_bytes=stats.binlog_bytes,
                seconds=time.monotonic() - started, route=APPLIER,
            )  # fmt: skip
    stats = _pipe(conn, flavour, files, workdir, start_position, stop_datetime, on_file)
    return replace(stats, fallback=fallback)


def _pipe(
    conn: ConnectionSpec,
    flavour: Flavour,
    files: Sequence[Path | Callable[[], Path]],
    workdir: Path,
    start_position: int | None,
    stop_datetime: datetime | None,
    on_file: Callable[[int, int], None] | None,
) -> ReplayStats:
    """The client-pipe route: one client session, one reader per file."""
    started = time.monotonic()
    log = ToolLog(workdir / "replay.log")
    total = 0
    env = {**os.environ, **_UTC_ENV}
    with (
        large_packets(conn, flavour, workdir),
        conn.defaults_file(workdir) as defaults,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="binlog-fetch") as pool,
        log.open() as err,
    ):
        client = subprocess.Popen(
            client_command(flavour, defaults), stdin=subprocess.PIPE, stdout=err, stderr=err
        )
        if client.stdin is None:
            raise ReplayError("the client has no stdin")
        pending: Future[Path] | None = _fetch(pool, files, 0)
        try:
            for index in range(len(files)):
                if pending is None:
                    break
                path = pending.result()
                pending = _fetch(pool, files, index + 1)
                argv = reader_command(
                    flavour,
                    path,
                    start_position=start_position if index == 0 else None,
                    stop_datetime=stop_datetime,
                )
                reader = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=client.stdin, stderr=err,
                    env=env, check=False,
                )  # fmt: skip
                total += path.stat().st_size
                if reader.returncode != 0:
                    raise ReplayError(
                        f"{argv[0]} failed on {path.name} (exit code {reader.returncode}): "
                        f"{tail(log.text())}"
                    )
                if client.poll() is not None:
                    break
                if on_file is not None:
                    on_file(index + 1, len(files))
        except BaseException:
            _stop(client)
            raise
        finally:
            if pending is not None:
                pending.cancel()
        with contextlib.suppress(BrokenPipeError):
            client.stdin.close()
        rc = client.wait()
    if rc != 0:
        raise ReplayError(f"{flavour.client_tool} failed applying the binlogs: {tail(log.text())}")
    return ReplayStats(files=len(files), binlog_bytes=total, seconds=time.monotonic() - started)


def _fetch(
    pool: ThreadPoolExecutor, files: Sequence[Path | Callable[[], Path]], index: int
) -> Future[Path] | None:
    if index >= len(files):
        return None
    item = files[index]
    if isinstance(item, Path):
        done: Future[Path] = Future()
        done.set_result(item)
        return done
    return pool.submit(item)


def _stop(client: subprocess.Popen[bytes]) -> None:
    if client.stdin is not None:
        with contextlib.suppress(OSError):
            client.stdin.close()
    if client.poll() is None:
        client.kill()
    client.wait()


def query(
    conn: ConnectionSpec, flavour: Flavour, sql: str, workdir: Path
) -> list[tuple[str, ...]]:
    """Run SQL through the flavour's client (ReplayError on failure)."""
    try:
        return run_query(conn, sql, client=flavour.client_tool, workdir=workdir, timeout=300)
    except QueryError as exc:
        raise ReplayError(str(exc)) from exc
