"""Errors raised by the catalog."""

from __future__ import annotations


class CatalogError(Exception):
    """The catalog in object storage cannot be read or written as asked."""


class MetadataError(CatalogError):
    """A metadata document (backup.json, cluster.json, preserve.json) is invalid."""


class BackupNotFoundError(CatalogError):
    """No complete backup with that id exists in this cluster's catalog."""


class ForeignClusterError(CatalogError):
    """The prefix belongs to (or overlaps) another cluster's catalog."""


class BackupHeldError(CatalogError):
    """The backup is held (preserved) or needed by another backup and cannot be deleted."""
