"""Which timeline a shipping server writes: only the one it owns (a timeline-ownership rule).

Several servers can ship to one cluster prefix over time: a mysql-server application
removed and deployed again under the same name has the same `<model-uuid>/<app>` prefix,
and a fresh server's binlogs are named `bin.000001...` again (with server-id 1 again).
Appending them to the previous server's timeline would skip its files whose names are
already there and mix two histories. So:

1. The shipping server keeps a marker in its work directory (`binlog-timeline.json`,
   0600) naming the timeline it writes, per storage location; it is written when the
   server starts or adopts a timeline, and by a point-in-time recovery or restore when
   it starts a new one.
2. It continues the catalog's current timeline when its marker names it, or - without
   such a marker - when its own binlogs prove it wrote it: at least one local closed
   file is in the timeline's index and every such file has the identity recorded there
   (size, creation time, GTID list at its start, first GTID). The proof covers a server
   upgraded from a version without markers and a work directory lost while the server
   kept its binlogs.
3. Otherwise it starts a NEW timeline whose parent is the current one (recovery to a
   time before it follows the parent) and which begins when the server's own binary
   log history does (its oldest binlog's creation, but after the parent's last shipped
   event), so its backups taken before its first shipment belong to it too.
4. A local file whose name is in the index but whose identity differs is never taken as
   shipped: on the owned timeline too (e.g. `RESET MASTER` run by hand) it forks.

Consequences: a server whose work directory is lost and whose shipped binlogs are no
longer on disk starts a new timeline (recovery to times after it needs a backup taken
after it starts); a unit that takes over shipping (the charm ships from the leader
only) starts its own timeline, and two servers shipping to one prefix at the same time
would fork on every run (the log warns): only one may ship.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry, Timeline, binlog_sequence
from database_backup.catalog.documents import as_list, as_object
from database_backup.files import write_json_atomic

from .reader import summarize

logger = logging.getLogger(__name__)

MARKER_NAME = "binlog-timeline.json"
_HEADER_BYTES = 64 * 1024  # the format description, GTID list and first GTID events


@dataclass(frozen=True)
class FileIdentity:
    """What tells one binlog file from another file of the same name.

    Attributes:
        size: bytes (a closed file's final size).
        created: timestamp of its format description event (seconds).
        gtid_list: the GTID state at its start (MariaDB).
        first_gtid: its first GTID, None when its first events hold none.
    """

    size: int
    created: int
    gtid_list: tuple[str, ...] = ()
    first_gtid: str | None = None

    def matches(self, entry: BinlogEntry) -> bool:
        """Whether `entry` (an index entry of the same name) records this very file."""
        return (
            entry.raw_size == self.size
            and int(entry.created_at.timestamp()) == self.created
            and list(entry.gtid_list) == list(self.gtid_list)
            and (self.first_gtid is None or self.first_gtid in entry.first_gtids)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept in the marker)."""
        return {
            "size": self.size,
            "created": self.created,
            "gtid-list": list(self.gtid_list),
            "first-gtid": self.first_gtid,
        }

    @classmethod
    def from_dict(cls, raw: object) -> FileIdentity | None:
        """Parse `to_dict`'s form; None when it is not one."""
        document = as_object(raw)
        if document is None:
            return None
        size, created = document.get("size"), document.get("created")
        gtids = as_list(document.get("gtid-list", []))
        first = document.get("first-gtid")
        if not isinstance(size, int) or not isinstance(created, int):
            return None
        if gtids is None:
            return None
        names = [item for item in gtids if isinstance(item, str)]
        if len(names) != len(gtids):
            return None
        return cls(size, created, tuple(names), first if isinstance(first, str) else None)


def local_identity(path: Path, size: int) -> FileIdentity:
    """The identity of a local binlog file (reads its first events only).

    Raises:
        OSError: the file cannot be read.
        BinlogFormatError: it is not a binlog this reader understands.
    """
    with path.open("rb") as handle:
        summary = summarize(handle, limit=min(size, _HEADER_BYTES))
    first = next(iter(summary.first_gtids.values()), None)
    return FileIdentity(size, summary.created, tuple(summary.gtid_list), first)


@dataclass
class Marker:
    """The timeline this server writes in one storage location, and files it verified."""

    location: str
    timeline: str
    verified: dict[str, FileIdentity] = field(default_factory=dict[str, FileIdentity])


def location_of(catalog: Catalog) -> str:
    """Names the cluster's storage location: endpoint, bucket, path and cluster id."""
    config = getattr(catalog.storage, "config", None)
    parts = [
        str(getattr(config, "endpoint", None) or ""),
        str(getattr(config, "bucket", "") or ""),
        str(getattr(config, "path", "") or ""),
        catalog.cluster_id,
    ]
    return "|".join(parts)


def read_marker(workdir: Path, location: str) -> Marker | None:
    """The marker for `location`, None when there is none (or it is unreadable)."""
    path = workdir / MARKER_NAME
    try:
        document = as_object(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the unreadable timeline marker %s: %s", path, exc)
        return None
    if document is None or document.get("location") != location:
        return None
    timeline = document.get("timeline")
    if not isinstance(timeline, str):
        return None
    raw = as_object(document.get("verified")) or {}
    verified: dict[str, FileIdentity] = {}
    for name, value in raw.items():
        identity = FileIdentity.from_dict(value)
        if identity is not None:
            verified[str(name)] = identity
    return Marker(location, timeline, verified)


def write_marker(workdir: Path, marker: Marker) -> None:
    """Replace the marker atomically (0600).

    Raises:
        OSError: it cannot be written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    document = {
        "format-version": 1,
        "location": marker.location,
        "timeline": marker.timeline,
        "verified": {name: item.to_dict() for name, item in sorted(marker.verified.items())},
    }
    write_json_atomic(workdir / MARKER_NAME, document, mode=0o600)


def claim_new_timeline(workdir: Path, catalog: Catalog, timeline_id: str) -> None:
    """Record that this server now writes `timeline_id` (a recovery just started it)."""
    write_marker(workdir, Marker(location_of(catalog), timeline_id))


@dataclass
class Ownership:
    """The timeline a shipment writes and the local files already shipped on it."""

    timeline: Timeline
    shipped: set[str]
    marker: Marker
    forked_because: str | None = None


def own_timeline(
    index: BinlogCatalog,
    workdir: Path,
    directory: Path,
    files: list[tuple[str, int]],
    *,
    server_id: int,
    hostname: str = "",
    now: datetime | None = None,
) -> Ownership:
    """Choose (or start) the timeline this server ships to, and update its marker.

    Args:
        index: the cluster's binlog index.
        workdir: the shipping work directory (holds the marker).
        directory: where the binlog files are.
        files: the server's binlogs (name, size), oldest first, the last one active.
        server_id: the server's id (recorded on a new timeline).
        hostname: the server's host name (recorded on a new timeline).
        now: the current time (tests).

    Raises:
        OSError, BinlogFormatError: a local binlog cannot be read.
        CatalogError, StorageError: the index cannot be read or written.
    """
    location = location_of(index.catalog)
    marker = read_marker(workdir, location)
    current = index.current_timeline()
    if current is None:
        timeline = index.create_timeline(now=now, server_id=server_id, reason="first shipment")
        return _claim(workdir, timeline, set(), location, {})
    names = index.shipped_names(current.timeline_id)
    ours = marker is not None and marker.timeline == current.timeline_id
    cached = marker.verified if marker is not None and ours else {}
    local = {
        name: local_identity(directory / name, size) for name, size in files[:-1] if name in names
    }
    unknown = [name for name in local if name not in cached]
    recorded = index.read_entries(current.timeline_id, unknown)
    verified: dict[str, FileIdentity] = {}
    differing: list[str] = []
    for name, identity in local.items():
        known = cached.get(name)
        entry = recorded.get(name)
        if known is not None and known == identity:
            verified[name] = identity
        elif known is None and entry is None:
            names.discard(name)  # its entry went away meanwhile (purged): not shipped
        elif known is None and entry is not None and identity.matches(entry):
            verified[name] = identity
        else:
            differing.append(name)
    if not differing and (ours or verified):
        if not ours:
            logger.info(
                "adopting binlog timeline %s: this server's %s are the files shipped there",
                current.timeline_id,
                ", ".join(sorted(verified)),
            )
        return _claim(workdir, current, names, location, verified)
    if differing:
        why = (
            f"local binlog(s) {', '.join(sorted(differing))} are not the files of that name "
            f"in timeline {current.timeline_id} (a new server, or its binary log was reset)"
        )
    else:
        why = f"this server did not write timeline {current.timeline_id}"
    if marker is not None and not ours:
        why += f"; it wrote {marker.timeline} (does another server ship to this prefix now?)"
    logger.warning("starting a new binlog timeline: %s", why)
    moment = _start_of_history(index, current, names, directory, files, now)
    timeline = index.create_timeline(
        now=moment,
        parent=current.timeline_id,
        server_id=server_id,
        reason=f"server {hostname or '?'} (id {server_id}) ships its own binlogs: {why}",
    )
    ownership = _claim(workdir, timeline, set(), location, {})
    ownership.forked_because = why
    return ownership


def _claim(
    workdir: Path,
    timeline: Timeline,
    shipped: set[str],
    location: str,
    verified: dict[str, FileIdentity],
) -> Ownership:
    marker = Marker(location, timeline.timeline_id, verified)
    write_marker(workdir, marker)
    return Ownership(timeline, shipped, marker)


def _start_of_history(
    index: BinlogCatalog,
    current: Timeline,
    names: set[str],
    directory: Path,
    files: list[tuple[str, int]],
    now: datetime | None,
) -> datetime:
    """When a new timeline for this server begins: its oldest binlog's creation, bounded.

    Not before the current timeline's last shipped event (that history is the current
    timeline's) nor its creation, and not after now.
    """
    moment = now or datetime.now(timezone.utc)
    floor = current.created_at + timedelta(milliseconds=1)
    numbered = [name for name in names if _has_sequence(name)]
    if numbered:
        last_name = max(numbered, key=binlog_sequence)
        last = index.read_entries(current.timeline_id, [last_name]).get(last_name)
        if last is not None:
            floor = max(floor, last.last_event_at + timedelta(seconds=1))
    start = floor
    if files:
        oldest, size = files[0]
        created = local_identity(directory / oldest, size).created
        if created:
            start = max(floor, datetime.fromtimestamp(created, timezone.utc))
    return min(moment, start)


def _has_sequence(name: str) -> bool:

    try:
        binlog_sequence(name)
    except ValueError:
        return False
    return True
