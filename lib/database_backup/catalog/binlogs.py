"""The binlog index in object storage: timelines, one entry per shipped binary log.

Layout under the cluster's prefix::

    binlogs/<timeline-id>/timeline.json        the timeline (when, forked from what)
    binlogs/<timeline-id>/<binlog>.zst[.enc]   a shipped binlog (the stored bytes)
    binlogs/<timeline-id>/<binlog>.json        its index entry, written LAST
    binlogs/shipping.json                      when the shipper last was caught up

A timeline is one linear history of the server's binary logs. The first shipment starts
one; every point-in-time recovery starts a new one (binlog names start again at
`.000001` after it), so the new history never overwrites the old one; so does a server
that did not write the current one (a replacement server under the same cluster id, see
`mysql.timeline_owner`): its timeline starts when its own binlogs do. The current
timeline is the newest; a backup belongs to the timeline that was current when it
started (backups never run during a recovery).

An entry exists only once its object is fully stored (same rule as ``backup.json``), so
a shipper that died mid-upload just ships that file again.

``shipping.json`` (`ShippingStatus`) says when the shipper last confirmed that every
committed event up to the server's binlog position was in storage: an idle server writes
no events, so "now minus the newest shipped event" is not how much is at risk; "now minus
the later of that event and the last catch-up" is.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from database_backup.storage import ObjectNotFoundError
from database_backup.timefmt import as_utc, utc_now

from .documents import as_object, dump_document, load_json
from .errors import CatalogError, MetadataError
from .metadata import BackupMetadata, format_time, new_backup_id, parse_time
from .retention import Decision, RetentionPolicy
from .store import Catalog

TIMELINE_FILE = "timeline.json"
ENTRY_SUFFIX = ".json"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SEQUENCE = re.compile(r"\.(\d+)$")
# a stored binlog object: `<binlog name>` then suffixes that do not start with a digit
_STORED_NAME = re.compile(r"^(.+?\.\d+)(?:\.[^.\d][^/]*)?$")
_THREADS = 8


def binlog_sequence(name: str) -> int:
    """The number at the end of a binlog file name (`bin.000042` -> 42).

    Raises:
        ValueError: the name has no numeric suffix.
    """
    match = _SEQUENCE.search(name)
    if not match:
        raise ValueError(f"not a binlog file name: {name!r}")
    return int(match.group(1))


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name == TIMELINE_FILE:
        raise ValueError(f"invalid {what} {name!r}")
    return name


@dataclass
class Timeline:
    """One linear history of binary logs.

    Attributes:
        timeline_id: sortable id (like a backup id).
        created_at: when it started.
        parent: the timeline it was forked from (None for the first).
        fork_backup: the backup restored by the recovery that started it.
        fork_target: the point in time that recovery replayed to (the parent's history
            up to that moment is this timeline's history before `created_at`).
        fork_gtid: GTID state the new binary logs start from.
        server_id: the server that writes it.
        reason: free text ("first shipment", "point-in-time recovery to ...").
    """

    timeline_id: str
    created_at: datetime
    parent: str | None = None
    fork_backup: str | None = None
    fork_target: datetime | None = None
    fork_gtid: str | None = None
    server_id: int | None = None
    reason: str = ""


@dataclass
class BinlogEntry:
    """Index entry of one shipped binlog file.

    Times are those of the binlog's events (second resolution, UTC).
    """

    name: str
    timeline: str
    object_name: str
    raw_size: int
    stored_size: int
    sha256: str
    compression: str
    encrypted: bool
    created_at: datetime
    last_event_at: datetime
    first_event_at: datetime | None = None
    gtid_list: list[str] = field(default_factory=list[str])
    first_gtids: list[str] = field(default_factory=list[str])
    last_gtids: list[str] = field(default_factory=list[str])
    server_ids: list[int] = field(default_factory=list[int])
    server_version: str = ""
    flavour: str = ""
    hostname: str = ""
    shipped_at: datetime | None = None

    @property
    def sequence(self) -> int:
        """The file's number (`bin.000042` -> 42)."""
        return binlog_sequence(self.name)


@dataclass(frozen=True)
class StoredBinlog:
    """A binlog as listed in storage (for retention: no index entry is read).

    Attributes:
        timeline: its timeline id.
        name: the binlog's file name (`bin.000042`).
        entry_key: the key of its index entry (None: the shipment was cut short).
        object_keys: the keys of its stored bytes.
    """

    timeline: str
    name: str
    entry_key: str | None
    object_keys: tuple[str, ...]

    @property
    def sequence(self) -> int:
        """The file's number (`bin.000042` -> 42)."""
        return binlog_sequence(self.name)


_Record = TypeVar("_Record", Timeline, BinlogEntry)
_Numbered = TypeVar("_Numbered", BinlogEntry, StoredBinlog)


def _to_json(record: Timeline | BinlogEntry) -> dict[str, object]:
    document: dict[str, object] = {"format-version": FORMAT_VERSION}
    for item in fields(record):
        value: object = getattr(record, item.name)
        if isinstance(value, datetime):
            value = format_time(value)
        document[item.name.replace("_", "-")] = value
    return document


def _from_json(cls: type[_Record], raw: bytes, what: str, times: Sequence[str]) -> _Record:
    document = as_object(load_json(raw, what))
    if document is None:
        raise MetadataError(f"{what} must be a JSON object")
    version = document.get("format-version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise MetadataError(f"{what} has an unknown format-version {version!r}")
    names = {item.name for item in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in document.items():
        name = key.replace("-", "_")
        if name not in names:
            continue
        if name in times and value is not None:
            value = parse_time(value, f"{key} of {what}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise MetadataError(f"{what} is incomplete: {exc}") from None


_ENTRY_TIMES = ("created_at", "last_event_at", "first_event_at", "shipped_at")
_TIMELINE_TIMES = ("created_at", "fork_target")


class BinlogCatalog:
    """The shipped binlogs of one cluster (beside its backups in the same catalog)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.storage = catalog.storage

    # -- keys ---------------------------------------------------------------------------

    def timeline_prefix(self, timeline_id: str) -> str:
        """``<cluster-id>/binlogs/<timeline-id>/``."""
        return f"{self.catalog.binlogs_prefix}{_check_name(timeline_id, 'timeline id')}/"

    def object_key(self, timeline_id: str, object_name: str) -> str:
        """Key of a stored binlog object."""
        return self.timeline_prefix(timeline_id) + _check_name(object_name, "object name")

    def entry_key(self, timeline_id: str, name: str) -> str:
        """Key of a binlog's index entry."""
        return self.timeline_prefix(timeline_id) + _check_name(name, "binlog name") + ENTRY_SUFFIX

    # -- timelines ----------------------------------------------------------------------

    def timelines(self) -> list[Timeline]:
        """Every timeline, oldest first."""
        prefix = self.catalog.binlogs_prefix
        found: list[Timeline] = []
        for info in self.storage.list(prefix):
            rest = info.key[len(prefix) :]
            timeline_id, _, name = rest.partition("/")
            if name != TIMELINE_FILE:
                continue
            try:
                raw = self.storage.get_bytes(info.key)
            except ObjectNotFoundError:
                continue
            found.append(_from_json(Timeline, raw, f"timeline {timeline_id}", _TIMELINE_TIMES))
        found.sort(key=lambda timeline: (timeline.created_at, timeline.timeline_id))
        return found

    def current_timeline(self) -> Timeline | None:
        """The newest timeline, None before the first shipment."""
        timelines = self.timelines()
        return timelines[-1] if timelines else None

    def create_timeline(
        self,
        *,
        now: datetime | None = None,
        parent: str | None = None,
        fork_backup: str | None = None,
        fork_target: datetime | None = None,
        fork_gtid: str | None = None,
        server_id: int | None = None,
        reason: str = "",
    ) -> Timeline:
        """Start a new timeline; from now on it is the current one."""
        self.catalog.ensure_cluster()
        moment = as_utc(now or utc_now())
        current = self.current_timeline()
        if current is not None and current.created_at >= moment:
            raise CatalogError(
                f"timeline {current.timeline_id} starts at {format_time(current.created_at)}, "
                "after the new one would: check the clock"
            )
        timeline = Timeline(
            timeline_id=new_backup_id(moment),
            created_at=moment,
            parent=parent,
            fork_backup=fork_backup,
            fork_target=fork_target,
            fork_gtid=fork_gtid,
            server_id=server_id,
            reason=reason,
        )
        self.write_timeline(timeline)
        return timeline

    def write_timeline(self, timeline: Timeline) -> None:
        """Store (or update) a timeline document."""
        key = self.timeline_prefix(timeline.timeline_id) + TIMELINE_FILE
        self.storage.put_bytes(key, dump_document(_to_json(timeline)))

    def timeline_of(
        self, backup: BackupMetadata, timelines: Sequence[Timeline]
    ) -> Timeline | None:
        """The timeline that was current when `backup` started (see module docstring)."""
        return timeline_at(backup.started_at, timelines)

    # -- entries ------------------------------------------------------------------------

    def entries(self, timeline_id: str) -> list[BinlogEntry]:
        """The complete index entries of a timeline, in binlog order.

        An entry whose object is missing is left out (it cannot be replayed).
        """
        prefix = self.timeline_prefix(timeline_id)
        objects: set[str] = set()
        entry_keys: list[str] = []
        for info in self.storage.list(prefix):
            name = info.key[len(prefix) :]
            if "/" in name or name == TIMELINE_FILE:
                continue
            if name.endswith(ENTRY_SUFFIX):
                entry_keys.append(info.key)
            else:
                objects.add(name)

        def fetch(key: str) -> BinlogEntry:
            raw = self.storage.get_bytes(key)
            return _from_json(BinlogEntry, raw, f"binlog index entry {key}", _ENTRY_TIMES)

        if len(entry_keys) > 1:
            with ThreadPoolExecutor(max_workers=min(_THREADS, len(entry_keys))) as pool:
                loaded = list(pool.map(fetch, entry_keys))
        else:
            loaded = [fetch(key) for key in entry_keys]
        kept = [entry for entry in loaded if entry.object_name in objects]
        kept.sort(key=lambda entry: entry.sequence)
        return kept

    def shipped_names(self, timeline_id: str) -> set[str]:
        """Names of the binlogs with an index entry in a timeline (one listing)."""
        prefix = self.timeline_prefix(timeline_id)
        names: set[str] = set()
        for info in self.storage.list(prefix):
            name = info.key[len(prefix) :]
            if name.endswith(ENTRY_SUFFIX) and name != TIMELINE_FILE and "/" not in name:
                names.add(name[: -len(ENTRY_SUFFIX)])
        return names

    def read_entries(self, timeline_id: str, names: Iterable[str]) -> dict[str, BinlogEntry]:
        """The index entries of these binlog names in a timeline (missing ones left out)."""

        def fetch(name: str) -> BinlogEntry | None:
            key = self.entry_key(timeline_id, name)
            try:
                raw = self.storage.get_bytes(key)
            except ObjectNotFoundError:
                return None
            return _from_json(BinlogEntry, raw, f"binlog index entry {key}", _ENTRY_TIMES)

        wanted = list(dict.fromkeys(names))
        if len(wanted) > 1:
            with ThreadPoolExecutor(max_workers=min(_THREADS, len(wanted))) as pool:
                loaded = list(pool.map(fetch, wanted))
        else:
            loaded = [fetch(name) for name in wanted]
        return {entry.name: entry for entry in loaded if entry is not None}

    def write_entry(self, entry: BinlogEntry) -> None:
        """Record a shipped binlog (after checking its object's size).

        Raises:
            CatalogError: the object is missing or has another size.
        """
        key = self.object_key(entry.timeline, entry.object_name)
        try:
            size = self.storage.head(key).size
        except ObjectNotFoundError:
            raise CatalogError(f"binlog {entry.name}: {key} is not in storage") from None
        if size != entry.stored_size:
            raise CatalogError(
                f"binlog {entry.name}: stored object holds {size} bytes, {entry.stored_size} "
                "were written; not recording it"
            )
        self.storage.put_bytes(
            self.entry_key(entry.timeline, entry.name), dump_document(_to_json(entry))
        )

    def delete_entry(self, entry: BinlogEntry) -> None:
        """Delete a shipped binlog: its index entry first, then its object."""
        self.storage.delete(self.entry_key(entry.timeline, entry.name))
        self.storage.delete(self.object_key(entry.timeline, entry.object_name))

    def purge(
        self, backups: Sequence[BackupMetadata], *, dry_run: bool = False
    ) -> list[StoredBinlog]:
        """Delete the binlogs no kept backup needs for point-in-time recovery.

        Cost: one listing of the binlog prefix (a request per 1000 objects), one GET per
        timeline document and two DELETEs per binlog deleted; index entries are not read
        (a binlog's number is in its name).

        Args:
            backups: the backups that are kept (complete ones; others are ignored).
            dry_run: only return what would be deleted.

        Returns:
            The binlogs deleted (or that would be), per timeline in binlog order.
        """
        timelines, stored = self.stored_binlogs()
        if not timelines:
            return []
        doomed = select_binlogs_for_deletion(backups, timelines, stored)
        if not dry_run:
            for binlog in doomed:
                # the index entry first: a binlog without one is never replayed
                if binlog.entry_key is not None:
                    self.storage.delete(binlog.entry_key)
                for key in binlog.object_keys:
                    self.storage.delete(key)
        return doomed

    def stored_binlogs(self) -> tuple[list[Timeline], dict[str, list[StoredBinlog]]]:
        """The timelines (oldest first) and the binlogs stored in each, from one listing.

        A binlog is listed whether it has an index entry, an object, or both (an object
        without its entry is a shipment cut short). Files whose names are not binlog
        names are left out, so they are never deleted.
        """
        prefix = self.catalog.binlogs_prefix
        timeline_keys: dict[str, str] = {}
        found: dict[str, dict[str, tuple[str | None, list[str]]]] = {}
        for info in self.storage.list(prefix):
            timeline_id, _, file_name = info.key[len(prefix) :].partition("/")
            if not file_name or "/" in file_name:
                continue
            if file_name == TIMELINE_FILE:
                timeline_keys[timeline_id] = info.key
                continue
            is_entry = file_name.endswith(ENTRY_SUFFIX)
            base = file_name[: -len(ENTRY_SUFFIX)] if is_entry else file_name
            match = _STORED_NAME.match(base)
            if match is None:
                continue
            name = match.group(1) if not is_entry else base
            if is_entry and match.group(1) != base:
                continue
            entry_key, objects = found.setdefault(timeline_id, {}).get(name, (None, []))
            if is_entry:
                entry_key = info.key
            else:
                objects = [*objects, info.key]
            found[timeline_id][name] = (entry_key, objects)
        timelines: list[Timeline] = []
        for timeline_id, key in timeline_keys.items():
            try:
                raw = self.storage.get_bytes(key)
            except ObjectNotFoundError:
                continue
            timelines.append(_from_json(Timeline, raw, f"timeline {timeline_id}", _TIMELINE_TIMES))
        timelines.sort(key=lambda timeline: (timeline.created_at, timeline.timeline_id))
        stored: dict[str, list[StoredBinlog]] = {}
        for timeline_id, names in found.items():
            binlogs = [
                StoredBinlog(timeline_id, name, entry_key, tuple(objects))
                for name, (entry_key, objects) in names.items()
            ]
            binlogs.sort(key=lambda binlog: binlog.sequence)
            stored[timeline_id] = binlogs
        return timelines, stored


def purge_with_binlogs(
    catalog: Catalog,
    policy: RetentionPolicy,
    *,
    protected: Collection[str] = (),
    dry_run: bool = False,
) -> tuple[list[Decision], list[StoredBinlog]]:
    """Apply backup retention, then delete the binlogs the remaining backups do not need.

    The backups are listed once: the binlogs kept are those the complete backups that
    retention keeps (held, protected and parents included) need.

    Returns:
        (the backups' decisions, the binlogs deleted), carried out unless dry_run.
    """
    view = catalog.read_index()
    backups = view.entries(include_incomplete=True)
    decisions = catalog.purge(policy, protected=protected, dry_run=dry_run, view=view)
    gone = {decision.backup_id for decision in decisions}
    kept = [
        entry
        for entry in backups
        if isinstance(entry, BackupMetadata) and entry.backup_id not in gone
    ]
    return decisions, BinlogCatalog(catalog).purge(kept, dry_run=dry_run)


def timeline_at(moment: datetime, timelines: Sequence[Timeline]) -> Timeline | None:
    """The timeline current at `moment`: the newest created at or before it, else the oldest."""
    if not timelines:
        return None
    chosen = timelines[0]
    for timeline in timelines:
        if timeline.created_at <= moment:
            chosen = timeline
    return chosen


def select_binlogs_for_deletion(
    backups: Iterable[BackupMetadata],
    timelines: Sequence[Timeline],
    entries: Mapping[str, Sequence[_Numbered]],
) -> list[_Numbered]:
    """The binlogs that no kept backup needs (pure).

    In each timeline, a kept backup needs the file holding its binlog position and every
    later file; a timeline started by a recovery also needs all its files while the
    backup it was forked from is kept (its logs begin at that backup's state). The
    current (newest) timeline keeps everything while no backup anchors it. Files
    older than every anchor, and timelines without any anchor, are selected.
    """
    if not timelines:
        return []
    anchors = _anchors(backups, timelines)
    doomed: list[_Numbered] = []
    for timeline in timelines:
        first_needed = anchors.get(timeline.timeline_id)
        for entry in entries.get(timeline.timeline_id, []):
            if first_needed is None or entry.sequence < first_needed:
                doomed.append(entry)
    return doomed


def _anchors(backups: Iterable[BackupMetadata], timelines: Sequence[Timeline]) -> dict[str, int]:
    """First binlog sequence needed, per timeline (see `select_binlogs_for_deletion`)."""
    kept = {backup.backup_id: backup for backup in backups if backup.is_complete}
    anchors: dict[str, int] = {}

    def anchor(timeline_id: str, sequence: int) -> None:
        anchors[timeline_id] = min(sequence, anchors.get(timeline_id, sequence))

    for backup in kept.values():
        timeline = timeline_at(backup.started_at, timelines)
        if backup.kind == "logical" or not backup.binlog_file or timeline is None:
            continue
        try:
            anchor(timeline.timeline_id, binlog_sequence(backup.binlog_file))
        except ValueError:
            continue
    for timeline in timelines:
        if timeline.fork_backup is not None and timeline.fork_backup in kept:
            anchor(timeline.timeline_id, 0)
    anchors.setdefault(timelines[-1].timeline_id, 0)
    return anchors


# -- the shipper's caught-up record --------------------------------------------------------

SHIPPING_FILE = "shipping.json"


@dataclass(frozen=True)
class ShippingStatus:
    """The shipper's last confirmation that storage held every committed binlog event.

    Attributes:
        caught_up_at: the server's time when it was (second resolution).
        timeline: the timeline the events were shipped to.
        binlog_file / binlog_offset: the server's binlog position then (the open file;
            everything before it is shipped, nothing committed is in it).
        unit: who shipped (the Juju unit when known, else the database host's name).
    """

    caught_up_at: datetime
    timeline: str
    binlog_file: str
    binlog_offset: int
    unit: str | None = None


def shipping_status_key(catalog: Catalog) -> str:
    """``<cluster-id>/binlogs/shipping.json``."""
    return catalog.binlogs_prefix + SHIPPING_FILE


def write_shipping_status(catalog: Catalog, status: ShippingStatus) -> None:
    """Store the caught-up record (one PUT; the newest wins)."""
    document: dict[str, object] = {
        "format-version": FORMAT_VERSION,
        "caught-up-at": format_time(status.caught_up_at),
        "timeline": _check_name(status.timeline, "timeline id"),
        "position": {"file": status.binlog_file, "offset": status.binlog_offset},
        "unit": status.unit,
    }
    catalog.storage.put_bytes(shipping_status_key(catalog), dump_document(document))


def read_shipping_status(catalog: Catalog) -> ShippingStatus | None:
    """The caught-up record (one GET), None if the shipper never wrote one.

    Raises:
        MetadataError: the record is not what `write_shipping_status` writes.
    """
    key = shipping_status_key(catalog)
    try:
        raw = catalog.storage.get_bytes(key)
    except ObjectNotFoundError:
        return None
    document = as_object(load_json(raw, key))
    if document is None:
        raise MetadataError(f"{key} must be a JSON object")
    version = document.get("format-version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise MetadataError(f"{key} has an unknown format-version {version!r}")
    position = as_object(document.get("position")) or {}
    timeline, file, offset = document.get("timeline"), position.get("file"), position.get("offset")
    unit = document.get("unit")
    if not isinstance(timeline, str) or not isinstance(file, str):
        raise MetadataError(f"{key} lacks its timeline or binlog position")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise MetadataError(f"{key} has an invalid binlog offset {offset!r}")
    return ShippingStatus(
        caught_up_at=parse_time(document.get("caught-up-at"), f"caught-up-at of {key}"),
        timeline=timeline,
        binlog_file=file,
        binlog_offset=offset,
        unit=unit if isinstance(unit, str) else None,
    )
