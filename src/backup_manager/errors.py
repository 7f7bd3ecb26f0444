"""The manager's errors: each message says what is wrong and what to do."""

from __future__ import annotations


class ManagerError(Exception):
    """Bad input or an unusable location: fail the action with this message, send no job."""
