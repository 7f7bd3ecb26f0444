"""Errors raised by the database_backup relation library."""

from __future__ import annotations


class DatabaseBackupError(Exception):
    """Base class of the library's errors."""


class DataValidationError(DatabaseBackupError):
    """Relation data (read or about to be written) does not match the interface schemas."""


class SecretUnavailableError(DatabaseBackupError):
    """A Juju secret named in a job cannot be read (missing, not granted, or wrong content)."""


class TooManyJobsError(DatabaseBackupError):
    """The requirer already has as many jobs in flight on a relation as the databag may hold."""


class NotLeaderError(DatabaseBackupError):
    """Only the leader unit may write the application databag."""
