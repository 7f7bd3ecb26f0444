"""The engine's error root, and the base of the errors that say whether data was changed."""

from __future__ import annotations


class EngineError(Exception):
    """Any failure the engine reports; its message says what failed and what to do."""


class DataChangeError(EngineError):
    """A restore or recovery refused or failed; it says whether the data was touched.

    Attributes:
        data_changed: False when the server's data is what it was before.
    """

    def __init__(self, message: str, *, data_changed: bool = False) -> None:
        super().__init__(message)
        self.data_changed = data_changed


class RestoreError(DataChangeError):
    """The restore failed; the message says what and in which state the data is.

    Attributes:
        data_changed: False when the server's data is the data from before the restore.
    """
