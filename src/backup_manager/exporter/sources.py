"""What the metrics are made of: the hooks' state file and the catalogs in storage.

`Sources` keeps the newest readings. The state file is re-read when it changes; storage is
read at most once per `refresh_seconds` (60 by default) whatever the scrape rate, one
cluster and location at a time, with few retries and bounded listings, so a dead endpoint
costs one refresh, never a scrape. A storage error marks that catalog down
(`catalog_up 0`) and keeps its last readings; it never ends the service. Credentials are
never logged: messages are redacted before they are.

The binlog lag is how long changes may have been waiting to be shipped: `now` minus the
later of the newest shipped event and the shipper's last caught-up record
(`binlogs/shipping.json`, one GET), so an idle database, whose newest event only ages,
does not look behind while its shipper keeps confirming it is caught up.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import (
    ENTRY_SUFFIX,
    TIMELINE_FILE,
    BinlogCatalog,
    ShippingStatus,
    read_shipping_status,
)
from database_backup.catalog.errors import MetadataError
from database_backup.storage import ObjectStore, RetryPolicy, S3Storage
from database_backup.timefmt import parse_time

from ..locations import DEFAULT_LOCATION, Location
from . import state_file
from .metrics import ClusterSettings, JobHealth, LocationHealth, Snapshot
from .state_file import ClusterEntry, ExporterState

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
#: objects listed per cluster and location; beyond, bytes and lag are not reported
MAX_LISTED = 200_000

Opener = Callable[[Location], ObjectStore]


def open_storage(location: Location) -> S3Storage:
    """An S3 client that gives up quickly (the next refresh tries again)."""
    return S3Storage(location.s3_config(), retry=RetryPolicy(max_attempts=2))


def location_label(name: str) -> str:
    """The `location` label: the location's name, `""` for the s3-* options' default."""
    return "" if name == DEFAULT_LOCATION else name


def redact(text: str, locations: Mapping[str, Location]) -> str:
    """`text` with every location's access and secret key replaced by `***`."""
    for location in locations.values():
        for secret in (location.secret_key, location.access_key):
            if secret:
                text = text.replace(secret, "***")
    return text


@dataclasses.dataclass(frozen=True)
class Listing:
    """One listing of a cluster's prefix: its bytes, its newest shipped binlog and timeline."""

    total_bytes: int | None
    newest_binlog: tuple[str, str] | None  # (timeline id, binlog name)
    newest_timeline: str | None = None  # the current timeline (its document or files)


def list_cluster(storage: ObjectStore, catalog: Catalog, limit: int = MAX_LISTED) -> Listing:
    """Sum the bytes under the cluster's prefix and find its newest binlog index entry.

    Timeline ids sort by creation time, binlog names by sequence within a timeline. Past
    `limit` objects, nothing is known (None, None): a partial sum would mislead.
    """
    total = 0
    newest: tuple[str, int, str] | None = None
    newest_timeline: str | None = None
    binlogs = catalog.binlogs_prefix
    count = 0
    for info in storage.list(catalog.prefix):
        count += 1
        if count > limit:
            logger.warning(
                "%s holds more than %d objects: storage bytes and binlog lag not reported",
                catalog.prefix,
                limit,
            )
            return Listing(None, None)
        total += info.size
        if not info.key.startswith(binlogs):
            continue
        timeline, _, name = info.key[len(binlogs) :].partition("/")
        if name and "/" not in name and (newest_timeline is None or timeline > newest_timeline):
            newest_timeline = timeline
        if "/" in name or name == TIMELINE_FILE or not name.endswith(ENTRY_SUFFIX):
            continue
        binlog = name[: -len(ENTRY_SUFFIX)]
        sequence = _sequence(binlog)
        if sequence is None:
            continue
        if newest is None or (timeline, sequence) > (newest[0], newest[1]):
            newest = (timeline, sequence, binlog)
    return Listing(total, (newest[0], newest[2]) if newest else None, newest_timeline)


def _sequence(binlog: str) -> int | None:
    _, _, number = binlog.rpartition(".")
    return int(number) if number.isdigit() else None


