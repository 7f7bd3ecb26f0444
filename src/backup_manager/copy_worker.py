"""The copy engine, run by the job runner's worker like `database_backup.cli`.

`python -m backup_manager.copy_worker copy --spec SPEC --state-file STATE` copies each
artefact (server-side when both locations share endpoint and credentials, else streamed),
verifies the copy's SHA-256 against the source's `backup.json`, copies the job's `job.log`
and, unless the spec says `include-binlogs: false`, the shipped binary logs point-in-time
recovery from the backup needs (each verified against its index entry), then writes the
new backup's own `backup.json` (new id, `copied-from` note) last. Progress and result go
to the state file (for the unit that started it) and to the copy's status object in the
destination (`copy_status`, for whichever unit leads next). A failed copy deletes what it
had copied (binlogs already verified and indexed stay: they are whole); SIGTERM stops it
the same way. Exit codes: 0 success, 1 the copy failed, 2 bad arguments or spec.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, cast

from database_backup.byteio import Hasher
from database_backup.catalog import BackupMetadata, Catalog
from database_backup.catalog.binlogs import BinlogCatalog, binlog_sequence
from database_backup.catalog.store import LOG_FILE
from database_backup.contract import ERROR, RUNNING, SUCCESS, EngineState, now_text
from database_backup.files import write_json_atomic as write_json

from . import copy_status
from . import locations as locations_mod
from .catalogs import format_time, storage_errors, utc_now
from .errors import ManagerError
from .locations import Location

logger = logging.getLogger("backup_manager.copy_worker")

EXIT_FAILED, EXIT_USAGE = 1, 2
_CHUNK = 1 << 20


class StoppedError(Exception):
    """SIGTERM arrived: the copy stops and cleans up."""


class Progress:
    """The state file (for the local job) and the status object (for any leader)."""

    def __init__(self, spec: dict[str, Any], state_file: Path | None, dest: Catalog) -> None:
        self.spec = spec
        self.state_file = state_file
        self.dest = dest
        self.unit = str(spec.get("unit") or "")
        self.state = EngineState(  # the job's state file, as the engine's CLI keeps it
            command="copy",
            status=RUNNING,
            phase="starting",
            bytes_done=0,
            bytes_estimated=int(spec.get("size") or 0),
            started_at=now_text(),
        )
        self.size: int | None = None  # the copy's size, once it succeeded
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.publishing = False

    def update(self, **values: Any) -> None:
        """Set `EngineState` fields (`phase`, `bytes_done`, ...) and write the state file."""
        with self._lock:
            self.state = dataclasses.replace(self.state, **values, updated_at=now_text())
            if self.state_file is not None:
                write_json(self.state_file, self.state.to_json())

    def publish(self) -> None:
        """Write the status object (the heartbeat, while running)."""
        with self._lock:
            state = self.state
        phase = state.phase or "starting"
        if state.status == RUNNING:
            document = copy_status.running(self.spec, phase=phase, unit=self.unit)
        else:
            document = {
                **copy_status.running(self.spec, phase=phase, unit=self.unit),
                "status": state.status,
                "message": state.message,
                "size": self.size,
                "finished-at": state.finished_at,
            }
        copy_status.write(self.dest, self.spec["new-backup-id"], document)

    def start_heartbeat(self) -> None:
        """Publish now and every `copy_status.HEARTBEAT` seconds until `stop_heartbeat`."""
        self.publish()
        self.publishing = True
        self._beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(copy_status.HEARTBEAT):
            try:
                self.publish()
            except Exception as exc:  # a missed beat is not the copy's failure
                logger.warning("heartbeat not written: %s", exc)

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()


def run(spec: dict[str, Any], state_file: Path | None = None) -> EngineState:
    """Carry out a copy; return its final state (never raises for storage problems)."""
    source = Location.from_spec(spec["source"])
    dest = Location.from_spec(spec["dest"])
    try:
        dst_store = locations_mod.open_storage(dest, patient=True)
    except Exception as exc:  # no client at all: only the local job can learn why
        message = f"cannot open storage location {dest.name!r}: {exc}"
        state = EngineState(status=ERROR, phase="starting", finished_at=_now(), message=message)
        if state_file is not None:
            write_json(state_file, state.to_json())
        return state
    progress = Progress(spec, state_file, Catalog(dst_store, spec["cluster-id"]))
    progress.update(phase="starting")
    try:
        with storage_errors(dest, f"recording the copy's status in {dest.name}"):
            progress.dest.ensure_cluster()
            progress.start_heartbeat()
        size, binlogs = _copy(spec, source, dest, dst_store, progress.update)
    except (ManagerError, StoppedError) as exc:
        message = str(exc) or "the copy was stopped (SIGTERM); what it had copied was deleted"
        _discard(progress.dest, spec["new-backup-id"])
        progress.update(status=ERROR, message=message, finished_at=_now())
    except Exception as exc:  # the charm must learn that the copy failed, and why
        logger.exception("the copy failed unexpectedly")
        _discard(progress.dest, spec["new-backup-id"])
        message = f"the copy failed unexpectedly: {type(exc).__name__}: {exc}"
        progress.update(status=ERROR, message=message, finished_at=_now())
    else:
        message = (
            f"copied from {source.name}:{spec['backup-id']}, checksum verified"
            + binlogs.describe()
        )
        result = {"size": size, "backup-id": spec["new-backup-id"], "location": dest.name}
        progress.size = size
        progress.update(
            status=SUCCESS,
            phase="done",
            message=message,
            result=result,
            finished_at=_now(),
        )
    finally:
        progress.stop_heartbeat()
    if not progress.publishing:  # the destination refused it from the start: write nothing
        return progress.state
    try:
        progress.publish()
    except Exception as exc:  # the local job still has it; other leaders see it go stale
        logger.error("could not record the copy's outcome in %s: %s", dest.name, exc)
    return progress.state


def _now() -> str:
    return format_time(utc_now())


def _discard(dest: Catalog, backup_id: str) -> None:
    """Delete a failed copy's artefacts (not its status object); best effort."""
    prefix = dest.backup_prefix(backup_id)
    status_key = copy_status.key(dest, backup_id)
    try:
        for info in list(dest.storage.list(prefix)):
            if info.key != status_key:
                dest.storage.delete(info.key)
    except Exception as exc:
        logger.error("could not delete the failed copy under %s: %s", prefix, exc)


