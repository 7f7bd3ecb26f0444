"""Restore a full physical backup into the running server, or leave it as it was.

Order of work (the current data is untouched until the artefact has proved intact):

1. read the metadata; refuse early (encrypted without key, wrong flavour, no space); the
   metadata GET runs in a thread beside the server's status and flavour (a client
   process), and a caller that already read the metadata (or probed the server, see
   `probe_server`) passes it in, so nothing is asked twice before the first download;
2. download -> `stream.decode` (sha256, size, authentication checked at EOF) ->
   `mbstream -x` / `xbstream -x` into a staging directory beside the datadir;
3. only if the stream verified: `--prepare` the staged data, give it the datadir's owner;
4. stop the server, move the current data aside, move the restored data in, start the
   server and check that it answers a query, then delete the previous data.

Any failure after the stop puts the previous data back, starts the server again and
raises `RestoreError` saying what failed and that the previous data is back.

With `keep_previous=True` (a point-in-time recovery) step 4 stops before deleting the
previous data: the result's `held` swap keeps it (and the datadir's lock) until the caller
calls `discard_previous()` after its replay, or `roll_back_held()` on failure.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from database_backup import stopping
from database_backup.catalog import BackupMetadata, BackupNotFoundError, Catalog

from ..connection import ConnectionSpec, QueryError, run_query
from ..errors import RestoreError
from ..flavour import Flavour, FlavourError, detect, for_name, parse_version
from ..progress import ProgressCallback, emit
from ..server import ServerControl
from ..toolrun import ToolLog, tail
from .datadir import DatadirSwap, SwapError
from .extract import fetch_and_extract, prepare, stage_chain

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# prepared data is about the stream's raw size; keep a margin for the redo apply
_SPACE_MARGIN = 1.10


@dataclass(frozen=True)
class RestoreResult:
    """What a successful restore did."""

    backup_id: str
    flavour: str
    server_version: str
    stored_bytes: int
    raw_bytes: int
    seconds: float
    binlog_file: str | None
    binlog_position: int | None
    gtid_set: str | None
    recovered: str | None = None
    held: DatadirSwap | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ServerProbe:
    """What the server said before a restore: whether it runs and, if so, its flavour.

    Attributes:
        running: the server's status said it runs.
        flavour: the running server's flavour (with its datadir), when detected.
        error: why the flavour could not be detected (raised by the restore that uses it).
    """

    running: bool
    flavour: Flavour | None = None
    error: FlavourError | None = None


def probe_server(conn: ConnectionSpec, server: ServerControl, work: Path) -> ServerProbe:
    """Ask the server's status once and, when it runs, its flavour (never raises those)."""
    if not server.is_running():
        return ServerProbe(running=False)
    try:
        return ServerProbe(running=True, flavour=detect(conn, workdir=work))
    except FlavourError as exc:
        return ServerProbe(running=True, error=exc)


def in_background(work: Callable[[], _T], name: str) -> Callable[[], _T]:
    """Run `work` in a daemon thread now; the returned function joins it (and re-raises)."""
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def join() -> _T:
        thread.join()
        if failure:
            raise failure[0]
        return outcome[0]

    return join


