"""Reading, healing and updating a cluster's catalog index (the form is in ``index.py``).

``Indexer(catalog)`` does the storage work for ``Catalog.read_index``, ``Catalog.reindex``
and every writer's index update. Costs of a read when the index is current: one GET of
``index.json`` and one listing of ``backups/`` after the newest id the index knows; plus
a listing of each pending backup's prefix (in progress or failed: usually none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Protocol, runtime_checkable

from database_backup.storage import ObjectInfo, ObjectNotFoundError, ObjectStore, StorageError

from .errors import ForeignClusterError, MetadataError
from .index import (
    CatalogView,
    IndexDocument,
    Summary,
    entry_sort_key,
    hold_of,
    summarize,
    to_metadata,
    verification_of,
)
from .layout import HOLD_FILE, VERIFICATION_FILE
from .metadata import BACKUP_ID_PATTERN, BackupMetadata, IncompleteBackup

logger = logging.getLogger(__name__)

ATTEMPTS = 3  #: read-modify-write tries of an index update that another writer overwrote
_FETCH_THREADS = 8
#: sorts after every object name of a backup (names are letters, digits, ".", "_", "-")
_AFTER_NAMES = "~"

Change = Callable[[IndexDocument], object]


@runtime_checkable
class ListsDirectories(Protocol):
    """A store that lists the "directories" right under a prefix (S3 common prefixes)."""

    def list_dirs(self, prefix: str = "", *, start_after: str = "") -> list[str]:
        """Relative prefixes ending with "/", sorted, after the key ``start_after``."""
        ...


class IndexedCatalog(Protocol):
    """What the indexer needs of a catalog (``store.Catalog``)."""

    storage: ObjectStore
    cluster_id: str

    @property
    def index_key(self) -> str: ...  # noqa: D102 - as in Catalog

    @property
    def backups_prefix(self) -> str: ...  # noqa: D102

    def backup_prefix(self, backup_id: str) -> str: ...  # noqa: D102

    def check_identity(self) -> bool: ...  # noqa: D102

    def identity_confirmed(self) -> None: ...  # noqa: D102

    def now(self) -> datetime: ...  # noqa: D102

    def entry_of(  # noqa: D102
        self, backup_id: str, objects: list[ObjectInfo]
    ) -> BackupMetadata | IncompleteBackup: ...

    def get_hold(self, backup_id: str) -> datetime | None: ...  # noqa: D102

    def read_verification(self, backup_id: str) -> dict[str, object] | None: ...  # noqa: D102


class Indexer:
    """The index operations of one catalog."""

    def __init__(self, catalog: IndexedCatalog) -> None:
        self.catalog = catalog
        self.storage = catalog.storage
        self.key = catalog.index_key

    # -- reading ---------------------------------------------------------------------

    def read(self) -> CatalogView:
        """The catalog as the index has it, with what was added since read from the truth."""
        document = self.load()
        if document is None:
            return self.rebuild(strict=False)
        view = _View()
        stale = {key for key, summary in document.backups.items() if not view.take(key, summary)}
        new = set(self.backup_ids(after=document.newest_id())) - document.backups.keys()
        to_read = sorted(stale | set(document.pending) | new)
        if to_read:
            self._heal(document, to_read, view)
        return view.freeze()

    def _heal(self, document: IndexDocument, to_read: list[str], view: _View) -> None:
        """Read ``to_read`` from their own files into ``view``; write what changed."""
        added: dict[str, Summary] = {}
        pending: set[str] = set()
        gone: set[str] = set()
        for backup_id, found in zip(to_read, self.scan(to_read), strict=True):
            if found is None:
                gone.add(backup_id)
            elif isinstance(found, IncompleteBackup):
                view.incomplete.append(found)
                pending.add(backup_id)
                if backup_id in document.backups:  # an entry that is no longer true
                    gone.add(backup_id)
            elif view.take(backup_id, found):
                added[backup_id] = found
        if not added and not gone and pending == set(document.pending):
            return

        def heal(index: IndexDocument) -> None:
            for backup_id in gone:
                index.backups.pop(backup_id, None)
            index.backups.update(added)
            index.pending = sorted(pending | (set(index.pending) - set(to_read)))

        self.update(heal, "heal the index")

    def rebuild(self, *, strict: bool = True) -> CatalogView:
        """Rebuild the index from every backup's own files (the truth).

        Nothing is written where there is no catalog (no ``cluster.json``): reading a
        prefix never creates one.
        """
        is_catalog = self.catalog.check_identity()
        ids = self.backup_ids()
        view = _View()
        fresh: dict[str, Summary] = {}
        pending: list[str] = []
        for backup_id, found in zip(ids, self.scan(ids), strict=True):
            if isinstance(found, IncompleteBackup):
                view.incomplete.append(found)
                pending.append(backup_id)
            elif found is not None and view.take(backup_id, found):
                fresh[backup_id] = found

        def replace(index: IndexDocument) -> None:
            index.backups = dict(fresh)
            index.pending = list(pending)

        if is_catalog:
            self.update(replace, "rebuild the index", strict=strict, create=True)
        return view.freeze()

    def load(self) -> IndexDocument | None:
        """The stored index, or None when missing or unreadable (then it is rebuilt).

        Raises:
            ForeignClusterError: the index names another cluster.
        """
        try:
            raw = self.storage.get_bytes(self.key)
        except ObjectNotFoundError:
            return None
        try:
            document = IndexDocument.load(raw, self.key)
        except MetadataError as exc:
            logger.warning("rebuilding the catalog index: %s", exc)
            return None
        if document.cluster_id != self.catalog.cluster_id:
            raise ForeignClusterError(
                f"the index {self.key} belongs to cluster {document.cluster_id!r}, not "
                f"{self.catalog.cluster_id!r}: refusing to use another cluster's backups; "
                "configure a different storage path for this cluster"
            )
        self.catalog.identity_confirmed()  # written by this cluster's writers only
        return document

    # -- writing ---------------------------------------------------------------------

    def update(
        self, change: Change, what: str, *, strict: bool = False, create: bool = False
    ) -> None:
        """Apply an idempotent ``change`` to the index: read, change, write, read back.

        Another writer's concurrent update can overwrite ours: read back, the change is
        applied again if it is missing (up to ``ATTEMPTS`` times). The per-backup file is
        written before, so a failure here costs the next reader a few requests to heal
        (or a ``reindex``); it is logged, not raised (unless ``strict``). Without
        ``create``, a missing or unreadable index is left alone: a writer's index would
        hold only its own backup and hide the others (older software wrote no index), so
        the next read rebuilds it from a full listing instead.
        """
        try:
            for _ in range(ATTEMPTS):
                document = self.load()
                if document is None and not create:
                    return
                document = document or IndexDocument(self.catalog.cluster_id)
                change(document)
                document.generation += 1
                self.storage.put_bytes(self.key, document.dump(self.catalog.now()))
                stored = self.load()
                if stored is not None and _holds_change(stored, change):
                    return
            logger.warning("catalog index: %s was overwritten %d times", what, ATTEMPTS)
        except (StorageError, MetadataError) as exc:
            if strict:
                raise
            logger.warning("catalog index not updated (%s): %s", what, exc)

    # -- the truth -------------------------------------------------------------------

    def backup_ids(self, *, after: str = "") -> list[str]:
        """The ids under ``backups/`` (after ``after``, if given), sorted.

        One request per 1,000 listed entries where the store lists directories.
        """
        prefix = self.catalog.backups_prefix
        start = f"{prefix}{after}/{_AFTER_NAMES}" if after else ""
        if isinstance(self.storage, ListsDirectories):
            dirs = self.storage.list_dirs(prefix, start_after=start)
            names: Iterable[str] = (d[len(prefix) :].rstrip("/") for d in dirs)
        else:
            keys = (info.key[len(prefix) :] for info in self.storage.list(prefix))
            names = (key.partition("/")[0] for key in keys if "/" in key)
        found = {name for name in names if BACKUP_ID_PATTERN.match(name)}
        return sorted(name for name in found if not after or name > after)

    def scan(self, backup_ids: list[str]) -> list[Summary | IncompleteBackup | None]:
        """Read backups' own files in parallel (None: nothing is stored under the id)."""
        if len(backup_ids) <= 1:
            return [self.scan_one(backup_id) for backup_id in backup_ids]
        with ThreadPoolExecutor(max_workers=min(_FETCH_THREADS, len(backup_ids))) as pool:
            return list(pool.map(self.scan_one, backup_ids))

    def scan_one(self, backup_id: str) -> Summary | IncompleteBackup | None:
        """One backup from its own files: its summary, or why it is incomplete."""
        catalog = self.catalog
        objects = list(self.storage.list(catalog.backup_prefix(backup_id)))
        if not objects:
            return None
        entry = catalog.entry_of(backup_id, objects)
        if isinstance(entry, IncompleteBackup):
            return entry
        names = {info.key.rsplit("/", 1)[-1] for info in objects}
        hold = catalog.get_hold(backup_id) if HOLD_FILE in names else None
        drill = None
        if VERIFICATION_FILE in names:
            try:
                drill = catalog.read_verification(backup_id)
            except MetadataError as exc:
                logger.warning("ignoring an unreadable drill result: %s", exc)
        return summarize(entry, hold=hold, verification=drill)


