"""The backup catalogs the manager reads: one per database cluster and storage location.

The cluster id is `<model-uuid>/<remote-app-name>` under each location's path, the prefix
the provider writes to. Where a method takes `app`, it is a related application's name (this
model's prefix) or a whole cluster id (any cluster found in a location: a removed
application's, another model's). Storage errors become `ManagerError`s naming the location and
what to fix. No `ops` here.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Collection, Generator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from database_backup import timefmt
from database_backup.catalog import (
    BackupHeldError,
    BackupMetadata,
    BackupNotFoundError,
    Catalog,
    CatalogError,
    CatalogView,
    Decision,
    IncompleteBackup,
    RetentionPolicy,
    find_clusters,
)
from database_backup.catalog.binlogs import purge_with_binlogs
from database_backup.storage import AccessDeniedError, S3Storage, StorageError
from database_backup.timefmt import utc_now

from . import locations as locations_mod
from .errors import ManagerError
from .history import human_size
from .locations import Location

Entry = BackupMetadata | IncompleteBackup
#: a multipart upload older than this is abandoned (a failed job's): retention aborts it
INCOMPLETE_UPLOAD_AGE = datetime.timedelta(hours=24)
logger = logging.getLogger(__name__)
PHYSICAL = ("full", "incremental")


def format_time(moment: datetime.datetime | None) -> str:
    """`2026-11-22T07:15:00Z` (seconds, `database_backup.timefmt`), or empty."""
    return "" if moment is None else timefmt.format_time(moment)


def cluster_id(model_uuid: str, app: str) -> str:
    """The catalog prefix of a database application: `<model-uuid>/<app>`."""
    return f"{model_uuid}/{app}"


@contextmanager
def storage_errors(location: Location, what: str) -> Generator[None, None, None]:
    """Turn storage and catalog errors into ManagerErrors that name the location."""
    try:
        yield
    except AccessDeniedError as exc:
        raise ManagerError(
            f"{what} failed: storage location {location.name!r} ({location.describe()}) "
            f"refused the credentials: {exc}. Fix the credentials of {location.name!r} "
            "(the s3-integrator application's config, or the s3-credentials secret)"
        ) from None
    except (StorageError, CatalogError) as exc:
        raise ManagerError(f"{what} failed on storage location {location.name!r}: {exc}") from None


class Catalogs:
    """Catalog operations over every location (one S3 client per location)."""

    def __init__(
        self,
        locations: Mapping[str, Location],
        model_uuid: str,
        *,
        opener: Callable[[Location], Any] | None = None,
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self.locations = dict(locations)
        self.model_uuid = model_uuid
        self._opener = opener or locations_mod.open_storage
        self._clock = clock
        self._storages: dict[str, Any] = {}

    def close(self) -> None:
        """Release the S3 clients."""
        for storage in self._storages.values():
            if isinstance(storage, S3Storage):
                storage.close()
        self._storages.clear()

    def location(self, name: str = "") -> Location:
        """A location by name (empty: the first)."""
        try:
            return locations_mod.choose(self.locations, name)
        except locations_mod.LocationError as exc:
            raise ManagerError(str(exc)) from None

    def storage(self, location: Location) -> Any:
        """The (cached) S3 client of a location."""
        if location.name not in self._storages:
            self._storages[location.name] = self._opener(location)
        return self._storages[location.name]

    def cluster_of(self, app: str) -> str:
        """The cluster id of `app` (this model's prefix), or `app` if it is a cluster id."""
        return app if "/" in app else cluster_id(self.model_uuid, app)

    def catalog(self, app: str, location: Location) -> Catalog:
        """The catalog of `app`'s cluster at `location`."""
        return Catalog(self.storage(location), self.cluster_of(app), clock=self._clock)

    def clusters(self, location: Location) -> list[str]:
        """Every cluster with a catalog at `location`, related or not (the bucket's truth)."""
        with storage_errors(location, "listing the clusters"):
            return find_clusters(self.storage(location))

    def check(self, location: Location) -> None:
        """Raise a ManagerError if the location's bucket is unreachable with its credentials."""
        with storage_errors(location, "checking the bucket"):
            self.storage(location).check()

    # -- reading ------------------------------------------------------------------------

    def view(self, app: str, location: Location) -> CatalogView:
        """One read of `app`'s catalog at `location`: backups, holds, drill results.

        From the cluster's index (one GET and a listing per 1,000 backup ids).
        """
        with storage_errors(location, f"listing the backups of {app}"):
            return self.catalog(app, location).read_index()

    def entries(self, app: str, location: Location) -> list[Entry]:
        """Every backup of `app` at `location`, incomplete ones included, oldest first."""
        return self.view(app, location).entries(include_incomplete=True)

    def complete(self, app: str, location: Location) -> list[BackupMetadata]:
        """The complete backups of `app` at `location`, oldest first."""
        return [e for e in self.entries(app, location) if isinstance(e, BackupMetadata)]

    def rows(
        self, apps: Collection[str], location_name: str = "", *, discover: bool = False
    ) -> list[dict[str, Any]]:
        """Rows for `list-backups`: every backup of every app at every (or one) location.

        With `discover`, also of every other cluster found in the locations.
        """
        wanted = [self.location(location_name)] if location_name else self.locations.values()
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for location in wanted:
            names = sorted(apps)
            if discover:
                known = {self.cluster_of(app) for app in names}
                names += [c for c in self.clusters(location) if c not in known]
            for app in names:
                view = self.view(app, location)
                holds, drills = view.holds(), view.verifications()
                cluster = self.cluster_of(app)
                for entry in view.entries(include_incomplete=True):
                    row = _row(entry, cluster, location.name, holds.get(entry.backup_id), now)
                    rows.append(_with_drill(row, drills.get(entry.backup_id)))
        rows.sort(key=lambda r: (r["started-at"] or r["finished-at"], r["backup-id"]))
        return rows

    def find(
        self, app: str, backup_id: str, location_name: str = ""
    ) -> tuple[Location, BackupMetadata]:
        """The complete backup `backup_id` of `app`, searched in one or every location."""
        wanted = [self.location(location_name)] if location_name else list(self.locations.values())
        for location in wanted:
            with storage_errors(location, f"reading backup {backup_id}"):
                try:
                    return location, self.catalog(app, location).read_metadata(backup_id)
                except BackupNotFoundError:
                    continue
        where = f"location {location_name!r}" if location_name else "any storage location"
        which = f"cluster={app}" if "/" in app else f"application={app}"
        raise ManagerError(
            f"there is no complete backup {backup_id!r} of {app} in {where}: run "
            f"`juju run backup-manager/leader list-backups {which}` to see the ids"
        )

    def locate(
        self, backup_id: str, apps: Collection[str], location_name: str = ""
    ) -> tuple[str, Location] | None:
        """The cluster (related app name or cluster id) and location holding `backup_id`.

        Searched in the related `apps` and every cluster found in the locations (None if
        in none); a backup id found in two clusters must be named with cluster=.
        """
        wanted = [self.location(location_name)] if location_name else list(self.locations.values())
        found: dict[str, tuple[str, Location]] = {}
        for location in wanted:
            known = {self.cluster_of(app): app for app in apps}
            for cluster in self.clusters(location):
                known.setdefault(cluster, cluster)
            for cluster, name in sorted(known.items()):
                if cluster in found:
                    continue
                with storage_errors(location, f"reading backup {backup_id}"):
                    try:
                        self.catalog(name, location).read_metadata(backup_id)
                    except BackupNotFoundError:
                        continue
                found[cluster] = (name, location)
        if len(found) > 1:
            raise ManagerError(
                f"backup {backup_id!r} exists in several clusters ({', '.join(sorted(found))}): "
                "say which with cluster=<model-uuid>/<application>"
            )
        return next(iter(found.values()), None)

    def newest(
        self, app: str, location: Location, kinds: Collection[str] = PHYSICAL
    ) -> BackupMetadata | None:
        """The newest complete backup of one of `kinds`, or None."""
        backups = [b for b in self.complete(app, location) if b.kind in kinds]
        return backups[-1] if backups else None

    def has_binlogs(self, app: str, location: Location) -> bool:
        """Whether the cluster has shipped binary logs at `location`."""
        catalog = self.catalog(app, location)
        with storage_errors(location, f"looking for the binary logs of {app}"):
            return any(True for _ in catalog.storage.list(catalog.binlogs_prefix))

    def restore_target(
        self, app: str, location: Location, point_in_time: datetime.datetime | None
    ) -> BackupMetadata:
        """The backup a restore to `point_in_time` (None = latest) starts from.

        The newest complete physical backup finished at or before the target (logical
        backups only when there is no physical one).
        """
        backups = self.complete(app, location)
        if not backups:
            raise ManagerError(
                f"{app} has no complete backup in location {location.name!r}: take one with "
                f"`juju run backup-manager/leader create-backup application={app}`"
            )
        physical = [b for b in backups if b.kind in PHYSICAL] or backups
        if point_in_time is None:
            return physical[-1]
        if point_in_time > self._clock():
            raise ManagerError(
                f"the point in time {format_time(point_in_time)} is in the future: give a "
                "time in the past, or point-in-time=latest"
            )
        before = [b for b in physical if b.finished_at <= point_in_time]
        if not before:
            raise ManagerError(
                f"the point in time {format_time(point_in_time)} is before the oldest backup "
                f"of {app} ({physical[0].backup_id}, finished "
                f"{format_time(physical[0].finished_at)}): give a later time"
            )
        return before[-1]

    def artefact_path(self, app: str, location: Location, backup_id: str) -> str:
        """The backup's prefix in the bucket (path included), for restore requests."""
        prefix = self.catalog(app, location).backup_prefix(backup_id)
        return location.s3_config().full_key(prefix).rstrip("/")

    # -- writing ------------------------------------------------------------------------

    def preserve(
        self, app: str, location: Location, backup_id: str, until: datetime.datetime | None
    ) -> None:
        """Hold a backup until `until`, or cancel its hold (None)."""
        with storage_errors(location, f"holding backup {backup_id}"):
            try:
                self.catalog(app, location).set_hold(backup_id, until)
            except BackupNotFoundError as exc:
                raise ManagerError(f"{exc}") from None

    def delete(
        self, app: str, location: Location, backup_id: str, protected: Collection[str]
    ) -> None:
        """Delete a backup unless held, the parent of another, or in use."""
        if backup_id in protected:
            raise ManagerError(
                f"backup {backup_id} is being restored or copied: wait for that job to finish "
                "(juju run backup-manager/leader list-jobs)"
            )
        with storage_errors(location, f"deleting backup {backup_id}"):
            try:
                self.catalog(app, location).delete_backup(backup_id)
            except (BackupHeldError, BackupNotFoundError) as exc:
                raise ManagerError(str(exc)) from None

    def apply_retention(
        self,
        app: str,
        location: Location,
        policy: RetentionPolicy,
        protected: Collection[str] = (),
        upload_age: datetime.timedelta | None = None,
    ) -> list[Decision]:
        """Delete what the retention policy selects (never held, parents or protected).

        Then delete the shipped binlogs no remaining backup needs for point-in-time
        recovery, and abort the multipart uploads of the cluster abandoned for more than
        `upload_age` (default `INCOMPLETE_UPLOAD_AGE`; never those of a protected backup:
        a job still running).
        Cost beyond the backup listing: one listing of the binlogs, a GET per timeline, two
        DELETEs per binlog deleted and one ListMultipartUploads (per 1000 uploads).
        """
        with storage_errors(location, f"applying retention to {app}"):
            catalog = self.catalog(app, location)
            decisions, binlogs = purge_with_binlogs(catalog, policy, protected=protected)
            for binlog in binlogs:
                logger.info(
                    "retention deleted binlog %s/%s of %s in %s: no kept backup needs it",
                    binlog.timeline,
                    binlog.name,
                    app,
                    location.name,
                )
            storage = self.storage(location)
            if isinstance(storage, S3Storage):
                spare = [catalog.backup_prefix(backup_id) for backup_id in protected]
                older_than = upload_age if upload_age is not None else INCOMPLETE_UPLOAD_AGE
                storage.cleanup_incomplete_uploads(
                    catalog.prefix, older_than=older_than, spare=spare
                )
            return decisions


def _with_drill(row: dict[str, Any], drill: Mapping[str, object] | None) -> dict[str, Any]:
    """Add `verified` (`""`, or `"<checked-at> pass|fail"`) and the drill's summary."""
    row["verified"] = ""
    if drill is None or row["status"] == "incomplete":
        return row
    checked_at = drill.get("checked-at")
    try:
        when = format_time(timefmt.parse_time(str(checked_at)))
    except ValueError:
        when = str(checked_at)
    row["verified"] = f"{when} {drill.get('result')}"
    row["verification"] = {k: v for k, v in drill.items() if k != "backup-id"}
    return row


def _row(
    entry: Entry,
    cluster: str,
    location: str,
    hold: datetime.datetime | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    held = format_time(hold) if hold is not None and hold > now else ""
    app = cluster.rsplit("/", 1)[-1]
    if isinstance(entry, IncompleteBackup):
        return {
            "backup-id": entry.backup_id,
            "app": app,
            "cluster": cluster,
            "kind": "",
            "parent": "",
            "started-at": "",
            "finished-at": format_time(entry.last_modified),
            "size": human_size(entry.size),
            "size-bytes": entry.size,
            "status": "incomplete",
            "hold": held,
            "location": location,
            "description": entry.reason,
        }
    copied = entry.extra.get("copied-from")
    row = {
        "backup-id": entry.backup_id,
        "app": app,
        "cluster": cluster,
        "kind": entry.kind,
        "parent": entry.parent_id or "",
        "started-at": format_time(entry.started_at),
        "finished-at": format_time(entry.finished_at),
        "size": human_size(entry.stored_size),
        "size-bytes": entry.stored_size,
        "status": entry.status,
        "hold": held,
        "location": location,
        "description": entry.description or "",
        "encrypted": entry.encrypted,
    }
    if isinstance(copied, Mapping):
        origin = cast("Mapping[str, object]", copied)
        row["copied-from"] = f"{origin.get('location')}:{origin.get('backup-id')}"
    return row