def restore_physical(
    conn: ConnectionSpec,
    server: ServerControl,
    catalog: Catalog,
    backup_id: str,
    *,
    key: bytes | None = None,
    progress: ProgressCallback | None = None,
    workdir: str | os.PathLike[str],
    verify_timeout: float = 120.0,
    parallel: int = 1,
    keep_previous: bool = False,
    kind: str | None = None,
    meta: BackupMetadata | None = None,
    probe: ServerProbe | None = None,
) -> RestoreResult:
    """Restore physical backup `backup_id` into the server controlled by `server`.

    An incremental backup is restored with its chain (its full ancestor and every
    incremental up to it, prepared in order).

    Args:
        conn: how to reach the server (to detect its flavour and check it after start).
        server: stops/starts the server; its `datadir` is where the data goes.
        catalog: the catalog holding the backup.
        backup_id: which backup.
        key: the encryption key, required for an encrypted backup.
        progress: called with ProgressEvent(phase, bytes_done, bytes_estimated).
        workdir: private directory for logs and the client defaults file.
        verify_timeout: seconds to wait for the restarted server to answer.
        parallel: extraction threads.
        keep_previous: keep the previous data (and the lock) after the restored server
            answered; the caller ends the restore through `RestoreResult.held`.
        kind: the kind recorded in the journal (default: `physical` or `incremental`).
        meta: the backup's metadata when the caller already read it (not read again).
        probe: the server's state when the caller already asked (`probe_server`); it is
            asked again after recovering an interrupted restore.

    Raises:
        RestoreError: with `data_changed=False` whenever the previous data is in place.
    """
    started = time.monotonic()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    recovered = recover_interrupted_restore(server)
    if recovered:
        logger.warning("an earlier restore was interrupted: %s", recovered)
        probe = None  # the recovery may have stopped or started the server
    given = meta
    read_meta = (
        in_background(lambda: _read_metadata(catalog, backup_id, key), f"meta-{backup_id}")
        if given is None
        else lambda: _check_metadata(given, backup_id, key)
    )
    probe = probe or probe_server(conn, server, work)  # a process: the GET runs meanwhile
    meta = read_meta()
    flavour = _flavour_for(probe, meta.flavour, meta.server_version)
    if probe.running:
        _check_datadir(server, flavour)
    swap, staging = _make_staging(server, meta, kind or _kind_of(meta))
    log = ToolLog(work / f"restore-{backup_id}.log")
    try:
        if meta.kind == "incremental":  # the chain: full + incrementals, prepared in order
            raw = stage_chain(catalog, meta, flavour, staging, key, progress, log, parallel)
        else:
            raw = fetch_and_extract(catalog, meta, flavour, staging, key, progress, log, parallel)
            emit(progress, "prepare")
            swap.set_phase("preparing")
            prepare(flavour, staging, log)
        swap.match_owner()
        stopping.raise_if_requested()  # a stop asked for (and swallowed) before the swap
    except RestoreError:
        swap.discard_staging()
        raise
    except Exception as exc:
        swap.discard_staging()
        raise RestoreError(
            f"restore of {backup_id} failed before the server was touched: {exc}"
        ) from exc
    _swap_and_start(conn, server, flavour, swap, progress, work, verify_timeout, backup_id)
    if not keep_previous:
        emit(progress, "cleanup")
        discard_previous(swap)
        emit(progress, "done", meta.stored_size, meta.stored_size)
    return RestoreResult(
        backup_id=backup_id,
        flavour=flavour.name,
        server_version=meta.server_version,
        stored_bytes=meta.stored_size,
        raw_bytes=raw,
        seconds=time.monotonic() - started,
        binlog_file=meta.binlog_file,
        binlog_position=meta.binlog_position,
        gtid_set=meta.gtid_set,
        recovered=recovered,
        held=swap if keep_previous else None,
    )


def _kind_of(meta: BackupMetadata) -> str:
    return "incremental" if meta.kind == "incremental" else "physical"


def discard_previous(swap: DatadirSwap) -> None:
    """End a restore that succeeded: delete the previous data (a failure only warns)."""
    try:
        swap.discard_previous()
    except OSError as exc:  # the restore itself succeeded: say so, and what is left
        logger.warning("restored; could not remove the previous data %s: %s", swap.previous, exc)


def roll_back_held(
    conn: ConnectionSpec,
    server: ServerControl,
    swap: DatadirSwap,
    flavour: Flavour,
    work: Path,
    verify_timeout: float,
) -> None:
    """Put the previous data of a held restore back and start the server with it.

    Raises:
        RestoreError: putting it back failed (`data_changed` True; the message says where
            the previous data is).
    """
    try:
        _put_back(conn, server, flavour, swap, work, verify_timeout)
    except Exception as exc:
        raise RestoreError(
            f"putting the previous data back failed: {exc}. "
            f"Check {swap.datadir} and {swap.previous} by hand.",
            data_changed=True,
        ) from exc