def read_catalog(
    storage: ObjectStore, cluster: str, location: str, *, shipping: bool, limit: int = MAX_LISTED
) -> LocationHealth:
    """The health of one cluster's catalog at one location (storage errors propagate)."""
    catalog = Catalog(storage, cluster)
    # the index: one GET and a listing of the backup ids it does not know yet, never a
    # GET of every backup.json (reading a prefix that holds no catalog writes nothing)
    view = catalog.read_index()
    complete = list(view.complete)
    newest = max(complete, key=lambda b: (b.finished_at, b.backup_id), default=None)
    drill = _newest_drill(view.verifications()) if complete else None
    listing = list_cluster(storage, catalog, limit)
    last_event = None
    if shipping and listing.newest_binlog is not None:
        timeline, name = listing.newest_binlog
        entry = BinlogCatalog(catalog).read_entries(timeline, [name]).get(name)
        last_event = entry.last_event_at.timestamp() if entry is not None else None
    if shipping and listing.total_bytes is not None:
        caught_up = _caught_up_at(catalog, listing.newest_timeline)
        if caught_up is not None:
            last_event = caught_up if last_event is None else max(last_event, caught_up)
    return LocationHealth(
        cluster=cluster,
        location=location,
        catalog_up=True,
        last_complete_at=newest.finished_at.timestamp() if newest else None,
        last_duration_seconds=(
            (newest.finished_at - newest.started_at).total_seconds() if newest else None
        ),
        last_size_bytes=newest.stored_size if newest else None,
        complete_backups=len(complete),
        storage_bytes=listing.total_bytes,
        binlog_last_event_at=last_event,
        drill_passed=drill[0] if drill else None,
        drill_checked_at=drill[1] if drill else None,
    )


_bad_records: dict[str, str] = {}  # key -> the problem last logged (once until it changes)


def _caught_up_at(catalog: Catalog, current_timeline: str | None) -> float | None:
    """When the shipper last confirmed the current timeline was all in storage, or None.

    A record of an older timeline (a server replaced, a recovery) says nothing about the
    current one. A malformed record is logged (once until it changes) and ignored.
    """
    try:
        status: ShippingStatus | None = read_shipping_status(catalog)
    except MetadataError as exc:
        if _bad_records.get(catalog.prefix) != str(exc):
            logger.warning("ignoring the shipper's caught-up record: %s", exc)
        _bad_records[catalog.prefix] = str(exc)
        return None
    _bad_records.pop(catalog.prefix, None)
    if status is None:
        return None
    if current_timeline is not None and status.timeline < current_timeline:
        return None
    return status.caught_up_at.timestamp()


def _newest_drill(documents: Mapping[str, Mapping[str, object]]) -> tuple[bool, float] | None:
    """(passed, checked-at) of the newest drill result among a catalog's backups."""
    newest: tuple[bool, float] | None = None
    for document in documents.values():
        checked = document.get("checked-at")
        if not isinstance(checked, str):
            continue
        try:
            moment = parse_time(checked).timestamp()
        except ValueError:
            continue
        if newest is None or moment > newest[1]:
            newest = (document.get("result") == "pass", moment)
    return newest


