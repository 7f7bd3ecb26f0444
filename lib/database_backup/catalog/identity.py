"""A catalog's identity: ``<cluster-id>/cluster.json`` names the cluster that owns the prefix.

Created by the first write into an empty prefix; a prefix holding another cluster's
identity, nested in or containing another cluster's catalog, or holding objects that are
not a catalog, is refused. Two writers of the same cluster may create it at once (two
backups started together): an identity naming this cluster that appears meanwhile is the
other writer's and is accepted.
"""

from __future__ import annotations

import re
from datetime import datetime

from database_backup.storage import ObjectNotFoundError, ObjectStore

from .documents import as_object, dump_document, load_json
from .errors import ForeignClusterError
from .index import INDEX_FILE
from .layout import BACKUPS_DIR, BINLOGS_DIR, CLUSTER_FILE
from .metadata import format_time

IDENTITY_VERSION = 1
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_SEGMENTS = 8


def check_cluster_id(cluster_id: object) -> str:
    """Return ``cluster_id`` if it is a safe relative prefix like ``<uuid>/<app>``."""
    segments = cluster_id.split("/") if isinstance(cluster_id, str) else []
    if (
        not isinstance(cluster_id, str)
        or not segments
        or len(segments) > _MAX_SEGMENTS
        or not all(_SEGMENT.match(segment) for segment in segments)
    ):
        raise ValueError(
            f"invalid cluster id {cluster_id!r}: use '/'-separated names of letters, "
            "digits, '.', '_' and '-' (like '<model-uuid>/<app>')"
        )
    return cluster_id


def read(storage: ObjectStore, cluster_id: str) -> dict[str, object] | None:
    """The prefix's cluster.json if it names ``cluster_id``, None if absent.

    Raises:
        ForeignClusterError: it names another cluster (or is not an identity).
    """
    key = f"{cluster_id}/{CLUSTER_FILE}"
    try:
        raw = storage.get_bytes(key)
    except ObjectNotFoundError:
        return None
    document = as_object(load_json(raw, key))
    owner = document.get("cluster-id") if document is not None else None
    if owner != cluster_id or document is None:
        raise ForeignClusterError(
            f"the prefix {cluster_id}/ belongs to cluster {owner!r}, not "
            f"{cluster_id!r}: refusing to use another cluster's backups; "
            "configure a different storage path for this cluster"
        )
    return document


def ensure(storage: ObjectStore, cluster_id: str, now: datetime) -> None:
    """Create the identity of ``cluster_id``, or check that the one there names it.

    Raises:
        ForeignClusterError: the prefix belongs to, is inside, or contains another
            cluster's catalog, or holds objects that are not a catalog.
    """
    if read(storage, cluster_id) is not None:
        return
    if _check_no_overlap(storage, cluster_id):
        return  # another writer of this cluster created it meanwhile: keep theirs
    document = {
        "format-version": IDENTITY_VERSION,
        "cluster-id": cluster_id,
        "created-at": format_time(now),
    }
    storage.put_bytes(f"{cluster_id}/{CLUSTER_FILE}", dump_document(document))


def _check_no_overlap(storage: ObjectStore, cluster_id: str) -> bool:
    """Refuse a prefix another catalog or application uses; True if ours appeared meanwhile."""
    prefix = f"{cluster_id}/"
    segments = cluster_id.split("/")
    for depth in range(1, len(segments)):
        outer = "/".join(segments[:depth])
        if storage.exists(f"{outer}/{CLUSTER_FILE}"):
            raise ForeignClusterError(
                f"the prefix {prefix} is inside the catalog of cluster {outer!r}: "
                "refusing to mix two clusters' backups; configure a different path"
            )
    ours = (f"{prefix}{BACKUPS_DIR}/", f"{prefix}{BINLOGS_DIR}/", f"{prefix}{INDEX_FILE}")
    appeared = False
    for info in storage.list(prefix):
        if info.key == f"{prefix}{CLUSTER_FILE}":
            # written since it was read: this cluster's (raises if another's), or gone again
            appeared = read(storage, cluster_id) is not None
        elif not info.key.startswith(ours):
            raise ForeignClusterError(
                f"the prefix {prefix} already holds {info.key!r}, which is not "
                "part of this cluster's catalog (another cluster or application uses "
                "it): refusing to write there; configure a different path"
            )
    return appeared