def _read_metadata(catalog: Catalog, backup_id: str, key: bytes | None) -> BackupMetadata:
    """The backup's metadata, refusing what this restore cannot do."""
    try:
        meta = catalog.read_metadata(backup_id)
    except BackupNotFoundError as exc:
        raise RestoreError(f"backup {backup_id} not found or incomplete: {exc}") from exc
    return _check_metadata(meta, backup_id, key)


def _check_metadata(meta: BackupMetadata, backup_id: str, key: bytes | None) -> BackupMetadata:
    """Refuse what this restore cannot do with `meta`; return it."""
    if meta.backup_id != backup_id:
        raise RestoreError(f"the metadata given is of backup {meta.backup_id}, not {backup_id}")
    if meta.kind not in ("full", "incremental"):
        raise RestoreError(
            f"backup {backup_id} is a {meta.kind} backup; only physical ones here "
            "(restore logical backups with logical.restore_logical)"
        )
    if meta.encrypted and key is None:
        raise RestoreError(f"backup {backup_id} is encrypted: provide its encryption key")
    return meta


def _make_staging(
    server: ServerControl, meta: BackupMetadata, kind: str
) -> tuple[DatadirSwap, Path]:
    """Lock the datadir, check the space, create the staging directory."""
    try:
        swap = DatadirSwap(server.datadir, f"{meta.backup_id}-{secrets.token_hex(3)}", kind)
    except SwapError as exc:
        raise RestoreError(f"cannot restore: {exc}") from exc
    needed = int((meta.raw_size or meta.stored_size) * _SPACE_MARGIN)
    free = swap.free_bytes()
    if free < needed:
        raise RestoreError(
            f"not enough free space beside {swap.datadir}: the restore needs about "
            f"{needed // 2**20} MiB for the staged copy, {free // 2**20} MiB free"
        )
    try:
        return swap, swap.create_staging()
    except SwapError as exc:
        raise RestoreError(f"cannot restore: {exc}") from exc


def recover_interrupted_restore(server: ServerControl) -> str | None:
    """Undo (or finish) a restore whose process died; return what was done, or None.

    A restore that died after moving data leaves the previous data back in place and the
    server started; one that died before leaves only its staged copy, which is removed;
    one that died after the restored server answered keeps the restored data.

    Raises:
        RestoreError: a restore is still running, or the recovery failed.
    """
    try:
        swap = DatadirSwap.interrupted(server.datadir)
    except SwapError as exc:
        raise RestoreError(f"cannot recover: {exc}") from exc
    if swap is None:
        return None
    try:
        if not swap.swapped:
            return swap.recover()
        with stopping.holding():
            _stop_before_put_back(server)
            message = swap.recover()
            server.start()
    except Exception as exc:
        raise RestoreError(
            f"recovering the interrupted restore of {swap.datadir} failed: {exc}; "
            f"the previous data may be in {swap.previous}",
            data_changed=True,
        ) from exc
    return message


def _flavour_for(probe: ServerProbe, name: str, version: str) -> Flavour:
    """The running server's flavour, checked against the backup's."""
    try:
        backup_flavour = for_name(name, version)
    except FlavourError as exc:
        raise RestoreError(f"cannot restore: {exc}") from exc
    if not probe.running:
        return backup_flavour
    running = probe.flavour
    if running is None:
        error = probe.error or FlavourError("the server's flavour was not detected")
        raise RestoreError(f"cannot restore: {error}") from error
    if running.name != backup_flavour.name:
        raise RestoreError(
            f"cannot restore a {backup_flavour.name} backup into a {running.name} server"
        )
    if parse_version(running.version)[:2] != parse_version(version)[:2]:
        raise RestoreError(
            f"the backup was taken from {name} {version}, the server runs {running.version}: "
            "restore physical backups into the same major.minor version"
        )
    return running