class Sources:
    """The state file and the catalogs it names, read into snapshots."""

    def __init__(
        self,
        config: Path,
        *,
        opener: Opener = open_storage,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = REFRESH_SECONDS,
        limit: int = MAX_LISTED,
    ) -> None:
        self.config = config
        self._opener = opener
        self._clock = clock
        self.refresh_seconds = refresh_seconds
        self._limit = limit
        self.state = ExporterState()
        self._stamp: tuple[int, int] | None = None
        self._storages: dict[str, tuple[str, ObjectStore]] = {}
        self._health: dict[tuple[str, str], LocationHealth] = {}
        self._refreshed_at: float | None = None
        self._refreshed_for: object = None
        self._problem = ""
        self._failures: dict[tuple[str, str], str] = {}

    # -- the state file -----------------------------------------------------------------

    def load(self) -> bool:
        """Re-read the state file if it changed; True if it did.

        Raises:
            StateFileError: it cannot be read or is not what the hooks write.
        """
        try:
            stat = self.config.stat()
        except OSError:
            stat = None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
        if stamp is not None and stamp == self._stamp:
            return False
        self.state = state_file.read(self.config)
        self._stamp = stamp
        return True

    def reload(self) -> None:
        """`load`, logging (not raising) a broken file: the last good content stays.

        A problem is logged once, not at every poll, until it changes or goes away.
        """
        try:
            if self.load():
                logger.info("state file %s read", self.config)
        except state_file.StateFileError as exc:
            if str(exc) != self._problem:
                logger.error("keeping the previous state: %s", exc)
            self._problem = str(exc)
            return
        self._problem = ""

    # -- storage ------------------------------------------------------------------------

    def _storage(self, location: Location) -> ObjectStore:
        known = self._storages.get(location.name)
        if known is not None and known[0] == location.fingerprint:
            return known[1]
        if known is not None:
            _close(known[1])
        storage = self._opener(location)
        self._storages[location.name] = (location.fingerprint, storage)
        return storage

    def refresh_due(self) -> bool:
        """Whether storage should be read now (never read, stale, or new locations)."""
        if self._refreshed_at is None or self._refreshed_for != self._targets():
            return True
        return self._clock() - self._refreshed_at >= self.refresh_seconds

    def _targets(self) -> object:
        locations = tuple(sorted((n, loc.fingerprint) for n, loc in self.state.locations.items()))
        clusters = tuple((c.cluster, c.shipping_location) for c in self.state.clusters)
        return (locations, clusters)

    def refresh(self) -> None:
        """Read every cluster's catalog at every location (errors: that catalog is down)."""
        state = self.state
        health: dict[tuple[str, str], LocationHealth] = {}
        for entry in state.clusters:
            for name, location in state.locations.items():
                health[(entry.cluster, name)] = self._read(entry, name, location)
        self._health = health  # one assignment: a scrape meanwhile sees the old or the new
        for name in set(self._storages) - set(self.state.locations):
            _close(self._storages.pop(name)[1])
        self._refreshed_at = self._clock()
        self._refreshed_for = self._targets()

    def _read(self, entry: ClusterEntry, name: str, location: Location) -> LocationHealth:
        label = location_label(name)
        shipping = entry.binlog_max_lag is not None and entry.shipping_location == name
        try:
            health = read_catalog(
                self._storage(location),
                entry.cluster,
                label,
                shipping=shipping,
                limit=self._limit,
            )
        except Exception as exc:  # any failure marks this catalog down, never the service
            message = redact(f"{type(exc).__name__}: {exc}", self.state.locations)
            if self._failures.get((entry.cluster, name)) != message:  # once, not each minute
                logger.error(
                    "reading the catalog of %s at %r failed: %s", entry.cluster, name, message
                )
            self._failures[(entry.cluster, name)] = message
            previous = self._health.get((entry.cluster, name))
            if previous is None:
                return LocationHealth(entry.cluster, label, catalog_up=False)
            return dataclasses.replace(previous, catalog_up=False)
        if self._failures.pop((entry.cluster, name), None) is not None:
            logger.info("reading the catalog of %s at %r works again", entry.cluster, name)
        return dataclasses.replace(health, read_at=self._clock())

    def close(self) -> None:
        """Release the S3 clients."""
        for _, storage in self._storages.values():
            _close(storage)
        self._storages.clear()

    # -- the snapshot -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The metrics' input now: the last readings, ages measured from the clock."""
        now = self._clock()
        state, health = self.state, self._health
        jobs: list[JobHealth] = []
        clusters: list[ClusterSettings] = []
        for entry in state.clusters:
            for job_type, outcome in entry.jobs.items():
                failed_at = tuple(_stamp(t) for t in outcome.failed_at)
                jobs.append(
                    JobHealth(
                        entry.cluster,
                        job_type,
                        failed_at=tuple(t for t in failed_at if t is not None),
                        last_failed=outcome.last_failed,
                    )
                )
            clusters.append(
                ClusterSettings(
                    entry.cluster,
                    binlog_max_lag_seconds=entry.binlog_max_lag,
                    schedule_max_interval_seconds=entry.schedule_max_interval,
                )
            )
        locations = tuple(health[key] for key in sorted(health))
        return Snapshot(now=now, locations=locations, jobs=tuple(jobs), clusters=tuple(clusters))


def _stamp(text: str) -> float | None:
    try:
        return parse_time(text).timestamp()
    except ValueError:
        return None


def _close(storage: ObjectStore) -> None:
    if isinstance(storage, S3Storage):
        storage.close()
