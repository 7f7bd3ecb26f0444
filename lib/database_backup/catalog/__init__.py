"""The backup catalog in object storage: metadata, holds, retention.

Usage::

    catalog = Catalog(storage, f"{model_uuid}/{app}")
    catalog.ensure_cluster()
    backup_id = new_backup_id(utc_now())
    storage.upload_stream(catalog.artefact_key(backup_id, "data.xbstream.zst"), stream)
    catalog.write_metadata(meta)              # backup.json last: now the backup is complete
    catalog.set_hold(backup_id, until)        # preserve until a date; None cancels
    view = catalog.read_index()               # backups, holds, drills: one GET + a listing
    catalog.purge(RetentionPolicy(min_count=2, max_count=7))
"""

from __future__ import annotations

from database_backup.storage import ObjectStore

from .clusters import find_clusters
from .errors import (
    BackupHeldError,
    BackupNotFoundError,
    CatalogError,
    ForeignClusterError,
    MetadataError,
)
from .index import CatalogView
from .metadata import BackupMetadata, IncompleteBackup, new_backup_id
from .retention import Decision, RetentionPolicy, select_for_deletion
from .store import Catalog, check_cluster_id

__all__ = [
    "BackupHeldError",
    "BackupMetadata",
    "BackupNotFoundError",
    "Catalog",
    "CatalogError",
    "CatalogView",
    "Decision",
    "ForeignClusterError",
    "IncompleteBackup",
    "MetadataError",
    "ObjectStore",
    "RetentionPolicy",
    "check_cluster_id",
    "find_clusters",
    "new_backup_id",
    "select_for_deletion",
]