def _check_datadir(server: ServerControl, flavour: Flavour) -> None:
    """Refuse a datadir that is not the one the running server uses."""
    reported = os.path.realpath(flavour.datadir) if flavour.datadir else ""
    if reported != os.path.realpath(server.datadir):
        raise RestoreError(
            f"the server's datadir is {reported!r}, not {str(server.datadir)!r}: "
            "refusing to restore into a directory the server does not use"
        )


def _put_back(
    conn: ConnectionSpec,
    server: ServerControl,
    flavour: Flavour,
    swap: DatadirSwap,
    work: Path,
    verify_timeout: float,
) -> None:
    """Stop the server, put the previous datadir back, start it and wait until it answers.

    A SIGTERM meanwhile is recorded, not raised: the previous data back is what it asks for.
    """
    with stopping.holding():
        _stop_before_put_back(server)
        swap.roll_back()
        server.start()
        _wait_answers(conn, server, flavour, work, verify_timeout)


def _stop_before_put_back(server: ServerControl) -> None:
    """Stop the server, also one its status does not count as running yet (still starting).

    A stop that fails is only an error while the server runs.
    """
    try:
        server.stop()
    except Exception as exc:
        if server.is_running():
            raise
        logger.info("the server does not run (stopping it said: %s)", exc)


def _wait_answers(
    conn: ConnectionSpec, server: ServerControl, flavour: Flavour, work: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            run_query(conn, "SELECT 1;", client=flavour.client_tool, workdir=work, timeout=10)
            return
        except QueryError as exc:
            last = str(exc)
        if not server.is_running():
            raise RestoreError(f"the server stopped after starting: {last}")
        time.sleep(0.5)
    raise RestoreError(f"the server did not answer a query within {timeout:.0f} s: {last}")


def _swap_and_start(
    conn: ConnectionSpec,
    server: ServerControl,
    flavour: Flavour,
    swap: DatadirSwap,
    progress: ProgressCallback | None,
    work: Path,
    verify_timeout: float,
    backup_id: str,
) -> None:
    """Stop, swap, start, check; on failure put the previous data back and restart."""
    emit(progress, "stop")
    try:
        server.stop()
    except Exception as exc:
        with stopping.holding():
            swap.discard_staging()
            running = _ensure_started(server)
        what = str(exc) if isinstance(exc, stopping.TerminatedError) else f"cannot stop it: {exc}"
        server_now = "the server runs" if running else "starting it again failed (see the log)"
        raise RestoreError(
            f"the restore ended while stopping the server ({what}); the current data was "
            f"not touched; {server_now}"
        ) from exc
    phase = "swap"
    try:
        emit(progress, "swap")
        swap.swap_in()
        phase = "start"
        emit(progress, "start")
        server.start()
        phase = "verify"
        emit(progress, "verify")
        _wait_answers(conn, server, flavour, work, verify_timeout)
    except Exception as exc:
        logger.warning("restore of %s failed at %s: %s; rolling back", backup_id, phase, exc)
        _roll_back(server, swap, conn, flavour, work, verify_timeout, backup_id, phase, exc)


def _roll_back(
    server: ServerControl,
    swap: DatadirSwap,
    conn: ConnectionSpec,
    flavour: Flavour,
    work: Path,
    verify_timeout: float,
    backup_id: str,
    phase: str,
    cause: Exception,
) -> None:
    what = f"restore of {backup_id} failed at the {phase} step ({tail(str(cause), 3)[:600]})"
    try:
        _put_back(conn, server, flavour, swap, work, verify_timeout)
    except Exception as exc:
        raise RestoreError(
            f"{what}, and putting the previous data back failed too: {exc}. "
            f"Check {swap.datadir} and {swap.previous} by hand.",
            data_changed=True,
        ) from cause
    raise RestoreError(
        f"{what}; the previous data was put back and the server is running again"
    ) from cause


def _ensure_started(server: ServerControl) -> bool:
    """Start the server unless it runs; whether it runs now (a failure is logged)."""
    try:
        if not server.is_running():
            server.start()
    except Exception as exc:
        logger.error("could not start the server again: %s", exc)
        return False
    return True
