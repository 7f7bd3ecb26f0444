"""Builders of catalog entries for the tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from database_backup.catalog import BackupMetadata, IncompleteBackup

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
SHA = "ab" * 32


def backup(
    backup_id: str,
    days_ago: float,
    *,
    kind: str = "full",
    parent: str | None = None,
    status: str = "complete",
) -> BackupMetadata:
    """A complete backup that finished ``days_ago`` days before NOW (took 10 minutes)."""
    finished = NOW - timedelta(days=days_ago)
    return BackupMetadata(
        backup_id=backup_id,
        kind=kind,
        parent_id=parent,
        status=status,
        started_at=finished - timedelta(minutes=10),
        finished_at=finished,
        artefacts=["data.xbstream.zst"],
        stored_size=1000,
        raw_size=3000,
        sha256=SHA,
        compression="zstd",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6",
    )


def incomplete(backup_id: str, days_ago: float) -> IncompleteBackup:
    """A backup prefix without backup.json, last written ``days_ago`` days before NOW."""
    return IncompleteBackup(
        backup_id=backup_id,
        objects=("data.xbstream.zst",),
        size=123,
        last_modified=NOW - timedelta(days=days_ago),
        reason="no backup.json (failed, or still in progress)",
    )
