"""Binlog shipping: upload every closed binary log once, compressed and encrypted.

`ship_binlogs` runs on the database host (it reads the binlog files): it asks the server
for its binary logs (`SHOW BINARY LOGS`; the newest is still being written and is left
for the next run), optionally rotates first (`FLUSH BINARY LOGS`) so the shipped window
reaches "now", and uploads each closed file that its timeline's index does not list yet:
`stream.encode` (zstd, encryption, sha256) -> `S3Storage.upload_stream`, then the index
entry (time range, GTIDs, server identity) is written last.

Bounded lag (`rotate_after`): a quiet server may write to one binlog for days, and an open
file is never shipped. With `rotate_after=N` a run rotates the open binlog when its oldest
transaction event is at least N seconds old by the server's clock, so a timer running
every P seconds with N = lag - P keeps storage at most `lag` seconds (plus one run) behind
the server. A file holding no transaction (an idle server, or one just rotated whose size
has not changed since: `rotation.json` in the work directory) is never rotated.

Caught up (`shipping.json`): when a run ends with every closed file shipped and the open
one holding no transaction (the server's current position is all in storage), it records
that moment in storage (`catalog.binlogs.write_shipping_status`), so a reader can tell an
idle server, whose newest shipped event only ages, from changes waiting to be shipped.
The record is written at most once per run and, while the run keeps confirming, at most
once per `rotate_after / 2` seconds (a local note in the work directory says when it last
was), so an idle server costs a few PUTs a minute at most.

Its timeline is the current one only when this server owns it (a marker in the work
directory, or its own files proven to be the ones shipped there); any other server
starts a new timeline (`timeline_owner`), so a replacement server never appends to, or
skips files because of, its predecessor's history.

It is idempotent and resumable: a file is shipped when its index entry is missing, so a
run killed mid-upload ships that file again next time and never duplicates one. Runs (and
a point-in-time recovery, which changes timelines) exclude each other with a lock file in
the work directory. Safe to call from a timer.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import (
    BinlogCatalog,
    BinlogEntry,
    ShippingStatus,
    Timeline,
    binlog_sequence,
    write_shipping_status,
)
from database_backup.files import read_json, write_json_atomic

from ..connection import ConnectionSpec, QueryError, run_query
from ..errors import EngineError
from ..flavour import Flavour, FlavourError, detect
from ..progress import ProgressCallback, emit
from .reader import BinlogFormatError, BinlogSummary, summarize_file
from .timeline_owner import Marker, local_identity, own_timeline, write_marker

logger = logging.getLogger(__name__)

LOCK_NAME = "binlogs.lock"
ROTATION_NAME = "rotation.json"  # the open file and its size right after our last rotation
CAUGHT_UP_NAME = "caught-up.json"  # when this work directory last recorded a catch-up
_HEAD_BYTES = 64 * 1024  # a new binlog's first transaction event is read within this
#: seconds between caught-up records without `rotate_after` (else `rotate_after / 2`)
RECORD_EVERY = 60.0


class BinlogError(EngineError):
    """Shipping (or reading) binary logs failed; the message says what to do."""


@dataclass
class ShipResult:
    """What one shipping run did.

    Attributes:
        timeline: the timeline the files went to.
        shipped: names uploaded by this run.
        already: closed files that were shipped before.
        active: the file the server still writes (not shipped).
        raw_bytes / stored_bytes: sizes of what this run uploaded.
        missing: files the index lacks and the server no longer has (a gap in the
            point-in-time window; recovery refuses to cross it).
        forked_because: why this run started a new timeline for this server (it did
            not write the current one, see `timeline_owner`), None when it continued.
        rotated_because: why this run rotated the open binlog (`rotate_after`), or None.
        caught_up_at: the server's time at which this run found every committed event in
            storage (closed files shipped, nothing in the open one), None when it did not.
        caught_up_recorded: whether this run wrote that to storage (not when a recent
            run did already, or when the write failed: then a warning is logged).
    """

    timeline: str
    shipped: list[str] = field(default_factory=list[str])
    already: list[str] = field(default_factory=list[str])
    active: str | None = None
    raw_bytes: int = 0
    stored_bytes: int = 0
    missing: list[str] = field(default_factory=list[str])
    forked_because: str | None = None
    rotated_because: str | None = None
    caught_up_at: datetime | None = None
    caught_up_recorded: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "timeline": self.timeline,
            "shipped": list(self.shipped),
            "already-shipped": len(self.already),
            "active": self.active,
            "raw-bytes": self.raw_bytes,
            "stored-bytes": self.stored_bytes,
            "missing": list(self.missing),
            "new-timeline-because": self.forked_because,
            "rotated-because": self.rotated_because,
            "caught-up-at": self.caught_up_at.isoformat() if self.caught_up_at else None,
            "caught-up-recorded": self.caught_up_recorded,
        }


@contextlib.contextmanager
def binlog_lock(
    workdir: str | os.PathLike[str], *, timeout: float = 0.0
) -> Generator[None, None, None]:
    """Hold the work directory's binlog lock (shipping and recovery exclude each other).

    Raises:
        BinlogError: another shipment or a recovery holds it past `timeout` seconds.
    """
    path = Path(workdir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BinlogError(
                        "another binlog shipment or a point-in-time recovery is running "
                        f"(lock {path}); try again when it has finished"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ServerLogs:
    """The server's binary logs as it reports them."""

    directory: Path
    files: list[tuple[str, int]]  # (name, size), oldest first; the last one is active
    server_id: int
    hostname: str
    version: str
    now: int = 0  # the server's clock (UNIX time) when asked


