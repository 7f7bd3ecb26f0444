"""The backup catalog in object storage.

Layout under the storage's ``path`` (``cluster_id`` is like ``<model-uuid>/<app>``)::

    <cluster-id>/cluster.json                    identity: cluster id, created-at
    <cluster-id>/index.json                      summaries of every backup (see index.py)
    <cluster-id>/backups/<backup-id>/<artefact>  e.g. data.xbstream.zst.enc
    <cluster-id>/backups/<backup-id>/job.log
    <cluster-id>/backups/<backup-id>/preserve.json   the backup hold
    <cluster-id>/backups/<backup-id>/verification.json   the newest restore drill's result
    <cluster-id>/backups/<backup-id>/backup.json     metadata, written LAST
    <cluster-id>/binlogs/                        shipped binlogs (point-in-time recovery)

A backup is complete only when its ``backup.json`` exists and says so; it is written
after every artefact is stored and deleted first, so a crash at any point never leaves a
complete-looking backup with missing data. A prefix holding another cluster's identity,
nested in or containing another cluster's catalog, is refused.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from database_backup.storage import ObjectInfo, ObjectNotFoundError, ObjectStore
from database_backup.timefmt import as_utc, utc_now

from . import identity
from .documents import as_object, dump_document, load_json
from .errors import (
    BackupHeldError,
    BackupNotFoundError,
    CatalogError,
    MetadataError,
)
from .identity import check_cluster_id as check_cluster_id
from .index import (
    HOLD_KEY,
    INDEX_FILE,
    VERIFICATION_KEY,
    CatalogView,
    IndexDocument,
    entry_sort_key,
    summarize,
)
from .indexing import Indexer
from .layout import BACKUPS_DIR as BACKUPS_DIR
from .layout import BINLOGS_DIR as BINLOGS_DIR
from .layout import CLUSTER_FILE as CLUSTER_FILE
from .layout import HOLD_FILE as HOLD_FILE
from .layout import LOG_FILE as LOG_FILE
from .layout import METADATA_FILE as METADATA_FILE
from .layout import VERIFICATION_FILE as VERIFICATION_FILE
from .metadata import (
    BACKUP_ID_PATTERN,
    BackupMetadata,
    IncompleteBackup,
    check_backup_id,
    format_time,
    parse_time,
)
from .retention import Decision, RetentionPolicy, select_for_deletion

_FETCH_THREADS = 8
logger = logging.getLogger(__name__)


class Catalog:
    """One cluster's backups in object storage."""

    def __init__(
        self,
        storage: ObjectStore,
        cluster_id: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """Open the catalog of ``cluster_id`` in ``storage`` (nothing is read yet).

        Args:
            storage: the object store (an ``S3Storage``).
            cluster_id: the cluster's prefix, like ``<model-uuid>/<app>``.
            clock: returns the current time (tests pass a fixed one).
        """
        self.storage = storage
        self.cluster_id = check_cluster_id(cluster_id)
        self._clock = clock
        self._identity_verified = False

    # -- keys ---------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """The cluster's prefix, ``<cluster-id>/``."""
        return f"{self.cluster_id}/"

    @property
    def backups_prefix(self) -> str:
        """``<cluster-id>/backups/``."""
        return f"{self.prefix}{BACKUPS_DIR}/"

    @property
    def binlogs_prefix(self) -> str:
        """``<cluster-id>/binlogs/``."""
        return f"{self.prefix}{BINLOGS_DIR}/"

    @property
    def index_key(self) -> str:
        """``<cluster-id>/index.json``."""
        return f"{self.prefix}{INDEX_FILE}"

    def backup_prefix(self, backup_id: str) -> str:
        """``<cluster-id>/backups/<backup-id>/``."""
        return f"{self.backups_prefix}{check_backup_id(backup_id)}/"

    def artefact_key(self, backup_id: str, name: str) -> str:
        """Key of the object ``name`` of a backup."""
        if not BACKUP_ID_PATTERN.match(name):
            raise ValueError(f"invalid object name {name!r}")
        return f"{self.backup_prefix(backup_id)}{name}"

    # -- identity -----------------------------------------------------------------------

    def ensure_cluster(self) -> None:
        """Create ``cluster.json`` or check that it names this cluster.

        Raises:
            ForeignClusterError: the prefix belongs to, is inside, or contains another
                cluster's catalog, or holds objects that are not a catalog.
        """
        if self._identity_verified:
            return
        identity.ensure(self.storage, self.cluster_id, self._clock())
        self._identity_verified = True

    def _verify_for_reading(self) -> None:
        """Refuse to read a foreign catalog; an absent cluster.json is an empty catalog."""
        if self._identity_verified:
            return
        if identity.read(self.storage, self.cluster_id) is not None:
            self._identity_verified = True

    # -- metadata -----------------------------------------------------------------------

    def write_metadata(self, meta: BackupMetadata) -> None:
        """Record a backup as complete by writing its ``backup.json`` (last).

        Raises:
            CatalogError: the metadata is not complete, an artefact is missing or its
                size differs from ``stored_size``, or the parent backup is missing.
        """
        self.ensure_cluster()
        meta.validate()
        if not meta.is_complete:
            raise CatalogError(f"backup {meta.backup_id}: only complete backups are recorded")
        stored = 0
        for name in meta.artefacts:
            try:
                stored += self.storage.head(self.artefact_key(meta.backup_id, name)).size
            except ObjectNotFoundError:
                raise CatalogError(
                    f"backup {meta.backup_id}: artefact {name} is not in storage; "
                    "not recording the backup as complete"
                ) from None
        if stored != meta.stored_size:
            raise CatalogError(
                f"backup {meta.backup_id}: its artefacts hold {stored} bytes but "
                f"{meta.stored_size} were written; not recording the backup as complete"
            )
        if meta.parent_id is not None and not self.storage.exists(
            self.backup_prefix(meta.parent_id) + METADATA_FILE
        ):
            raise CatalogError(
                f"backup {meta.backup_id}: its parent {meta.parent_id} is not a complete "
                "backup of this cluster"
            )
        key = self.backup_prefix(meta.backup_id) + METADATA_FILE
        self.storage.put_bytes(key, dump_document(meta.to_dict()))
        summary = summarize(meta)

        def add(index: IndexDocument) -> None:
            kept = index.backups.get(meta.backup_id, {})
            extras = {k: kept[k] for k in (HOLD_KEY, VERIFICATION_KEY) if k in kept}
            index.backups[meta.backup_id] = {**summary, **extras}
            index.pending = [p for p in index.pending if p != meta.backup_id]

        self._update_index(add, f"add backup {meta.backup_id}")

    def read_metadata(self, backup_id: str) -> BackupMetadata:
        """Return a complete backup's metadata.

        Raises:
            BackupNotFoundError: no complete backup with that id.
            MetadataError: its backup.json is unreadable.
        """
        self._verify_for_reading()
        key = self.backup_prefix(backup_id) + METADATA_FILE
        try:
            raw = self.storage.get_bytes(key)
        except ObjectNotFoundError:
            raise BackupNotFoundError(
                f"backup {backup_id} not found in cluster {self.cluster_id}: there is no "
                "complete backup with that id (list the backups to see the ids)"
            ) from None
        meta = self._parse_metadata(raw, backup_id)
        if not meta.is_complete:
            raise BackupNotFoundError(f"backup {backup_id} is not complete ({meta.status})")
        return meta

    def _parse_metadata(self, raw: bytes, backup_id: str) -> BackupMetadata:
        what = f"backup.json of backup {backup_id}"
        try:
            meta = BackupMetadata.from_dict(load_json(raw, what))
        except MetadataError as exc:
            raise MetadataError(f"{what} is invalid: {exc}") from None
        if meta.backup_id != backup_id:
            raise MetadataError(f"{what} names another backup ({meta.backup_id})")
        return meta

    def list_backups(
        self, include_incomplete: bool = False
    ) -> list[BackupMetadata | IncompleteBackup]:
        """Return the backups, oldest first.

        Args:
            include_incomplete: also return backups without a valid, complete
                backup.json (failed, or still in progress) as ``IncompleteBackup``.
        """
        self._verify_for_reading()
        groups: dict[str, list[ObjectInfo]] = defaultdict(list)
        for info in self.storage.list(self.backups_prefix):
            backup_id, _, name = info.key[len(self.backups_prefix) :].partition("/")
            if name and BACKUP_ID_PATTERN.match(backup_id):
                groups[backup_id].append(info)
        with_metadata = [
            backup_id
            for backup_id, objects in groups.items()
            if any(info.key.endswith("/" + METADATA_FILE) for info in objects)
        ]
        fetched = dict(zip(with_metadata, self._fetch_metadata(with_metadata), strict=True))
        entries: list[BackupMetadata | IncompleteBackup] = []
        for backup_id, objects in groups.items():
            entry = self._entry(backup_id, objects, fetched.get(backup_id))
            if include_incomplete or isinstance(entry, BackupMetadata):
                entries.append(entry)
        entries.sort(key=_entry_sort_key)
        return entries

    def _fetch_metadata(self, backup_ids: list[str]) -> list[BackupMetadata | str]:
        """Read several backup.json in parallel: metadata, or why it is unusable."""

        def fetch(backup_id: str) -> BackupMetadata | str:
            try:
                raw = self.storage.get_bytes(self.backup_prefix(backup_id) + METADATA_FILE)
                return self._parse_metadata(raw, backup_id)
            except ObjectNotFoundError:
                return "backup.json disappeared while listing"
            except MetadataError as exc:
                return str(exc)

        if len(backup_ids) <= 1:
            return [fetch(backup_id) for backup_id in backup_ids]
        with ThreadPoolExecutor(max_workers=min(_FETCH_THREADS, len(backup_ids))) as pool:
            return list(pool.map(fetch, backup_ids))

    def _entry(
        self,
        backup_id: str,
        objects: list[ObjectInfo],
        fetched: BackupMetadata | str | None,
    ) -> BackupMetadata | IncompleteBackup:
        names = {info.key.rsplit("/", 1)[-1] for info in objects}
        if isinstance(fetched, BackupMetadata):
            missing = [name for name in fetched.artefacts if name not in names]
            if not fetched.is_complete:
                reason = f"status is {fetched.status!r}"
            elif missing:
                reason = f"artefact {missing[0]} is missing"
            else:
                return fetched
        else:
            reason = fetched or "no backup.json (failed, or still in progress)"
        return IncompleteBackup(
            backup_id=backup_id,
            objects=tuple(sorted(names)),
            size=sum(info.size for info in objects),
            last_modified=max(as_utc(info.last_modified) for info in objects),
            reason=reason,
        )

    # -- the index ------------------------------------------------------------------------

    def read_index(self) -> CatalogView:
        """The backups, holds and drill results, from the cluster's index (``index.py``).

        Costs one GET of ``index.json`` and one listing of the backup ids newer than the
        newest it knows, when the index is current; backups it lacks are read from their
        own files and added (a missing or unreadable index is rebuilt from them).
        """
        return Indexer(self).read()

    def reindex(self) -> CatalogView:
        """Rebuild the index from every backup's own files (the truth), and return it.

        Cost: the listing of the backup ids, then per backup a listing of its prefix and
        a GET of each of its catalog files (in parallel).
        """
        return Indexer(self).rebuild()

    def check_identity(self) -> bool:
        """Whether the prefix holds this cluster's catalog (``cluster.json``).

        Raises:
            ForeignClusterError: it holds another cluster's.
        """
        self._verify_for_reading()
        return self._identity_verified

    def identity_confirmed(self) -> None:
        """This cluster's index was read: its identity needs no other check."""
        self._identity_verified = True

    def now(self) -> datetime:
        """The catalog's clock."""
        return self._clock()

    def entry_of(
        self, backup_id: str, objects: list[ObjectInfo]
    ) -> BackupMetadata | IncompleteBackup:
        """A backup from its listed objects: complete metadata, or why it is incomplete."""
        names = {info.key.rsplit("/", 1)[-1] for info in objects}
        fetched: BackupMetadata | str | None = None
        if METADATA_FILE in names:
            fetched = self._fetch_metadata([backup_id])[0]
        return self._entry(backup_id, objects, fetched)

    def _update_index(
        self, change: Callable[[IndexDocument], object], what: str, *, strict: bool = False
    ) -> None:
        Indexer(self).update(change, what, strict=strict)

    # -- logs and holds -------------------------------------------------------------------

    def write_log(self, backup_id: str, text: str) -> None:
        """Store the job's log beside the backup."""
        self.ensure_cluster()
        self.storage.put_bytes(self.artefact_key(backup_id, LOG_FILE), text.encode())

    def set_hold(self, backup_id: str, until: datetime | None) -> None:
        """Hold a complete backup until ``until`` (timezone-aware), or cancel with None.

        Raises:
            BackupNotFoundError: no complete backup with that id.
        """
        self.ensure_cluster()
        self.read_metadata(backup_id)
        document = {
            "format-version": 1,
            "backup-id": backup_id,
            "preserve-until": format_time(until) if until is not None else None,
            "updated-at": format_time(self._clock()),
        }
        self.storage.put_bytes(self.artefact_key(backup_id, HOLD_FILE), dump_document(document))

        def hold(index: IndexDocument) -> None:
            entry = index.backups.get(backup_id)
            if entry is None:
                return  # not indexed yet: the next read adds it with its hold
            if until is None:
                entry.pop(HOLD_KEY, None)
            else:
                entry[HOLD_KEY] = format_time(until)

        self._update_index(hold, f"hold backup {backup_id}")

    def get_hold(self, backup_id: str) -> datetime | None:
        """Return the time a backup is held until (possibly past), or None."""
        self._verify_for_reading()
        try:
            raw = self.storage.get_bytes(self.artefact_key(backup_id, HOLD_FILE))
        except ObjectNotFoundError:
            return None
        return _parse_hold(raw, backup_id)

    def holds(self) -> dict[str, datetime]:
        """Return every backup's hold time (expired ones included), by backup id."""
        self._verify_for_reading()
        held: dict[str, datetime] = {}
        for info in self.storage.list(self.backups_prefix):
            backup_id, _, name = info.key[len(self.backups_prefix) :].partition("/")
            if name != HOLD_FILE:
                continue
            until = self.get_hold(backup_id)
            if until is not None:
                held[backup_id] = until
        return held

    # -- restore drills -----------------------------------------------------------------

    def write_verification(self, backup_id: str, document: Mapping[str, object]) -> None:
        """Record a restore drill's result beside the backup (the newest drill wins).

        Args:
            backup_id: the drilled backup (it must be complete).
            document: the verification document: the drill's ``verification`` object
                plus ``backup-id``, ``job-id`` and ``unit``.

        Raises:
            BackupNotFoundError: no complete backup with that id.
            MetadataError: the document is not a JSON object naming this backup with a
                ``result`` of pass or fail and a ``checked-at`` time.
        """
        self.ensure_cluster()
        checked = _check_verification(document, backup_id)
        self.read_metadata(backup_id)
        self.storage.put_bytes(
            self.artefact_key(backup_id, VERIFICATION_FILE), dump_document(checked)
        )

        def drilled(index: IndexDocument) -> None:
            entry = index.backups.get(backup_id)
            if entry is not None:
                entry[VERIFICATION_KEY] = checked

        self._update_index(drilled, f"record the drill of backup {backup_id}")

    def read_verification(self, backup_id: str) -> dict[str, object] | None:
        """The newest drill's verification document of a backup, or None (never drilled).

        Raises:
            MetadataError: the stored document is unreadable.
        """
        self._verify_for_reading()
        try:
            raw = self.storage.get_bytes(self.artefact_key(backup_id, VERIFICATION_FILE))
        except ObjectNotFoundError:
            return None
        document = as_object(load_json(raw, f"verification.json of backup {backup_id}"))
        return _check_verification(document, backup_id)

    def verifications(self) -> dict[str, dict[str, object]]:
        """Every drilled backup's newest verification document, by backup id.

        Read from the index (``read_index``: one GET and a listing of the backup ids).
        """
        return self.read_index().verifications()

    # -- deletion -----------------------------------------------------------------------

    def delete_backup(self, backup_id: str, *, force: bool = False) -> None:
        """Delete a backup: its ``backup.json`` first, then every other object.

        Args:
            backup_id: the backup (complete or incomplete).
            force: delete even if held or the parent of another backup.

        Raises:
            BackupNotFoundError: nothing is stored under that id.
            BackupHeldError: the backup is held, or other backups depend on it.
        """
        self._verify_for_reading()
        prefix = self.backup_prefix(backup_id)
        if not any(True for _ in self.storage.list(prefix)):
            raise BackupNotFoundError(f"backup {backup_id} not found in cluster {self.cluster_id}")
        if not force:
            self._check_deletable(backup_id)
        # the index first: were the deletion cut short, the next read finds the id again
        # and reads its truth (still complete, or incomplete once backup.json is gone)
        self._update_index(_forget([backup_id]), f"drop {backup_id}")
        self.storage.delete(prefix + METADATA_FILE)
        self.storage.delete_prefix(prefix)

    def _check_deletable(self, backup_id: str) -> None:
        until = self.get_hold(backup_id)
        if until is not None and until > self._clock():
            raise BackupHeldError(
                f"backup {backup_id} is held until {format_time(until)}: cancel the hold "
                "before deleting it"
            )
        children = [
            entry.backup_id for entry in self.read_index().complete if entry.parent_id == backup_id
        ]
        if children:
            raise BackupHeldError(
                f"backup {backup_id} is the parent of {', '.join(children)}: delete those "
                "incremental backups first"
            )

    def purge(
        self,
        policy: RetentionPolicy,
        *,
        protected: Collection[str] = (),
        dry_run: bool = False,
        view: CatalogView | None = None,
    ) -> list[Decision]:
        """Apply a retention policy now: delete what ``select_for_deletion`` selects.

        Args:
            policy: the retention policy.
            protected: backup ids in use (never selected).
            dry_run: only return the decisions.
            view: this catalog's ``read_index()``, if the caller already has it (saves
                reading it again).

        Returns:
            The decisions (carried out unless ``dry_run``), oldest first.
        """
        view = view or self.read_index()
        now = self._clock()
        entries, held = view.entries(include_incomplete=True), view.holds()
        decisions = select_for_deletion(entries, held, policy, now, protected)
        if dry_run:
            return decisions
        # the selection honours the index's holds; each hold is read again from
        # preserve.json (the truth) in case the index missed a new one, and a backup held
        # after all is kept with its parents (the selection runs again with it)
        holds = {decision.backup_id: self.get_hold(decision.backup_id) for decision in decisions}
        missed = {
            backup_id: until
            for backup_id, until in holds.items()
            if until is not None and until > now
        }
        for backup_id, until in missed.items():
            logger.warning(
                "retention spares backup %s (and its parents): it is held until %s; the "
                "index missed the hold, it is corrected now",
                backup_id,
                format_time(until),
            )
        carried = decisions
        if missed:
            carried = select_for_deletion(entries, {**held, **missed}, policy, now, protected)
        gone = {decision.backup_id for decision in carried}

        def forget(index: IndexDocument) -> None:
            _forget(gone)(index)
            for backup_id, until in missed.items():
                if backup_id in index.backups:
                    index.backups[backup_id][HOLD_KEY] = format_time(until)

        if carried or missed:
            self._update_index(forget, "apply retention")  # first, like delete_backup
        for decision in carried:
            prefix = self.backup_prefix(decision.backup_id)
            self.storage.delete(prefix + METADATA_FILE)
            self.storage.delete_prefix(prefix)
        return carried


def _parse_hold(raw: bytes, backup_id: str) -> datetime | None:
    document = as_object(load_json(raw, f"preserve.json of backup {backup_id}"))
    if document is None or "preserve-until" not in document:
        raise MetadataError(f"preserve.json of backup {backup_id} has no preserve-until")
    value = document["preserve-until"]
    if value is None:
        return None
    return parse_time(value, f"preserve-until of backup {backup_id}")


def _check_verification(document: object, backup_id: str) -> dict[str, object]:
    """A verification document as a dict, checked: it names ``backup_id``, pass or fail."""
    what = f"the verification document of backup {backup_id}"
    checked = as_object(document)
    if checked is None:
        raise MetadataError(f"{what} must be a JSON object")
    if checked.get("backup-id") != backup_id:
        raise MetadataError(f"{what} names another backup ({checked.get('backup-id')!r})")
    if checked.get("result") not in ("pass", "fail"):
        raise MetadataError(f"{what} needs a result of 'pass' or 'fail'")
    parse_time(checked.get("checked-at"), f"checked-at of {what}")
    return dict(checked)


def _entry_sort_key(entry: BackupMetadata | IncompleteBackup) -> tuple[datetime, str]:
    return entry_sort_key(entry)


def _forget(backup_ids: Collection[str]) -> Callable[[IndexDocument], None]:
    """An index change dropping ``backup_ids`` (complete or pending)."""

    def forget(index: IndexDocument) -> None:
        for backup_id in backup_ids:
            index.backups.pop(backup_id, None)
        index.pending = [p for p in index.pending if p not in backup_ids]

    return forget
