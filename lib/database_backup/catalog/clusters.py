"""Discovering the clusters whose catalogs a storage location holds (the bucket is the truth)."""

from __future__ import annotations

from database_backup.storage import ObjectStore

from .errors import CatalogError
from .indexing import ListsDirectories
from .layout import CLUSTER_FILE
from .store import check_cluster_id

MAX_CLUSTERS = 1000  #: prefixes examined when discovering the clusters in a location


def find_clusters(storage: ObjectStore, *, limit: int = MAX_CLUSTERS) -> list[str]:
    """Every cluster id ``<model-uuid>/<app>`` with a catalog (``cluster.json``) in ``storage``.

    The catalog is the truth: this finds the backups of applications no longer related
    (removed, or in a lost model). Stores that list common prefixes are walked two levels
    deep (one request per model directory, plus one existence check per candidate); others
    are scanned. At most ``limit`` directories are examined.

    Raises:
        CatalogError: the location holds more than ``limit`` candidate prefixes (name the
            cluster instead of listing them all).
    """
    seen = 0

    def count(found: int) -> None:
        nonlocal seen
        seen += found
        if seen > limit:
            raise CatalogError(
                f"the storage location holds more than {limit} prefixes: name the cluster "
                "(cluster=<model-uuid>/<application>) instead of listing every one"
            )

    clusters: list[str] = []
    if isinstance(storage, ListsDirectories):
        models = [d for d in storage.list_dirs("") if d.endswith("/")]
        count(len(models))
        for model in models:
            apps = storage.list_dirs(model)
            count(len(apps))
            for app in apps:
                candidate = app.rstrip("/")
                if _is_cluster_id(candidate) and storage.exists(f"{candidate}/{CLUSTER_FILE}"):
                    clusters.append(candidate)
        return sorted(clusters)
    for info in storage.list(""):
        parts = info.key.split("/")
        if len(parts) == 3 and parts[2] == CLUSTER_FILE:
            count(1)
            candidate = "/".join(parts[:2])
            if _is_cluster_id(candidate):
                clusters.append(candidate)
    return sorted(clusters)


def _is_cluster_id(candidate: str) -> bool:
    try:
        check_cluster_id(candidate)
    except ValueError:
        return False
    return True