def server_logs(
    conn: ConnectionSpec, flavour: Flavour, work: Path, *, flush: bool = False
) -> ServerLogs:
    """Ask the server for its binlog directory and files (rotating first if `flush`).

    Raises:
        BinlogError: binary logging is off, or the account lacks a privilege.
    """

    def query(sql: str) -> list[tuple[str, ...]]:
        try:
            return run_query(conn, sql, client=flavour.client_tool, workdir=work)
        except QueryError as exc:
            raise BinlogError(f"cannot read the server's binary logs: {exc}") from exc

    rows = query(
        "SELECT @@log_bin, @@log_bin_basename, @@server_id, @@hostname, VERSION(),"
        " UNIX_TIMESTAMP();"
    )
    if not rows or rows[0][0] not in ("1", "ON"):
        raise BinlogError(
            "binary logging is off on the server: enable log_bin to ship binlogs and use "
            "point-in-time recovery"
        )
    _on, basename, server_id, hostname, version, now = rows[0][:6]
    if flush:
        query("FLUSH BINARY LOGS;")
    files = [(row[0], int(row[1])) for row in query("SHOW BINARY LOGS;") if len(row) >= 2]
    return ServerLogs(
        directory=Path(basename).parent,
        files=files,
        server_id=int(server_id),
        hostname=hostname,
        version=version,
        now=int(float(now)),
    )


def object_name(binlog: str, compression_level: int | None, encrypted: bool) -> str:
    """Name of a shipped binlog's object: `<binlog>[.zst][.enc]`."""
    name = binlog
    if compression_level is not None:
        name += ".zst"
    if encrypted:
        name += ".enc"
    return name