def _copy(
    spec: dict[str, Any],
    source: Location,
    dest: Location,
    dst_store: Any,
    update: Callable[..., None],
) -> tuple[int, CopiedBinlogs]:
    src_store = locations_mod.open_storage(source, patient=True)
    src = Catalog(src_store, spec["cluster-id"])
    dst = Catalog(dst_store, spec["cluster-id"])
    new_id = spec["new-backup-id"]
    with storage_errors(source, f"reading backup {spec['backup-id']}"):
        meta = src.read_metadata(spec["backup-id"])
    with storage_errors(dest, f"copying backup {meta.backup_id} to {dest.name}"):
        update(phase="copy")
        for name in meta.artefacts:
            src_store.copy_to(
                dst_store, src.artefact_key(meta.backup_id, name), dst.artefact_key(new_id, name)
            )
        update(phase="verify")
        checksum = meta.checksum
        digest, size = _digest(
            dst_store, [dst.artefact_key(new_id, n) for n in meta.artefacts], checksum.hasher()
        )
        update(bytes_done=size)
        if digest != checksum.sha256 or size != meta.stored_size:
            raise ManagerError(
                f"the copy of backup {meta.backup_id} in {dest.name!r} does not match its "
                f"checksum ({checksum.describe()} {digest}, {size} bytes; expected "
                f"{checksum.sha256}, {meta.stored_size} bytes); the copy was deleted: retry "
                "the copy"
            )
        _copy_log(src, dst, meta.backup_id, new_id)
    binlogs = CopiedBinlogs()
    if spec.get("include-binlogs", True):
        update(phase="binlogs")
        with storage_errors(dest, "copying the binary logs"):
            binlogs = _copy_binlogs(meta, src, dst)
    with storage_errors(dest, f"recording the copy of backup {meta.backup_id} in {dest.name}"):
        copied = dataclasses.replace(
            meta,
            backup_id=new_id,
            parent_id=spec.get("new-parent-id"),
            extra={
                **meta.extra,
                "copied-from": {
                    "location": source.name,
                    "backup-id": meta.backup_id,
                    "bucket": source.bucket,
                    "endpoint": source.endpoint,
                    "copied-at": _now(),
                },
            },
        )
        update(phase="metadata")
        dst.write_metadata(copied)  # last: a complete copy has its binlogs and log too
    return size, binlogs


def _digest(store: Any, keys: list[str], digest: Hasher) -> tuple[str, int]:
    """The digest (by `digest`) and size of the objects at `keys`, read back as one stream."""
    size = 0
    for name in keys:
        with store.open_stream(name) as reader:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _copy_log(src: Catalog, dst: Catalog, backup_id: str, new_id: str) -> None:
    """Copy the backup job's `job.log`, when the source has one (not part of the sha256)."""
    key = src.artefact_key(backup_id, LOG_FILE)
    store: Any = src.storage  # S3Storage: copies server-side when it can
    if store.exists(key):
        store.copy_to(dst.storage, key, dst.artefact_key(new_id, LOG_FILE))


