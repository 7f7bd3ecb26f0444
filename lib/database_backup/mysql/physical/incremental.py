"""Incremental physical backups and backup chains (full + incrementals).

An incremental backup holds the InnoDB pages changed since its parent's `to_lsn`
(`mariabackup/xtrabackup --backup --incremental-lsn=<parent to_lsn>`), streamed to S3 like
a full one; its metadata records `parent-id`, `from-lsn` and `to-lsn`. Restoring it
restores its chain: the full ancestor is unpacked and prepared, then every incremental is
unpacked beside it and applied in order (`--prepare --incremental-dir`). A missing or
broken link (parent deleted or incomplete, LSNs that do not follow, another flavour) is
refused with a clear error before the server is touched.
"""

from __future__ import annotations

import os

from database_backup.catalog import BackupMetadata, BackupNotFoundError, Catalog, CatalogError

from ..connection import ConnectionSpec
from ..errors import EngineError
from ..progress import ProgressCallback
from ..tablesums import Limits
from .backup import BackupError, backup_full

PHYSICAL = ("full", "incremental")
MAX_CHAIN = 1000


class ChainError(EngineError):
    """A backup chain is broken (a parent missing, incomplete or not matching)."""


def resolve_chain(catalog: Catalog, backup_id: str) -> list[BackupMetadata]:
    """The chain ending at `backup_id`: its full ancestor first, `backup_id` last.

    Raises:
        ChainError: a link is missing, incomplete, not physical, or its LSNs do not follow.
    """
    chain: list[BackupMetadata] = []
    current: str | None = backup_id
    child: BackupMetadata | None = None
    while current is not None:
        if len(chain) >= MAX_CHAIN or any(item.backup_id == current for item in chain):
            raise ChainError(f"the chain of backup {backup_id} loops at {current}")
        try:
            meta = catalog.read_metadata(current)
        except BackupNotFoundError as exc:
            if child is None:
                raise ChainError(f"backup {backup_id} not found or incomplete: {exc}") from exc
            raise ChainError(
                f"backup {child.backup_id} needs its parent {current}, which is missing or "
                f"incomplete: the chain ending at {backup_id} cannot be restored (restore "
                "an older full backup, or take a new full backup)"
            ) from exc
        except CatalogError as exc:
            raise ChainError(f"cannot read backup {current} of the chain: {exc}") from exc
        if meta.kind not in PHYSICAL:
            raise ChainError(f"backup {current} is a {meta.kind} backup, not part of a chain")
        if child is not None:
            _check_link(meta, child)
        chain.append(meta)
        child = meta
        current = meta.parent_id if meta.kind == "incremental" else None
    chain.reverse()
    return chain


def _check_link(parent: BackupMetadata, child: BackupMetadata) -> None:
    if parent.to_lsn is None or child.from_lsn != parent.to_lsn:
        raise ChainError(
            f"backup {child.backup_id} starts at LSN {child.from_lsn} but its parent "
            f"{parent.backup_id} ends at LSN {parent.to_lsn}: the chain is broken"
        )
    if parent.flavour != child.flavour:
        raise ChainError(
            f"backup {child.backup_id} ({child.flavour}) and its parent {parent.backup_id} "
            f"({parent.flavour}) come from different servers"
        )


def backup_incremental(
    conn: ConnectionSpec,
    catalog: Catalog,
    *,
    backup_id: str,
    parent_id: str | None = None,
    job_id: str | None = None,
    compression_level: int | None = 3,
    key: bytes | None = None,
    progress: ProgressCallback | None = None,
    workdir: str | os.PathLike[str],
    description: str | None = None,
    parallel: int = 1,
    table_sums_limits: Limits | None = None,
) -> BackupMetadata:
    """Take an incremental physical backup on top of `parent_id`.

    Args:
        conn: how to reach the server.
        catalog: where the backup and its parent are.
        backup_id: id of the new backup.
        parent_id: the parent (full or incremental); None picks the newest complete
            physical backup of the catalog.
        job_id: recorded in the metadata.
        compression_level: zstd level, or None.
        key: encryption key, or None.
        progress: progress callback.
        workdir: private local directory.
        description: free text.
        parallel: copy threads.
        table_sums_limits: bounds of the table sums (see `backup_full`).

    Raises:
        BackupError: no usable parent (missing, broken chain, no LSN) or the backup failed.
    """
    parent = _pick_parent(catalog, parent_id)
    try:
        resolve_chain(catalog, parent.backup_id)
    except ChainError as exc:
        raise BackupError(
            f"cannot take an incremental backup on {parent.backup_id}: {exc}"
        ) from exc
    return backup_full(
        conn,
        catalog,
        backup_id=backup_id,
        job_id=job_id,
        compression_level=compression_level,
        key=key,
        progress=progress,
        workdir=workdir,
        description=description,
        parallel=parallel,
        parent=parent,
        table_sums_limits=table_sums_limits,
    )


def _pick_parent(catalog: Catalog, parent_id: str | None) -> BackupMetadata:

    try:
        if parent_id is not None:
            parent = catalog.read_metadata(parent_id)
        else:
            # the newest complete physical backup, from the cluster's index (one GET and a
            # listing of the ids it does not know yet), then read in full from its own file
            physical = sorted(
                (entry for entry in catalog.read_index().complete if entry.kind in PHYSICAL),
                key=lambda entry: (entry.started_at, entry.backup_id),  # as list_backups
            )
            if not physical:
                raise BackupError(
                    "no physical backup to base an incremental backup on: take a full one first"
                )
            parent_id = physical[-1].backup_id
            parent = catalog.read_metadata(parent_id)
    except BackupNotFoundError as exc:
        raise BackupError(
            f"the parent backup {parent_id} is missing or incomplete: {exc}"
        ) from exc
    except CatalogError as exc:
        raise BackupError(f"cannot read the parent backup: {exc}") from exc
    if parent.kind not in PHYSICAL:
        raise BackupError(
            f"backup {parent.backup_id} is {parent.kind}: an incremental needs a physical parent"
        )
    if parent.to_lsn is None:
        raise BackupError(f"backup {parent.backup_id} has no to-lsn: it cannot be a parent")
    return parent