def _holds_change(document: IndexDocument, change: Change) -> bool:
    """Whether ``document`` already holds what the (idempotent) ``change`` makes."""
    changed = document.copy()
    change(changed)
    return changed.backups == document.backups and set(changed.pending) == set(document.pending)


class _View:
    """A CatalogView being built from index entries and backups read from storage."""

    def __init__(self) -> None:
        self.complete: list[BackupMetadata] = []
        self.incomplete: list[IncompleteBackup] = []
        self.held: dict[str, datetime] = {}
        self.drills: dict[str, dict[str, object]] = {}

    def take(self, backup_id: str, summary: Summary) -> bool:
        """Add an index entry; False if it is not a valid summary (then it is re-read)."""
        try:
            meta = to_metadata(backup_id, summary)
            hold = hold_of(summary)
        except MetadataError as exc:
            logger.warning("re-reading backup %s: its index entry is invalid: %s", backup_id, exc)
            return False
        self.complete.append(meta)
        if hold is not None:
            self.held[backup_id] = hold
        drill = verification_of(summary)
        if drill is not None:
            self.drills[backup_id] = drill
        return True

    def freeze(self) -> CatalogView:
        return CatalogView(
            complete=tuple(sorted(self.complete, key=entry_sort_key)),
            incomplete=tuple(sorted(self.incomplete, key=entry_sort_key)),
            held=self.held,
            drills=self.drills,
        )
