"""The backup catalog in object storage: metadata, holds, retention.

Usage::

    catalog = Catalog(storage, f"{model_uuid}/{app}")
    catalog.ensure_cluster()
    backup_id = new_backup_id(datetime.now(timezone.utc))
    storage.upload_stream(catalog.artefact_key(backup_id, "data.xbstream.zst"), stream)
    catalog.write_metadata(meta)              # backup.json last: now the backup is complete
    catalog.set_hold(backup_id, until)        # preserve until a date; None cancels
    catalog.purge(RetentionPolicy(min_count=2, max_count=7))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    BackupHeldError,
    BackupNotFoundError,
    CatalogError,
    ForeignClusterError,
    MetadataError,
)
from .metadata import BackupMetadata, IncompleteBackup, new_backup_id
from .retention import Decision, RetentionPolicy, select_for_deletion

if TYPE_CHECKING:
    from .store import Catalog, ObjectStore, check_cluster_id

# The store needs database_backup.storage (boto3, ~0.4 s to import): it is imported on
# first use, so code that only needs metadata or retention (a charm's config) stays light.
_STORE_NAMES = ("Catalog", "ObjectStore", "check_cluster_id")

__all__ = [
    "BackupHeldError",
    "BackupMetadata",
    "BackupNotFoundError",
    "Catalog",
    "CatalogError",
    "Decision",
    "ForeignClusterError",
    "IncompleteBackup",
    "MetadataError",
    "ObjectStore",
    "RetentionPolicy",
    "check_cluster_id",
    "new_backup_id",
    "select_for_deletion",
]


def __getattr__(name: str) -> object:
    """Import the S3-backed store on first use of one of its names."""
    if name in _STORE_NAMES:
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