def ship_binlogs(
    conn: ConnectionSpec,
    catalog: Catalog,
    *,
    workdir: str | os.PathLike[str],
    key: bytes | None = None,
    compression_level: int | None = 3,
    flush: bool = False,
    binlog_dir: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    lock_timeout: float = 0.0,
    locked: bool = False,
    rotate_after: float | None = None,
    unit: str | None = None,
) -> ShipResult:
    """Ship every closed binary log not yet in the current timeline's index.

    Args:
        conn: how to reach the server (needs BINLOG MONITOR / REPLICATION CLIENT, and
            RELOAD for `flush`).
        catalog: the cluster's catalog.
        workdir: private directory for the lock and the client defaults file; use the
            same one as point-in-time recovery.
        key: 32-byte encryption key, or None.
        compression_level: zstd level, or None for no compression.
        flush: rotate the binary log first, so that everything up to now is shipped.
        binlog_dir: where the files are, when it differs from what the server says
            (e.g. a server in a container).
        progress: called with ProgressEvent("ship", files done, files to ship).
        lock_timeout: seconds to wait for a running shipment or recovery.
        locked: the caller already holds the binlog lock (a recovery shipping).
        rotate_after: rotate the open binlog (then ship it) when its oldest transaction
            event is at least this many seconds old; None never rotates for age. Needs
            RELOAD (as `flush`). Half of it is also the most often a caught-up run
            records so in storage (`RECORD_EVERY` without it).
        unit: who ships, for the caught-up record (default: `JUJU_UNIT_NAME`, else the
            database host's name).

    Raises:
        BinlogError: the server or the storage failed; files shipped before the failure
            stay shipped (their entries are written), the rest go next time.
    """
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        flavour = detect(conn, workdir=work)
    except FlavourError as exc:
        raise BinlogError(str(exc)) from exc
    lock = contextlib.nullcontext() if locked else binlog_lock(work, timeout=lock_timeout)
    with lock:
        logs = server_logs(conn, flavour, work, flush=flush)
        directory = Path(binlog_dir) if binlog_dir is not None else logs.directory
        rotated_because = None
        if not flush and rotate_after is not None:
            rotated_because = rotation_due(work, directory, logs, rotate_after)
            if rotated_because is not None:
                logs = server_logs(conn, flavour, work, flush=True)
                logger.info("rotated the open binlog: %s", rotated_because)
        if flush or rotated_because is not None:
            note_rotation(work, logs)
        index = BinlogCatalog(catalog)
        try:
            owned = own_timeline(
                index, work, directory, logs.files,
                server_id=logs.server_id, hostname=logs.hostname,
            )  # fmt: skip
        except (OSError, BinlogFormatError) as exc:
            raise BinlogError(
                f"cannot read the server's binlogs in {directory} ({exc}): set the binlog "
                "directory if the files live elsewhere"
            ) from exc
        except Exception as exc:
            raise BinlogError(f"cannot read the binlog index: {exc}") from exc
        timeline, shipped = owned.timeline, owned.shipped
        result = ShipResult(
            timeline=timeline.timeline_id,
            forked_because=owned.forked_because,
            rotated_because=rotated_because,
        )
        closed = logs.files[:-1]
        result.active = logs.files[-1][0] if logs.files else None
        result.missing = _missing(shipped, logs.files)
        todo = [(name, size) for name, size in closed if name not in shipped]
        result.already = [name for name, _size in closed if name in shipped]
        emit(progress, "ship", 0, len(todo))
        for done, (name, size) in enumerate(todo):
            entry = _ship_one(
                index, timeline, directory / name, size, flavour, logs, key, compression_level
            )
            result.shipped.append(name)
            _remember(work, owned.marker, directory / name, size)
            result.raw_bytes += entry.raw_size
            result.stored_bytes += entry.stored_size
            emit(progress, "ship", done + 1, len(todo))
            logger.info("shipped %s (%d -> %d bytes)", name, entry.raw_size, entry.stored_size)
        if _open_file_is_empty(work, directory, logs):
            result.caught_up_at = _utc(logs.now)
            every = RECORD_EVERY if rotate_after is None else rotate_after / 2
            status = ShippingStatus(
                caught_up_at=result.caught_up_at,
                timeline=timeline.timeline_id,
                binlog_file=logs.files[-1][0],
                binlog_offset=logs.files[-1][1],
                unit=unit or os.environ.get("JUJU_UNIT_NAME") or logs.hostname or None,
            )
            result.caught_up_recorded = record_caught_up(work, catalog, status, every)
    if result.missing:
        logger.warning(
            "binlogs %s were never shipped and the server no longer has them: point-in-time "
            "recovery cannot cross that gap (take a new full backup)",
            ", ".join(result.missing),
        )
    return result


def rotation_due(work: Path, directory: Path, logs: ServerLogs, rotate_after: float) -> str | None:
    """Why the open binlog should be rotated now, or None (no transaction, or too young)."""
    if not logs.files:
        return None
    name, size = logs.files[-1]
    if _unchanged_since_rotation(work, name, size):
        return None  # nothing written since our last rotation
    path = directory / name
    try:
        summary = _summarize_open(path, size)
    except (OSError, BinlogFormatError) as exc:
        raise BinlogError(
            f"cannot read the open binlog {path} ({exc}): set the binlog directory if the "
            "files live elsewhere"
        ) from exc
    if summary.first_event is None:
        return None
    age = logs.now - summary.first_event
    if age < rotate_after:
        return None
    return f"{name} holds events {age} s old (rotate after {rotate_after:g} s)"


def _unchanged_since_rotation(work: Path, name: str, size: int) -> bool:
    """The open file is the one our last rotation left, at the same size (nothing written)."""
    noted = read_json(work / ROTATION_NAME) or {}
    return noted.get("file") == name and noted.get("size") == size


def _summarize_open(path: Path, size: int) -> BinlogSummary:
    """The open binlog's first `size` bytes, its head first (where a transaction shows)."""
    summary = summarize_file(str(path), limit=min(size, _HEAD_BYTES))
    if summary.first_event is None and size > _HEAD_BYTES:
        summary = summarize_file(str(path), limit=size)
    return summary


def _open_file_is_empty(work: Path, directory: Path, logs: ServerLogs) -> bool:
    """Whether the open binlog holds no transaction up to the size the server reported.

    Unchanged since our last rotation (`rotation.json`) means nothing was written; else
    its head is read. A file that cannot be read is not known to be empty.
    """
    if not logs.files:
        return False
    name, size = logs.files[-1]
    if _unchanged_since_rotation(work, name, size):
        return True
    path = directory / name
    try:
        summary = _summarize_open(path, size)
    except (OSError, BinlogFormatError) as exc:
        logger.warning("cannot tell whether %s holds unshipped writes: %s", path, exc)
        return False
    return summary.first_event is None