@dataclasses.dataclass
class CopiedBinlogs:
    """What the copy brought of the shipped binary logs (for its message)."""

    timeline: str = ""
    names: list[str] = dataclasses.field(default_factory=list[str])
    copied: int = 0
    note: str = ""

    def describe(self) -> str:
        """`; binlogs bin.000003 to bin.000007 (...)`, or why there are none."""
        if not self.names:
            return f"; no binary logs: {self.note}" if self.note else ""
        span = self.names[0] if len(self.names) == 1 else f"{self.names[0]} to {self.names[-1]}"
        return (
            f"; binlogs {span} of timeline {self.timeline} for point-in-time recovery "
            f"({self.copied} copied, sha256 verified, {len(self.names) - self.copied} "
            "already there)"
        )


def _copy_binlogs(meta: BackupMetadata, src: Catalog, dst: Catalog) -> CopiedBinlogs:
    """Copy the binlogs PITR from `meta` needs: its start file to the newest shipped.

    Those are the files of the backup's timeline from the one holding its binlog
    position on. Each object is copied, read back and checked against its index entry's
    sha256 and size, then its entry is written (last, as the shipper does). Files the
    destination already holds with the same entry are left as they are.

    Raises:
        ManagerError: a copied binlog does not match its recorded sha256 or size.
    """
    if not meta.binlog_file:
        return CopiedBinlogs(note="the backup recorded no binlog position")
    source = BinlogCatalog(src)
    timeline = source.timeline_of(meta, source.timelines())
    if timeline is None:
        return CopiedBinlogs(note="none were shipped")
    start = binlog_sequence(meta.binlog_file)
    wanted = [e for e in source.entries(timeline.timeline_id) if e.sequence >= start]
    result = CopiedBinlogs(timeline=timeline.timeline_id, names=[e.name for e in wanted])
    if not wanted:
        result.note = f"none shipped from {meta.binlog_file} on"
        return result
    dest = BinlogCatalog(dst)
    dest.write_timeline(timeline)
    present = dest.read_entries(timeline.timeline_id, dest.shipped_names(timeline.timeline_id))
    for entry in wanted:
        if present.get(entry.name) == entry:
            continue
        src_key = source.object_key(timeline.timeline_id, entry.object_name)
        dst_key = dest.object_key(timeline.timeline_id, entry.object_name)
        store: Any = src.storage
        store.copy_to(dst.storage, src_key, dst_key)
        digest, size = _digest(dst.storage, [dst_key], hashlib.sha256())
        if digest != entry.sha256 or size != entry.stored_size:
            dst.storage.delete(dst_key)
            raise ManagerError(
                f"the copy of binlog {entry.name} (timeline {timeline.timeline_id}) does not "
                f"match its index entry (sha256 {digest}, {size} bytes; expected "
                f"{entry.sha256}, {entry.stored_size} bytes): retry the copy, or copy "
                "without binlogs (include-binlogs=false)"
            )
        dest.write_entry(entry)
        result.copied += 1
    return result


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise StoppedError("the copy was stopped (SIGTERM); what it had copied was deleted")


def read_spec(path: Path) -> dict[str, Any]:
    """The copy's spec (credentials inside: it must be readable by its owner only).

    Raises:
        ValueError: unreadable, not private, or not a copy spec.
    """
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} is readable by others: the spec holds credentials (chmod 600)")
    spec = json.loads(path.read_text(encoding="utf-8"))
    missing = [
        name
        for name in ("copy-id", "cluster-id", "backup-id", "new-backup-id", "source", "dest")
        if not isinstance(spec, dict) or name not in spec
    ]
    if missing:
        raise ValueError(f"{path} is not a copy spec: {', '.join(missing)} missing")
    return cast("dict[str, Any]", spec)  # a dict: a non-dict misses every name


def main(argv: Sequence[str] | None = None) -> int:
    """`copy --spec SPEC [--state-file STATE]`; return the exit code."""
    parser = argparse.ArgumentParser(prog="backup_manager.copy_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    copy = sub.add_parser("copy", help="copy one backup between storage locations")
    copy.add_argument("--spec", type=Path, required=True, help="JSON spec file (mode 0600)")
    copy.add_argument("--state-file", type=Path, help="JSON progress/result file to keep")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s copy: %(message)s")
    try:
        spec = read_spec(args.spec)
    except (OSError, ValueError) as exc:
        if args.state_file is not None:
            refused = EngineState(status=ERROR, phase="spec", message=str(exc))
            write_json(args.state_file, refused.to_json())
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        state = run(spec, args.state_file)
    finally:
        signal.signal(signal.SIGTERM, previous)
    logger.info("copy %s: %s %s", spec["copy-id"], state.status, state.message or "")
    return 0 if state.status == SUCCESS else EXIT_FAILED


if __name__ == "__main__":  # pragma: nocover
    sys.exit(main())
