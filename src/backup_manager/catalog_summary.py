"""What the manager knows about the backups in storage, without listing a catalog.

The status speaks of the backups in storage, and the catalog is the truth: the job history
can be cleared and does not see copies or backups made by another manager. A hook must not
list a catalog that may hold thousands of backups just to set a status, so the leader keeps
a small summary per cluster and location in the peer app databag - how many complete
backups there are and which is the newest - and refreshes it whenever it reads a catalog
anyway: `list-backups`, retention (after every successful backup and once a day),
incremental and restore requests. A completed backup and a deletion adjust it in between.
`clear-history` does not touch it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import ops

from database_backup.catalog import BackupMetadata, Catalog, CatalogView, IncompleteBackup

from .catalogs import Catalogs, cluster_id, format_time
from .locations import Location
from .state import PEER

logger = logging.getLogger(__name__)

SUMMARY_KEY = "backup-summary"

Entry = BackupMetadata | IncompleteBackup


@dataclasses.dataclass(frozen=True)
class Stored:
    """The complete backups of one cluster at one location, as last seen."""

    app: str
    location: str
    count: int
    newest: str | None = None
    newest_at: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(app, location)."""
        return self.app, self.location

    def to_dict(self) -> dict[str, Any]:
        """Databag form."""
        return {
            "app": self.app,
            "location": self.location,
            "count": self.count,
            "newest": self.newest,
            "newest-at": self.newest_at,
        }


Summary = dict[tuple[str, str], Stored]


def load(text: str | None) -> Summary:
    """Decode the databag value; garbage gives an empty summary, never an exception."""
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError:
        return {}
    summary: Summary = {}
    for item in cast("list[object]", items) if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        entry = cast("dict[str, object]", item)
        app, location, count = entry.get("app"), entry.get("location"), entry.get("count")
        if not isinstance(app, str) or not isinstance(location, str):
            continue
        if not isinstance(count, int) or count < 0:
            continue
        newest, newest_at = entry.get("newest"), entry.get("newest-at")
        stored = Stored(
            app,
            location,
            count,
            newest if isinstance(newest, str) else None,
            newest_at if isinstance(newest_at, str) else None,
        )
        summary[stored.key] = stored
    return summary


def dump(summary: Mapping[tuple[str, str], Stored]) -> str:
    """Encode, in a stable order."""
    items = [summary[key].to_dict() for key in sorted(summary)]
    return json.dumps(items, sort_keys=True, separators=(",", ":"))


def from_listing(app: str, location: str, entries: Iterable[Entry]) -> Stored:
    """The summary of a catalog listing (incomplete backups do not count)."""
    complete = [e for e in entries if isinstance(e, BackupMetadata) and e.is_complete]
    if not complete:
        return Stored(app, location, 0)
    newest = max(complete, key=lambda e: (e.finished_at, e.backup_id))
    return Stored(app, location, len(complete), newest.backup_id, format_time(newest.finished_at))


def after_success(
    current: Stored | None, app: str, location: str, backup_id: str, finished_at: str | None
) -> Stored:
    """The summary once `backup_id` has completed (counted once, however often it is seen)."""
    if current is None:
        return Stored(app, location, 1, backup_id, finished_at)
    if current.newest == backup_id:
        return current
    return dataclasses.replace(
        current, count=current.count + 1, newest=backup_id, newest_at=finished_at
    )


def newest(summary: Mapping[tuple[str, str], Stored]) -> Stored | None:
    """The entry holding the newest backup of all, if any is known."""
    known = [s for s in summary.values() if s.newest and s.count]
    return max(known, key=lambda s: (s.newest_at or "", s.newest or "")) if known else None


def total(summary: Mapping[tuple[str, str], Stored]) -> int:
    """Complete backups across clusters and locations (a copy counts at each location)."""
    return sum(s.count for s in summary.values())


class Recorder:
    """Keeps the summary in the peer app databag current (writes only on the leader)."""

    def __init__(self, model: ops.Model) -> None:
        self._model = model
        self._listed: dict[tuple[str, str], list[Entry]] = {}

    def summary(self) -> Summary:
        """The summary as stored."""
        relation = self._model.get_relation(PEER)
        if relation is None:
            return {}
        return load(relation.data[self._model.app].get(SUMMARY_KEY))

    def _save(self, stored: Stored) -> None:
        relation = self._model.get_relation(PEER)
        if relation is None or not self._model.unit.is_leader():
            return
        summary = self.summary()
        summary[stored.key] = stored
        encoded = dump(summary)
        data = relation.data[self._model.app]
        if data.get(SUMMARY_KEY) != encoded:
            data[SUMMARY_KEY] = encoded

    def listed(self, app: str, location: str, entries: list[Entry]) -> None:
        """A catalog was listed: the summary of that cluster and location is now exact."""
        self._listed[app, location] = list(entries)
        self._save(from_listing(app, location, entries))

    def deleted(self, app: str, location: str, backup_id: str) -> None:
        """A backup was deleted: recompute from this hook's listing, if there was one.

        Without one the summary stays as it is until the next catalog read.
        """
        entries = self._listed.get((app, location))
        if entries is None:
            logger.debug("backup %s deleted without a listing: summary unchanged", backup_id)
            return
        self.listed(app, location, [e for e in entries if e.backup_id != backup_id])

    def succeeded(self, app: str, location: str, backup_id: str, finished_at: str | None) -> None:
        """A backup completed at `location`."""
        current = self.summary().get((app, location))
        self._save(after_success(current, app, location, backup_id, finished_at))


class _RecordingCatalog(Catalog):
    """A Catalog that tells the recorder what its listings and deletions found."""

    def __init__(
        self, storage: Any, cluster: str, *, clock: Callable[..., Any], note: _Notes
    ) -> None:
        super().__init__(storage, cluster, clock=clock)
        self._note = note

    def list_backups(self, include_incomplete: bool = False) -> list[Entry]:
        """List, and record what was found."""
        entries = super().list_backups(include_incomplete)
        self._note.listed(entries)
        return entries

    def read_index(self) -> CatalogView:
        """Read the index, and record what was found."""
        view = super().read_index()
        self._note.listed(view.entries(include_incomplete=True))
        return view

    def delete_backup(self, backup_id: str, *, force: bool = False) -> None:
        """Delete, and take the backup out of the summary.

        Deleting lists the catalog first (to protect parents; retention lists to choose),
        so the summary is recomputed from that listing without the deleted backup.
        """
        super().delete_backup(backup_id, force=force)
        self._note.deleted(backup_id)


@dataclasses.dataclass(frozen=True)
class _Notes:
    recorder: Recorder
    app: str
    location: str

    def listed(self, entries: list[Entry]) -> None:
        self.recorder.listed(self.app, self.location, entries)

    def deleted(self, backup_id: str) -> None:
        self.recorder.deleted(self.app, self.location, backup_id)


class RecordingCatalogs(Catalogs):
    """`Catalogs` whose catalog reads and deletions keep the summary current."""

    def __init__(
        self, locations: Mapping[str, Location], model_uuid: str, *, recorder: Recorder
    ) -> None:
        super().__init__(locations, model_uuid)
        self._recorder = recorder

    def catalog(self, app: str, location: Location) -> Catalog:
        """The catalog of `app`'s cluster at `location`, recording what it reads.

        Only related applications are summarised (`app` a name): a cluster id (a removed
        application's, another model's) is read without touching the summary.
        """
        if "/" in app:
            return super().catalog(app, location)
        return _RecordingCatalog(
            self.storage(location),
            cluster_id(self.model_uuid, app),
            clock=self._clock,
            note=_Notes(self._recorder, app, location.name),
        )