def record_caught_up(work: Path, catalog: Catalog, status: ShippingStatus, every: float) -> bool:
    """Write the caught-up record unless this work directory wrote one < `every` s ago.

    Another timeline or cluster, or a clock that went back, writes at once. A failed
    write is logged, not raised (the binlogs are shipped; the reader's lag grows, which
    is what it should show if storage keeps refusing). Returns whether it was written.
    """
    moment = status.caught_up_at.timestamp()
    noted = read_json(work / CAUGHT_UP_NAME) or {}
    last = noted.get("at")
    same = noted.get("cluster") == catalog.prefix and noted.get("timeline") == status.timeline
    if same and isinstance(last, (int, float)) and 0 <= moment - last < every:
        return False
    try:
        write_shipping_status(catalog, status)
    except Exception as exc:
        logger.warning("could not record in storage that shipping is caught up: %s", exc)
        return False
    try:
        write_json_atomic(
            work / CAUGHT_UP_NAME,
            {"at": moment, "cluster": catalog.prefix, "timeline": status.timeline},
        )
    except OSError as exc:  # only saves a PUT next time
        logger.warning("could not note the caught-up record in %s: %s", work, exc)
    return True


def note_rotation(work: Path, logs: ServerLogs) -> None:
    """Remember the new open file and its size: unchanged later means nothing written."""
    if not logs.files:
        return
    name, size = logs.files[-1]
    try:
        write_json_atomic(work / ROTATION_NAME, {"file": name, "size": size})
    except OSError as exc:  # only saves reading the file next time
        logger.warning("could not note the rotation in %s: %s", work, exc)


def _remember(work: Path, marker: Marker, path: Path, size: int) -> None:
    """Note a shipped file's identity in the marker (saves reading its entry next time)."""
    try:
        marker.verified[path.name] = local_identity(path, size)
        write_marker(work, marker)
    except (OSError, BinlogFormatError) as exc:  # only a cache: the entry is read next time
        logger.warning("could not note %s in the timeline marker: %s", path.name, exc)


def _missing(shipped: set[str], files: list[tuple[str, int]]) -> list[str]:
    """Names between the last shipped file and the server's oldest one (a gap)."""
    if not shipped or not files:
        return []
    try:
        last = max(binlog_sequence(name) for name in shipped)
        oldest = files[0][0]
        first_local = binlog_sequence(oldest)
    except ValueError:
        return []
    width = len(oldest.rsplit(".", 1)[1])
    stem = oldest.rsplit(".", 1)[0]
    return [f"{stem}.{number:0{width}d}" for number in range(last + 1, first_local)]


def _ship_one(
    index: BinlogCatalog,
    timeline: Timeline,
    path: Path,
    size: int,
    flavour: Flavour,
    logs: ServerLogs,
    key: bytes | None,
    compression_level: int | None,
) -> BinlogEntry:
    from database_backup.stream import encode

    try:
        summary = summarize_file(str(path), limit=size)
    except FileNotFoundError as exc:
        raise BinlogError(
            f"the server lists {path.name} but {path} does not exist: set the binlog "
            "directory if the files live elsewhere"
        ) from exc
    except (OSError, BinlogFormatError) as exc:
        raise BinlogError(f"cannot read {path}: {exc}") from exc
    name = object_name(path.name, compression_level, key is not None)
    object_key = index.object_key(timeline.timeline_id, name)
    storage = index.catalog.storage
    with path.open("rb") as handle:
        bounded = _Bounded(handle, size)
        stored, digest = encode(bounded, compression_level=compression_level, key=key)
        try:
            storage.upload_stream(object_key, stored, size_hint=size)
        except Exception as exc:
            raise BinlogError(f"uploading {path.name} failed: {exc}") from exc
    entry = BinlogEntry(
        name=path.name,
        timeline=timeline.timeline_id,
        object_name=name,
        raw_size=bounded.count,
        stored_size=digest.bytes_read,
        sha256=digest.sha256,
        compression="zstd" if compression_level is not None else "none",
        encrypted=key is not None,
        created_at=_utc(summary.created),
        last_event_at=_utc(summary.last_event or summary.created),
        first_event_at=_utc(summary.first_event) if summary.first_event else None,
        gtid_list=summary.gtid_list,
        first_gtids=sorted(summary.first_gtids.values()),
        last_gtids=sorted(summary.last_gtids.values()),
        server_ids=sorted(summary.server_ids) or [logs.server_id],
        server_version=logs.version,
        flavour=flavour.name,
        hostname=logs.hostname,
        shipped_at=datetime.now(timezone.utc),
    )
    try:
        index.write_entry(entry)
    except Exception as exc:
        raise BinlogError(f"recording {path.name} in the binlog index failed: {exc}") from exc
    return entry


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


class _Bounded:
    """Reads at most `limit` bytes of a file (the size the server reported)."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self._handle = handle
        self._left = limit
        self.count = 0

    def read(self, n: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._handle.read(want)
        self._left -= len(data)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """The caller closes the file."""
